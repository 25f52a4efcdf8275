package collector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/policy"
)

// testPKI writes a CA, a server certificate for dnsName only (no IP, so a
// client dialing 127.0.0.1 must be told the name) and a client
// certificate, as PEM files in dir.
type testPKI struct{ ca, serverCert, serverKey, clientCert, clientKey, otherCA string }

func newTestPKI(t *testing.T, dir, dnsName string) testPKI {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, key *ecdsa.PrivateKey, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, der
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	var p testPKI
	caKey := newKey()
	ca, caDER := issue(caTmpl("elmascale test CA"), nil, caKey, caKey)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	otherKey := newKey()
	_, otherDER := issue(caTmpl("another CA"), nil, otherKey, otherKey)
	p.otherCA = write("other-ca.pem", "CERTIFICATE", otherDER)

	sk := newKey()
	_, sDER := issue(&x509.Certificate{Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, sk, caKey)
	p.serverCert, p.serverKey = write("server.pem", "CERTIFICATE", sDER), write("server-key.pem", "PRIVATE KEY", keyDER(sk))
	ck := newKey()
	_, cDER := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "elmascale"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, ck, caKey)
	p.clientCert, p.clientKey = write("client.pem", "CERTIFICATE", cDER), write("client-key.pem", "PRIVATE KEY", keyDER(ck))
	return p
}

// Verifies against a real broker whose management API serves only to
// clients with a certificate from its CA, under a name that is not the
// address dialed, that the queue depth is read with the CA, the client
// certificate and the server name given, and that each missing or wrong
// piece fails the signal (held, not zero) with an error that says so.
func TestRealRabbitMQOverTLS(t *testing.T) {
	const name = "rabbitmq.elma365.svc"
	pki := newTestPKI(t, t.TempDir(), name)
	b, err := rabbittest.StartWith(rabbittest.Options{TLS: &rabbittest.TLS{CertFile: pki.serverCert, KeyFile: pki.serverKey, CAFile: pki.ca}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	user, pw := monitorUser(t, b, "monitor-tls")
	const q = "tls.worker.default"
	if err := b.DeclareQueue("/", q); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("/", q, 9); err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, rabbitQueueYAML(q))
	full := promconfig.TLSConfig{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey, ServerName: name}
	for _, tc := range []struct {
		name string
		tls  promconfig.TLSConfig
		want string // "" reads the backlog
	}{
		{"CA, client certificate and server name", full, ""},
		{"no client certificate", promconfig.TLSConfig{CAFile: pki.ca, ServerName: name}, "certificate"},
		{"no server name", promconfig.TLSConfig{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey}, "127.0.0.1"},
		{"another CA", promconfig.TLSConfig{CAFile: pki.otherCA, CertFile: pki.clientCert, KeyFile: pki.clientKey, ServerName: name}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCollector(t, Options{RabbitMQURL: b.TLSURL, RabbitMQUser: user, RabbitMQPasswordEnv: "ELMASCALE_TEST_TLS_PW", RabbitMQTLS: tc.tls})
			t.Setenv("ELMASCALE_TEST_TLS_PW", pw)
			var o policy.Observation
			deadline := time.Now().Add(20 * time.Second)
			for {
				o = collect(t, c, cfg, time.Now())["worker"]["script-queue"]
				if tc.want != "" || (o.Status == policy.StatusOK && o.Queue != nil && o.Queue.Backlog == 9) || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond) // statistics lag the publish by up to a second
			}
			switch {
			case tc.want == "" && (o.Status != policy.StatusOK || o.Queue == nil || o.Queue.Backlog != 9):
				t.Errorf("observation %s %+v (%s), want ok with a backlog of 9", o.Status, o.Queue, o.Error)
			case tc.want != "" && (o.Status != policy.StatusFailed || !strings.Contains(o.Error, tc.want)):
				t.Errorf("observation %s (%s), want failed mentioning %q", o.Status, o.Error, tc.want)
			}
		})
	}

	// TLS settings on a plain URL are a mistake to refuse, not to ignore.
	if _, err := New(Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQTLS: full}); err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("TLS settings with an http URL: %v", err)
	}
}
