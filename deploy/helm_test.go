package deploy_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/config"
)

const chartDir = "helm/elmascale"

// renderChart renders the chart as `helm install elmascale -n elmascale`
// would, with vals over the defaults, against a cluster serving the API
// versions given (beside Helm's defaults). It returns the objects and the
// rendering error.
func renderChart(t *testing.T, vals map[string]any, apiVersions ...string) ([]map[string]any, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	caps := *chartutil.DefaultCapabilities
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	caps.APIVersions = append(slices.Clone(caps.APIVersions), apiVersions...)
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "elmascale", Namespace: "elmascale", IsInstall: true, Revision: 1}, &caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	// helm install creates the crds/ directory's objects before the rest.
	for _, crd := range ch.CRDObjects() {
		files[crd.Filename] = string(crd.File.Data)
	}
	return objectsOf(t, ch, files), nil
}

func objectsOf(t *testing.T, ch *chart.Chart, files map[string]string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(files[name]), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				break
			}
			if len(obj) > 0 {
				out = append(out, obj)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("chart %s rendered no objects", ch.Name())
	}
	return out
}

func findObj(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		md, _ := o["metadata"].(map[string]any)
		if o["kind"] == kind && md["name"] == name {
			return o
		}
	}
	return nil
}

func at(o map[string]any, keys ...any) any {
	var cur any = o
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := cur.(map[string]any)
			cur = m[k]
		case int:
			l, _ := cur.([]any)
			if k >= len(l) {
				return nil
			}
			cur = l[k]
		}
	}
	return cur
}

func containerArgs(t *testing.T, objs []map[string]any) []string {
	t.Helper()
	d := findObj(objs, "Deployment", "elmascale")
	if d == nil {
		t.Fatal("no Deployment elmascale")
	}
	var args []string
	for _, a := range at(d, "spec", "template", "spec", "containers", 0, "args").([]any) {
		args = append(args, a.(string))
	}
	return args
}

// Verifies the chart's copies of the preset and the dashboard are the
// shipped files (a chart can read only files inside itself).
func TestChartFilesAreTheShippedOnes(t *testing.T) {
	for copyPath, orig := range map[string]string{
		chartDir + "/files/elma365.yaml":                     "base/elma365.yaml",
		chartDir + "/files/elmascale.json":                   "grafana/elmascale.json",
		chartDir + "/crds/elmascale.io_scalingpolicies.yaml": "base/crd/elmascale.io_scalingpolicies.yaml",
	} {
		a, err1 := os.ReadFile(copyPath)
		b, err2 := os.ReadFile(orig)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (%v %v): cp deploy/%s deploy/%s", copyPath, orig, err1, err2, orig, copyPath)
		}
	}
}

// Verifies `helm lint` (the Helm SDK's linter, values schema included)
// passes with no warning.
func TestChartLints(t *testing.T) {
	l := lint.AllWithKubeVersion(chartDir, nil, "elmascale", &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"})
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("lint: %s", m)
		}
	}
}

// Verifies a default install: dry-run, Linkerd-viz's Prometheus, RabbitMQ
// credentials from the existing Secret (password as a file, never in the
// pod spec), RBAC in the ELMA365 namespace, the preset as the config, and
// the ServiceMonitor only where the Operator's CRD is served, keeping
// elmascale's own service label.
func TestChartDefaults(t *testing.T) {
	objs, err := renderChart(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(containerArgs(t, objs), " ")
	for _, want := range []string{"--mode=dry-run", "--prometheus=http://prometheus.linkerd-viz.svc.cluster.local:9090",
		"--rabbitmq=http://", "--rabbitmq-password-file=/var/run/secrets/elmascale/rabbitmq/password", "--leader-elect"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	d := findObj(objs, "Deployment", "elmascale")
	if at(d, "spec", "template", "spec", "volumes", 1, "secret", "secretName") != "elmascale-rabbitmq" {
		t.Errorf("RabbitMQ password not mounted from the existing Secret: %v", at(d, "spec", "template", "spec", "volumes"))
	}
	if img := at(d, "spec", "template", "spec", "containers", 0, "image"); img != "elmascale:0.1.0" {
		t.Errorf("image %v, want elmascale:<appVersion>", img)
	}
	rb := findObj(objs, "RoleBinding", "elmascale-scaler")
	if at(rb, "metadata", "namespace") != "elma365" {
		t.Errorf("scaler RoleBinding in %v, want elma365", at(rb, "metadata", "namespace"))
	}
	cm := findObj(objs, "ConfigMap", "elmascale-config")
	cfg, err := config.Parse([]byte(at(cm, "data", "config.yaml").(string)))
	if err != nil {
		t.Fatalf("rendered config does not validate: %v", err)
	}
	if cfg.Namespace != "elma365" || len(cfg.Services) != 26 {
		t.Errorf("config namespace %q with %d services, want the preset's 26 in elma365", cfg.Namespace, len(cfg.Services))
	}
	if findObj(objs, "ServiceMonitor", "elmascale") != nil {
		t.Error("a ServiceMonitor is rendered on a cluster without the Prometheus Operator's CRD")
	}
	withOperator, err := renderChart(t, nil, "monitoring.coreos.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	sm := findObj(withOperator, "ServiceMonitor", "elmascale")
	if sm == nil || at(sm, "spec", "endpoints", 0, "honorLabels") != true {
		t.Errorf("ServiceMonitor %v: want one with honorLabels, so `service` is not renamed exported_service", sm)
	}
	if findObj(objs, "ConfigMap", "elmascale-dashboard") == nil && findObj(objs, "ConfigMap", "elmascale-dashboards") == nil {
		var names []string
		for _, o := range objs {
			names = append(names, o["kind"].(string)+"/"+at(o, "metadata", "name").(string))
		}
		t.Errorf("no dashboard ConfigMap among %v", names)
	}
}

// Verifies the ELMA365 namespace is set once for everything that names it:
// RBAC, the config's namespace and every PromQL selector of the preset.
func TestChartNamespaceSetOnce(t *testing.T) {
	objs, err := renderChart(t, map[string]any{"elma365": map[string]any{"namespace": "erp"}, "mode": "apply"})
	if err != nil {
		t.Fatal(err)
	}
	if rb := findObj(objs, "RoleBinding", "elmascale-scaler"); at(rb, "metadata", "namespace") != "erp" {
		t.Errorf("RoleBinding in %v", at(rb, "metadata", "namespace"))
	}
	text := at(findObj(objs, "ConfigMap", "elmascale-config"), "data", "config.yaml").(string)
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "erp" {
		t.Errorf("config namespace %q", cfg.Namespace)
	}
	if strings.Contains(text, `namespace="elma365"`) {
		t.Error("a PromQL selector still names namespace elma365")
	}
	if !slices.Contains(containerArgs(t, objs), "--mode=apply") {
		t.Error("mode=apply not passed on")
	}
}

// Verifies bad values fail the install with a message, not a broken pod.
func TestChartRefusesBadValues(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"unknown mode":           {"mode": "yolo"},
		"config elsewhere":       {"config": map[string]any{"file": "apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: other\nservices: {a: {}}\n"}},
		"rabbitmq sans secret":   {"rabbitmq": map[string]any{"existingSecret": ""}},
		"bad namespace":          {"elma365": map[string]any{"namespace": "Not_A_Namespace"}},
		"config that isn't yaml": {"config": map[string]any{"file": "::: [\n"}},
	} {
		if _, err := renderChart(t, vals); err == nil {
			t.Errorf("%s: rendered without an error", name)
		}
	}
}

// Verifies the chart and the kustomize base install the same objects with
// the same specs where behaviour depends on them, so the two cannot drift.
func TestChartMatchesKustomizeBase(t *testing.T) {
	chartObjs, err := renderChart(t, nil, "monitoring.coreos.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	kustObjs := renderKustomize(t, "testdata/with-servicemonitor")
	key := func(o map[string]any) string {
		return o["kind"].(string) + "/" + at(o, "metadata", "name").(string)
	}
	byKey := map[string]map[string]any{}
	for _, o := range chartObjs {
		byKey[key(o)] = o
	}
	for _, k := range kustObjs {
		if k["kind"] == "Namespace" {
			continue // helm install --create-namespace makes it
		}
		c, ok := byKey[key(k)]
		if !ok {
			t.Errorf("the kustomize base has %s, the chart does not", key(k))
			continue
		}
		if ns := at(k, "metadata", "namespace"); ns != nil && ns != at(c, "metadata", "namespace") {
			t.Errorf("%s: namespace %v in kustomize, %v in the chart", key(k), ns, at(c, "metadata", "namespace"))
		}
		var same [][]any
		switch k["kind"] {
		case "Deployment":
			same = [][]any{{"spec", "template", "spec", "containers", 0, "args"}, {"spec", "template", "spec", "containers", 0, "env"},
				{"spec", "template", "spec", "containers", 0, "volumeMounts"}, {"spec", "template", "spec", "containers", 0, "resources"},
				{"spec", "template", "spec", "securityContext"}, {"spec", "replicas"}}
		case "ClusterRole", "Role":
			same = [][]any{{"rules"}}
		case "RoleBinding", "ClusterRoleBinding":
			same = [][]any{{"roleRef"}, {"subjects"}}
		case "NetworkPolicy":
			same = [][]any{{"spec", "policyTypes"}, {"spec", "ingress"}}
		case "ConfigMap":
			same = [][]any{{"data"}}
		case "CustomResourceDefinition":
			same = [][]any{{"spec"}}
		case "ServiceMonitor":
			same = [][]any{{"spec", "endpoints"}}
		}
		for _, p := range same {
			a, _ := yaml.Marshal(at(k, p...))
			b, _ := yaml.Marshal(at(c, p...))
			if !bytes.Equal(a, b) {
				t.Errorf("%s %v differs:\nkustomize:\n%s\nchart:\n%s", key(k), p, a, b)
			}
		}
	}
}

// renderKustomize builds a kustomization as `kubectl apply -k` would.
func renderKustomize(t *testing.T, dir string) []map[string]any {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []map[string]any
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// Verifies the metrics endpoints are protected by default, and the install
// is whole for it: the flag, the daemon's right to review tokens, the
// reader role bound to Prometheus, the ServiceMonitor presenting its token,
// and a NetworkPolicy admitting only the two ports; and that turning it off
// removes all of it.
func TestChartMetricsAuth(t *testing.T) {
	objs, err := renderChart(t, nil, "monitoring.coreos.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(containerArgs(t, objs), "--metrics-auth") {
		t.Error("--metrics-auth not on by default")
	}
	if b := findObj(objs, "ClusterRoleBinding", "elmascale-metrics-auth"); at(b, "subjects", 0, "name") != "elmascale" || at(b, "subjects", 0, "namespace") != "elmascale" {
		t.Errorf("metrics-auth binding %v", b)
	}
	if b := findObj(objs, "ClusterRoleBinding", "elmascale-metrics-reader"); at(b, "roleRef", "name") != "elmascale-metrics-reader" || at(b, "subjects", 0, "name") != "prometheus-k8s" {
		t.Errorf("reader binding %v", b)
	}
	sm := findObj(objs, "ServiceMonitor", "elmascale")
	if at(sm, "spec", "endpoints", 0, "bearerTokenFile") != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Errorf("ServiceMonitor endpoint %v scrapes without a token", at(sm, "spec", "endpoints", 0))
	}
	np := findObj(objs, "NetworkPolicy", "elmascale")
	if at(np, "spec", "ingress", 0, "ports", 0, "port") != "http-metrics" || at(np, "spec", "ingress", 1, "ports", 0, "port") != "http-health" || at(np, "spec", "ingress", 2) != nil {
		t.Errorf("NetworkPolicy ingress %v", at(np, "spec", "ingress"))
	}

	peer := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}
	objs, err = renderChart(t, map[string]any{
		"metricsAuth":   map[string]any{"enabled": false},
		"networkPolicy": map[string]any{"metricsFrom": []any{peer}},
	}, "monitoring.coreos.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(containerArgs(t, objs), "--metrics-auth") || findObj(objs, "ClusterRole", "elmascale-metrics-reader") != nil ||
		at(findObj(objs, "ServiceMonitor", "elmascale"), "spec", "endpoints", 0, "bearerTokenFile") != nil {
		t.Error("metricsAuth.enabled=false still renders parts of it")
	}
	np = findObj(objs, "NetworkPolicy", "elmascale")
	if at(np, "spec", "ingress", 0, "from", 0, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "monitoring" {
		t.Errorf("metricsFrom not applied: %v", at(np, "spec", "ingress", 0))
	}
}

// Verifies the install notes say how to see what the install promises:
// the start-up checks, the Recommended Events in dry-run, and the decisions
// API with a reader's token.
func TestChartNotes(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vals       map[string]any
		want, none []string
	}{
		{nil, []string{"start-up check", "elmascale doctor --service-account elmascale/elmascale --prometheus http://prometheus.linkerd-viz",
			"reason=Recommended", "create token prometheus-k8s", "/api/v1/recommendations"}, []string{"<no value>"}},
		{map[string]any{"mode": "apply", "metricsAuth": map[string]any{"enabled": false}}, []string{"curl -s localhost:8080", "--metrics-auth=false"}, []string{"Recommended", "create token"}},
	} {
		rv, err := chartutil.ToRenderValues(ch, tc.vals, chartutil.ReleaseOptions{Name: "elmascale", Namespace: "elmascale", IsInstall: true}, chartutil.DefaultCapabilities)
		if err != nil {
			t.Fatal(err)
		}
		files, err := engine.Render(ch, rv)
		if err != nil {
			t.Fatal(err)
		}
		notes := files["elmascale/templates/NOTES.txt"]
		for _, w := range tc.want {
			if !strings.Contains(notes, w) {
				t.Errorf("%v: notes lack %q:\n%s", tc.vals, w, notes)
			}
		}
		for _, w := range tc.none {
			if strings.Contains(notes, w) {
				t.Errorf("%v: notes hold %q:\n%s", tc.vals, w, notes)
			}
		}
	}
}

// Verifies the RabbitMQ TLS values become the flags and a mount of the
// Secret's files, and that TLS on an http URL is refused.
func TestChartRabbitMQTLS(t *testing.T) {
	tls := map[string]any{"existingSecret": "rabbitmq-ca", "clientCertificate": true, "serverName": "rabbitmq.elma365-dbs.svc"}
	objs, err := renderChart(t, map[string]any{"rabbitmq": map[string]any{"url": "https://rabbitmq.elma365-dbs.svc.cluster.local:15671", "tls": tls}})
	if err != nil {
		t.Fatal(err)
	}
	args := containerArgs(t, objs)
	for _, want := range []string{"--rabbitmq-ca-file=/var/run/secrets/elmascale/rabbitmq-tls/ca.crt", "--rabbitmq-cert-file=/var/run/secrets/elmascale/rabbitmq-tls/tls.crt",
		"--rabbitmq-key-file=/var/run/secrets/elmascale/rabbitmq-tls/tls.key", "--rabbitmq-server-name=rabbitmq.elma365-dbs.svc"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	d := findObj(objs, "Deployment", "elmascale")
	if at(d, "spec", "template", "spec", "volumes", 2, "secret", "secretName") != "rabbitmq-ca" ||
		at(d, "spec", "template", "spec", "containers", 0, "volumeMounts", 2, "mountPath") != "/var/run/secrets/elmascale/rabbitmq-tls" {
		t.Errorf("TLS Secret not mounted: %v", at(d, "spec", "template", "spec", "volumes"))
	}
	if _, err := renderChart(t, map[string]any{"rabbitmq": map[string]any{"tls": tls}}); err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("TLS with the default http URL: %v", err)
	}
	if args := strings.Join(containerArgs(t, mustRender(t)), " "); strings.Contains(args, "--rabbitmq-ca-file") {
		t.Errorf("default install passes TLS flags: %s", args)
	}
}

func mustRender(t *testing.T) []map[string]any {
	t.Helper()
	objs, err := renderChart(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
