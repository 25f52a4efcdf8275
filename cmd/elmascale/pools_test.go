package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elmascale/elmascale/internal/rabbittest"
)

func poolsConfig(t *testing.T, prefix string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pools.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  main:
    dependsOn: [worker]
  worker:
    maxReplicas: 8
    target: {name: "worker-{pool}"}
    pools:
      queue: "`+prefix+`.{pool}"
      targets: {default: worker}
    signals:
      - name: script-queue
        queue:
          rabbitmq: {queues: ["`+prefix+`.{pool}"]}
          drainTime: 1m
          throughputPerReplica: 4
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Verifies validate names a template and what it expands from.
func TestValidateShowsTemplate(t *testing.T) {
	code, out, errOut := run(t, "validate", "--config", poolsConfig(t, "worker"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "valid: 1 services") || !strings.Contains(out, "worker: a template, one service worker-<pool> per queue worker.{pool} in vhost / (at most 50") {
		t.Errorf("validate output:\n%s", out)
	}
}

// Verifies recommend against a real RabbitMQ expands the template over the
// queues it lists, says so, and decides for every pool's service.
func TestRecommendExpandsPoolsLive(t *testing.T) {
	b, err := rabbittest.Start()
	if err != nil {
		t.Fatalf("rabbittest: %v", err)
	}
	t.Cleanup(b.Stop)
	for _, q := range []string{"rp.default", "rp.sales", "rp.Not_A_Label"} {
		if err := b.DeclareQueue("/", q); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(rabbitPasswordEnv, b.AdminPassword)
	code, out, errOut := run(t, "recommend", "--config", poolsConfig(t, "rp"), "--rabbitmq", b.URL, "--rabbitmq-user", b.AdminUser)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"pool default (queue rp.default): service worker-default → Deployment/worker",
		"pool sales (queue rp.sales): service worker-sales → Deployment/worker-sales",
		`queue rp.Not_A_Label refused: pool id "Not_A_Label" is not a DNS label`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, svc := range []string{"worker-default", "worker-sales", "main"} {
		if !strings.Contains(out, "\n"+svc+" ") {
			t.Errorf("no decision for %s:\n%s", svc, out)
		}
	}
}

// Verifies recommend without a broker still decides for the rest of a
// config with a template, and says no pool was expanded.
func TestRecommendTemplateWithoutBroker(t *testing.T) {
	code, out, errOut := run(t, "recommend", "--config", poolsConfig(t, "nb"), "--rabbitmq", "http://127.0.0.1:1", "--rabbitmq-user", "u")
	if code != 0 || !strings.Contains(errOut, "cannot list RabbitMQ's queues for the service templates, none expanded") || !strings.Contains(out, "\nmain ") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
