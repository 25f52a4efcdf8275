package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elmascale/elmascale/collector"
)

func parseLive(t *testing.T, predefineKubeconfig bool, args ...string) *liveFlags {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if predefineKubeconfig {
		fs.String("kubeconfig", "", "the command's own")
	}
	l := addLiveFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return l
}

// Verifies when the live collector is on, and that flag mistakes are
// errors rather than silently ignored sources.
func TestLiveFlags(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		enabled bool
		errHas  string
	}{
		{name: "no sources", args: nil},
		{name: "prometheus", args: []string{"--prometheus", "http://127.0.0.1:9090"}, enabled: true},
		{name: "rabbitmq with file", args: []string{"--rabbitmq", "http://127.0.0.1:15672", "--rabbitmq-user", "mon", "--rabbitmq-password-file", pw}, enabled: true},
		{name: "rabbitmq without user", args: []string{"--rabbitmq", "http://127.0.0.1:15672"}, errHas: "a user is required"},
		{name: "orphan prometheus config", args: []string{"--prometheus-config", "x.yaml"}, errHas: "need --prometheus"},
		{name: "unreadable prometheus config", args: []string{"--prometheus", "http://127.0.0.1:9090", "--prometheus-config", "/nonexistent.yaml"}, errHas: "prometheus HTTP config"},
		{name: "missing kubeconfig", args: []string{"--kubeconfig", "/nonexistent/kubeconfig"}, errHas: "kubeconfig /nonexistent/kubeconfig"},
		{name: "rabbitmq over TLS", args: []string{"--rabbitmq", "https://127.0.0.1:15671", "--rabbitmq-user", "mon", "--rabbitmq-password-file", pw, "--rabbitmq-server-name", "rabbitmq.elma365.svc"}, enabled: true},
		{name: "rabbitmq TLS on http", args: []string{"--rabbitmq", "http://127.0.0.1:15672", "--rabbitmq-user", "mon", "--rabbitmq-password-file", pw, "--rabbitmq-ca-file", pw}, errHas: "need an https://"},
		{name: "rabbitmq client cert without key", args: []string{"--rabbitmq", "https://127.0.0.1:15671", "--rabbitmq-user", "mon", "--rabbitmq-password-file", pw, "--rabbitmq-cert-file", pw}, errHas: "--rabbitmq-cert-file and --rabbitmq-key-file go together"},
		{name: "orphan rabbitmq TLS", args: []string{"--rabbitmq-ca-file", pw}, errHas: "need --prometheus or --rabbitmq"},
		{name: "breaker never opening", args: []string{"--prometheus", "http://127.0.0.1:9090", "--source-breaker-failures", "0"}, errHas: "--source-breaker-failures must be at least 1"},
		{name: "breaker tuned", args: []string{"--prometheus", "http://127.0.0.1:9090", "--source-breaker-failures", "5", "--source-breaker-open-for", "2m"}, enabled: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, enabled, err := parseLive(t, false, tc.args...).collector(zap.NewNop())
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v, want one containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if enabled != tc.enabled || (c != nil) != tc.enabled {
				t.Errorf("enabled %v collector %v, want enabled %v", enabled, c, tc.enabled)
			}
		})
	}
}

// Verifies that a source timeout of zero or less is refused when parsed.
func TestLiveFlagsRefuseBadTimeout(t *testing.T) {
	for _, v := range []string{"0s", "-1s", "soon"} {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		addLiveFlags(fs)
		err := fs.Parse([]string{"--source-timeout", v})
		if err == nil || !strings.Contains(err.Error(), "--source-timeout") {
			t.Errorf("--source-timeout %s: err %v, want one naming the flag", v, err)
		}
	}
}

// Verifies that a command's own --kubeconfig is shared, not redefined.
func TestLiveFlagsShareKubeconfig(t *testing.T) {
	_, _, err := parseLive(t, true, "--kubeconfig", "/nonexistent/kc").collector(zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kc") {
		t.Fatalf("err %v, want the shared kubeconfig to be used", err)
	}
}

// Verifies that credentials in a source URL are warned about (not echoed)
// and that a malformed URL's error never shows its user info.
func TestSourceURLCredentials(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	l := parseLive(t, false, "--rabbitmq", "http://mon:hunter2@127.0.0.1:15672", "--prometheus", "http://scrape:s3cret@127.0.0.1:9090")
	if _, _, err := l.collector(zap.New(core)); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
		}
		warned = append(warned, line)
		if strings.Contains(line, "hunter2") || strings.Contains(line, "s3cret") || strings.Contains(line, "mon:") {
			t.Errorf("warning echoes the credentials: %s", line)
		}
	}
	if len(warned) != 2 || !strings.Contains(warned[0], "--prometheus carries credentials") || !strings.Contains(warned[1], "--rabbitmq-password-file") {
		t.Errorf("warnings %q, want one per source naming the safer flags", warned)
	}

	for _, raw := range []string{"http://u:p4ss@exa mple:80", "u:p4ss@host", "://u:p4ss@"} {
		_, _, err := parseLive(t, false, "--prometheus", raw).collector(zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "--prometheus") {
			t.Errorf("%q: err %v, want a malformed --prometheus URL", raw, err)
			continue
		}
		if strings.Contains(err.Error(), "p4ss") {
			t.Errorf("%q: error echoes the password: %v", raw, err)
		}
	}
}

// Verifies that the breaker and TLS flags reach the collector's options,
// and that their defaults are the collector's.
func TestLiveFlagsBreakerAndTLS(t *testing.T) {
	o, err := parseLive(t, false, "--source-breaker-failures", "5", "--source-breaker-open-for", "2m",
		"--rabbitmq-ca-file", "ca.pem", "--rabbitmq-cert-file", "c.pem", "--rabbitmq-key-file", "k.pem", "--rabbitmq-server-name", "rabbitmq.elma365.svc").options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Breaker.FailureThreshold != 5 || o.Breaker.OpenFor != 2*time.Minute {
		t.Errorf("breaker %+v", o.Breaker)
	}
	if tls := o.RabbitMQTLS; tls.CAFile != "ca.pem" || tls.CertFile != "c.pem" || tls.KeyFile != "k.pem" || tls.ServerName != "rabbitmq.elma365.svc" {
		t.Errorf("TLS %+v", tls)
	}
	o, err = parseLive(t, false).options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Breaker.FailureThreshold != collector.DefaultBreakerFailures || o.Breaker.OpenFor != collector.DefaultBreakerOpenFor {
		t.Errorf("default breaker %+v", o.Breaker)
	}
}
