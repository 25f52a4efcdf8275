package collector

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Verifies that the Prometheus URL's user info never reaches an error: not
// when the URL is refused at start, and not when a query to it fails.
func TestPrometheusURLCredentialsNeverEchoed(t *testing.T) {
	for _, raw := range []string{
		"http://scraper:s3cret-pw@prometheus monitoring:9090", // a space: url.Parse fails
		"scraper:s3cret-pw@prometheus:9090",                   // no scheme
		"http://scraper:s3cret-pw@",                           // no host
	} {
		_, err := New(Options{PrometheusURL: raw})
		if err == nil {
			t.Fatalf("%q accepted", raw)
		}
		if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(err.Error(), "scraper") {
			t.Errorf("error echoes the credentials: %v", err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every query fails to connect
	cfg := parseConfig(t, oneLoadQuery)
	c, _ := newCollector(t, Options{PrometheusURL: "http://scraper:s3cret-pw@" + addr})
	o := collect(t, c, cfg, time.Now())["worker"]["load"]
	if o.Error == "" {
		t.Fatalf("observation %s without an error", o.Status)
	}
	if strings.Contains(o.Error, "s3cret-pw") || strings.Contains(o.Error, "scraper") {
		t.Errorf("observation error echoes the credentials: %s", o.Error)
	}
}

// Verifies that credentials in the Prometheus URL still authenticate, as
// basic auth, once they are out of the URL.
func TestPrometheusURLCredentialsBecomeBasicAuth(t *testing.T) {
	var user, pw string
	var ok bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"service":"worker"},"value":[%d,"5"]}]}}`, time.Now().Unix())
	}))
	t.Cleanup(srv.Close)
	cfg := parseConfig(t, oneLoadQuery)
	c, _ := newCollector(t, Options{PrometheusURL: strings.Replace(srv.URL, "http://", "http://scraper:s3cret-pw@", 1)})
	o := collect(t, c, cfg, time.Now())["worker"]["load"]
	if o.Error != "" || !ok || user != "scraper" || pw != "s3cret-pw" {
		t.Errorf("observation %s (%s); basic auth %v %q", o.Status, o.Error, ok, user)
	}
}
