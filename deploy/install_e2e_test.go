package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"helm.sh/helm/v3/pkg/chart/loader"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/dashboard"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/record"
)

// The ELMA365 services whose latency and in-flight the preset reads from
// their Linkerd proxies' series.
var meshedServices = []string{"auth", "collector", "main", "processor"}

// proxy is one pod's Linkerd proxy as Prometheus scrapes it: the series
// and labels of Linkerd's proxy metrics reference.
type proxy struct {
	reg                 *prometheus.Registry
	requests, responses *prometheus.CounterVec
	latency             *prometheus.HistogramVec
}

func newProxy() *proxy {
	l := []string{"direction", "authority", "dst_namespace", "dst_deployment", "dst_service", "tls"}
	p := &proxy{
		reg:       prometheus.NewRegistry(),
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "request_total", Help: "Total count of HTTP requests."}, l),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "response_total", Help: "Total count of HTTP responses."}, append(l, "classification", "status_code")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "response_latency_ms", Help: "Elapsed times between a request's headers being received and its response stream completing",
			Buckets: []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000}}, append(l, "status_code")),
	}
	p.reg.MustRegister(p.requests, p.responses, p.latency)
	return p
}

// observe counts n successful requests taking ms each: inbound with dst
// empty, else calls to deployment dst of elma365.
func (p *proxy) observe(dst string, ms float64, n int) {
	labels := []string{"inbound", "", "", "", "", "true"}
	if dst != "" {
		labels = []string{"outbound", dst + ".elma365.svc.cluster.local:8080", "elma365", dst, dst, "true"}
	}
	p.requests.WithLabelValues(labels...).Add(float64(n))
	p.responses.WithLabelValues(append(labels, "success", "200")...).Add(float64(n))
	h := p.latency.WithLabelValues(append(labels, "200")...)
	for range n {
		h.Observe(ms)
	}
}

// Verifies day one of an install, end to end: the chart rendered with its
// default values is applied for real to a real API server; the elmascale
// binary runs exactly as the rendered Deployment says (its args and env,
// the ConfigMap and Secret files where the mounts put them, the rendered
// ServiceAccount's token), against a real Prometheus that scrapes the
// ELMA365 services and elmascale with the target labels the Prometheus
// Operator gives them (and the rendered ServiceMonitor's honorLabels and
// bearer token), and a real RabbitMQ holding the worker queue. Then
// `elmascale doctor` passes, no signal of the preset is missing, the
// dry-run's recommendations are Events on the targets, and every dashboard
// query answers one series per service.
//
// Only what cannot exist outside a pod is replaced: cluster DNS names by
// the local addresses, fixed ports by free ones, mount paths by a temp
// dir, the in-cluster token file by a kubeconfig holding the same token.
func TestInstallEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs every component; skipped with -short")
	}
	bin := make(chan string, 1)
	go func() { bin <- buildBinary(t) }()

	c := testcluster.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	a := newApplier(t, c.AdminConfig)

	// helm install elmascale deploy/helm/elmascale -n elmascale --create-namespace,
	// on a cluster with the Prometheus Operator.
	objs, err := renderChart(t, nil, "monitoring.coreos.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.apply(ctx, serviceMonitorCRD(), false); err != nil {
		t.Fatal(err)
	}
	for _, u := range chartCRDs(t) {
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"elmascale", "elma365", "monitoring"} {
		if err := c.CreateNamespace(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	waitCRD(ctx, t, a)
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatalf("install: %v", err)
		}
	}
	t.Logf("installed %d rendered objects", len(objs))
	dep := findObj(objs, "Deployment", "elmascale")
	cm, err := admin.CoreV1().ConfigMaps("elmascale").Get(ctx, "elmascale-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("installed config: %v", err)
	}

	// RabbitMQ: the monitoring user of the Secret the administrator
	// creates, the worker pool's queue with two consumers and a backlog.
	broker, err := rabbittest.StartWith(rabbittest.Options{STOMP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Stop)
	const rabbitUser, rabbitPassword = "elmascale", "e2e-rabbit-pw"
	if err := broker.CreateUser(rabbitUser, rabbitPassword, "monitoring", "/"); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "elmascale-rabbitmq", Namespace: "elmascale"},
		StringData: map[string]string{"username": rabbitUser, "password": rabbitPassword}}
	if _, err := admin.CoreV1().Secrets("elmascale").Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, q := range workerQueues(cfg) {
		if err := broker.DeclareQueue("/", q); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			stop, err := broker.Subscribe(q)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
		}
		if err := broker.Publish("/", q, 120); err != nil {
			t.Fatal(err)
		}
	}

	// ELMA365's workloads, Enterprise edition: two replicas each, the
	// single-instance services one; KWOK runs the pods and reports their
	// CPU to metrics-server.
	for i, s := range cfg.Services {
		replicas := int32(2)
		if cfg.Policy.Services[i].Pinned {
			replicas = 1
		}
		d := kubetest.Deployment(cfg.Namespace, s.Target.Name, replicas, nil)
		d.Spec.Template.Annotations = map[string]string{testcluster.AnnotationUsageCPU: "30m"}
		_ = admin.AppsV1().Deployments(cfg.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{}) // left by another test
		kubetest.WaitFor(t, 30*time.Second, "old "+d.Name+" gone", func() error {
			_, err := admin.AppsV1().Deployments(cfg.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %v", err)
		})
		kubetest.CreateDeployments(t, admin, d)
	}

	// The meshed services' Linkerd proxies, scraped as Linkerd-viz's
	// Prometheus scrapes them (job linkerd-proxy; namespace, deployment and
	// pod from the pod): inbound requests, responses and latency, and
	// main's calls to processor. main answers in 2 s, far above its SLO.
	var targets []promtest.Target
	stopLoad := make(chan struct{})
	t.Cleanup(func() { close(stopLoad) })
	for _, svc := range meshedServices {
		p := newProxy()
		took := 80.0
		if svc == "main" {
			took = 2000
		}
		go func() {
			for {
				select {
				case <-stopLoad:
					return
				case <-time.After(100 * time.Millisecond):
				}
				p.observe("", took, 10)
				if svc == "main" {
					p.observe("processor", 80, 10)
				}
			}
		}()
		targets = append(targets, promtest.Target{Job: "linkerd-proxy", Addr: promtest.ServeRegistry(t, p.reg),
			Labels: map[string]string{"namespace": cfg.Namespace, "deployment": svc, "pod": svc + "-7d9f8-x2x4q"}})
	}

	// elmascale's own scrape, as the rendered ServiceMonitor asks for it.
	sm := findObj(objs, "ServiceMonitor", "elmascale")
	endpoint, _ := at(sm, "spec", "endpoints", 0).(map[string]any)
	// One pod per rendered replica, each scraped on its own.
	type pod struct {
		name, metricsAddr, healthAddr string
		cmd                           *exec.Cmd
		logs                          bytes.Buffer
	}
	replicas, _ := at(dep, "spec", "replicas").(float64)
	if ri, ok := at(dep, "spec", "replicas").(int64); ok {
		replicas = float64(ri)
	}
	var pods []*pod
	var selves []promtest.Target
	tokenFile := ""
	for i := range max(int(replicas), 1) {
		p := &pod{name: fmt.Sprintf("elmascale-5c6d7-e2e%02d", i), metricsAddr: freeLocalAddr(t), healthAddr: freeLocalAddr(t)}
		pods = append(pods, p)
		self := promtest.Target{Job: "elmascale", Addr: p.metricsAddr, Labels: operatorLabels("elmascale", "elmascale", p.name)}
		self.HonorLabels, _ = endpoint["honorLabels"].(bool)
		if endpoint["bearerTokenFile"] != nil {
			if tokenFile == "" {
				// The Operator's Prometheus presents its ServiceAccount's
				// token: the reader the chart binds by default.
				readers := at(findObj(objs, "ClusterRoleBinding", "elmascale-metrics-reader"), "subjects").([]any)
				r := readers[0].(map[string]any)
				tokenFile = filepath.Join(t.TempDir(), "prometheus-token")
				ensureServiceAccount(ctx, t, admin, r["namespace"].(string), r["name"].(string))
				writeFile(t, tokenFile, saToken(ctx, t, admin, r["namespace"].(string), r["name"].(string)))
			}
			self.BearerTokenFile = tokenFile
		}
		selves = append(selves, self)
	}
	// Prometheus waits for every target to be up once: stand in for the
	// pods on their addresses until Prometheus is ready.
	var standIns []*http.Server
	for _, p := range pods {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
		ln, err := net.Listen("tcp", p.metricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		standIns = append(standIns, srv)
	}
	prom := promtest.Start(t, append(targets, selves...)...)
	for _, srv := range standIns {
		_ = srv.Close()
	}

	// The pods, as the kubelet would start them from the installed objects.
	binary := <-bin
	for _, p := range pods {
		root := t.TempDir()
		args, env := podCommand(ctx, t, admin, dep, root, p.name, map[string]string{
			"--prometheus=":                prom.URL,
			"--rabbitmq=":                  broker.URL,
			"--metrics-bind-address=":      p.metricsAddr,
			"--health-probe-bind-address=": p.healthAddr,
		})
		kubeconfig := tokenKubeconfig(ctx, t, c, admin, "elmascale", at(dep, "spec", "template", "spec", "serviceAccountName").(string), root)
		args = append(args, "--kubeconfig="+kubeconfig)
		t.Logf("%s: elmascale %s", p.name, strings.Join(args, " "))
		p.cmd = exec.Command(binary, args...)
		p.cmd.Env = append(env, "HOME="+root, "PATH="+os.Getenv("PATH"))
		p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", p.name, tail(p.logs.String(), 4000))
			}
		})
	}
	root := t.TempDir()

	// No signal of the preset is missing on either pod, read through the
	// decisions API with the reader's token (it is behind token review).
	readerToken := ""
	if tokenFile != "" {
		b, _ := os.ReadFile(tokenFile)
		readerToken = string(b)
	}
	for _, p := range pods {
		kubetest.WaitFor(t, 3*time.Minute, p.name+": every signal of every service resolved", func() error {
			if p.cmd.ProcessState != nil {
				return fmt.Errorf("elmascale exited: %v", p.cmd.ProcessState)
			}
			recs, err := decisions("http://"+p.metricsAddr, readerToken)
			if err != nil {
				return err
			}
			latest := map[string]record.DecisionRecord{}
			for _, r := range recs {
				latest[r.Service] = r
			}
			var missing []string
			for _, s := range cfg.Services {
				d, ok := latest[s.Name]
				if !ok {
					missing = append(missing, s.Name+": no decision")
					continue
				}
				for _, sig := range d.Signals {
					if sig.Status != policy.StatusOK {
						missing = append(missing, fmt.Sprintf("%s/%s %s (%s)", s.Name, sig.Name, sig.Status, sig.Note))
					}
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d not resolved: %s", len(missing), strings.Join(missing, "; "))
			}
			return nil
		})
		if code, body := get("http://"+p.metricsAddr+"/api/v1/decisions", ""); code != http.StatusUnauthorized {
			t.Errorf("%s: decisions API without a token: HTTP %d, want 401 (%.200s)", p.name, code, body)
		}
	}

	// The dry-run is visible in kubectl.
	var recommended []string
	kubetest.WaitFor(t, 90*time.Second, "a Recommended Event", func() error {
		list, err := admin.CoreV1().Events(cfg.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=Recommended"})
		if err != nil {
			return err
		}
		recommended = nil
		for _, e := range list.Items {
			recommended = append(recommended, e.InvolvedObject.Name+": "+e.Message)
		}
		// main's latency, far above its SLO, asks for more replicas.
		if !slices.ContainsFunc(recommended, func(s string) bool { return strings.HasPrefix(s, "main: dry-run recommends replicas 2 → ") }) {
			return fmt.Errorf("Recommended Events so far: %q", recommended)
		}
		return nil
	})
	t.Logf("Recommended Events: %q", recommended)
	for _, s := range cfg.Services {
		d, err := admin.AppsV1().Deployments(cfg.Namespace).Get(ctx, s.Target.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := int32(2)
		if i := slices.IndexFunc(cfg.Policy.Services, func(p policy.ServiceSpec) bool { return p.Name == s.Name }); i >= 0 && cfg.Policy.Services[i].Pinned {
			want = 1
		}
		if *d.Spec.Replicas != want {
			t.Errorf("dry-run changed %s to %d replicas", s.Name, *d.Spec.Replicas)
		}
	}

	// elmascale doctor, as NOTES.txt tells the administrator to run it.
	pwFile := filepath.Join(root, "doctor-rabbitmq-password")
	writeFile(t, pwFile, rabbitPassword)
	cfgFile := filepath.Join(root, "doctor-config.yaml")
	writeFile(t, cfgFile, cm.Data["config.yaml"])
	doctor := exec.Command(binary, "doctor", "--kubeconfig", c.KubeconfigAdmin, "--service-account", "elmascale/elmascale",
		"--config", cfgFile, "--prometheus", prom.URL, "--rabbitmq", broker.URL, "--rabbitmq-user", rabbitUser, "--rabbitmq-password-file", pwFile)
	doctor.Env = []string{"HOME=" + root, "PATH=" + os.Getenv("PATH")}
	out, err := doctor.CombinedOutput()
	if err != nil {
		t.Errorf("elmascale doctor: %v\n%s", err, out)
	} else {
		t.Logf("elmascale doctor:\n%s", out)
	}
	for _, p := range pods {
		if !strings.Contains(p.logs.String(), "start-up check") {
			t.Errorf("%s did not log its start-up checks", p.name)
		}
	}

	// Every dashboard query, as Grafana asks it for the managed namespace
	// and all services, answers one series per service: none without its
	// service (the Operator's target label would have renamed it), none
	// twice, and the per-service panels cover every service.
	everyService := make([]string, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		everyService = append(everyService, s.Name)
	}
	slices.Sort(everyService)
	// A query answers per service when its outermost aggregation keeps the
	// service label.
	byService := regexp.MustCompile(`^\(*(max|sum|min|count) by \((job, instance, )?service[,)]`)
	// In dry-run nothing is scaled, so these may well be empty.
	mayBeEmpty := map[string]bool{"Scale actions": true, "annotation: scale actions": true, "Circuit breakers": true, "Source errors": true}
	kubetest.WaitFor(t, 60*time.Second, "every dashboard query answered", func() error {
		var problems []string
		for _, q := range dashboard.Queries() {
			expr := strings.NewReplacer("$__rate_interval", "1m", "$namespace", cfg.Namespace, "$service", ".*").Replace(q.Expr)
			series, err := prom.Query(ctx, expr)
			if err != nil {
				return fmt.Errorf("%s: %v", q.Panel, err)
			}
			if len(series) == 0 {
				if !mayBeEmpty[q.Panel] {
					problems = append(problems, q.Panel+": no series: "+expr)
				}
				continue
			}
			if !byService.MatchString(q.Expr) {
				continue
			}
			seen := map[string]int{}
			for _, s := range series {
				svc := s.Labels["service"]
				if !slices.Contains(everyService, svc) {
					problems = append(problems, fmt.Sprintf("%s: a series for service %q: %v", q.Panel, svc, s.Labels))
				}
				if strings.HasPrefix(q.Expr, "max by (service) ") {
					seen[svc]++
				}
			}
			for svc, n := range seen {
				if n != 1 {
					problems = append(problems, fmt.Sprintf("%s: %d series for %s", q.Panel, n, svc))
				}
			}
			if strings.Contains(q.Expr, "elmascale_replicas_") && strings.HasPrefix(q.Expr, "max by (service)") && len(seen) != len(everyService) {
				problems = append(problems, fmt.Sprintf("%s: %d services of %d", q.Panel, len(seen), len(everyService)))
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "\n"))
		}
		return nil
	})
}

// operatorLabels are the target labels the Prometheus Operator gives a
// pod scraped through a ServiceMonitor on a Service of the same name.
func operatorLabels(ns, service, pod string) map[string]string {
	return map[string]string{"namespace": ns, "service": service, "pod": pod, "endpoint": "http-metrics", "container": service}
}

// workerQueues are the RabbitMQ queues the config's queue signals read.
func workerQueues(cfg *config.Config) []string {
	var out []string
	for _, s := range cfg.Services {
		for _, sig := range s.Signals {
			if sig.Queue != nil && sig.Queue.Backlog == "" {
				out = append(out, sig.Queue.Queues...)
			}
		}
	}
	return out
}

// podCommand turns the rendered Deployment's container into a command
// line and environment, the way the kubelet would: env from field and
// Secret references (read from the API server), $(VAR) expanded in args,
// every ConfigMap and Secret volume written under root at its mount path
// and args naming a mount path pointed there, and the flags in replace
// given the local address instead of the cluster's.
func podCommand(ctx context.Context, t *testing.T, admin kubernetes.Interface, dep map[string]any, root, podName string, replace map[string]string) (args, env []string) {
	t.Helper()
	var spec corev1.PodSpec
	raw, _ := json.Marshal(at(dep, "spec", "template", "spec"))
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	ns := at(dep, "metadata", "namespace").(string)
	ctr := spec.Containers[0]
	vars := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			vars[e.Name] = ns
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			vars[e.Name] = podName
		case e.ValueFrom.SecretKeyRef != nil:
			s, err := admin.CoreV1().Secrets(ns).Get(ctx, e.ValueFrom.SecretKeyRef.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("env %s: %v", e.Name, err)
			}
			vars[e.Name] = string(s.Data[e.ValueFrom.SecretKeyRef.Key])
		default:
			t.Fatalf("env %s: a source this test does not know", e.Name)
		}
		env = append(env, e.Name+"="+vars[e.Name])
	}
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			t.Fatalf("mount %s: no volume", m.Name)
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		mounts[m.MountPath] = dir
		files := map[string][]byte{}
		var items []corev1.KeyToPath
		switch v := spec.Volumes[i]; {
		case v.ConfigMap != nil:
			cm, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, d := range cm.Data {
				files[k] = []byte(d)
			}
			items = v.ConfigMap.Items
		case v.Secret != nil:
			s, err := admin.CoreV1().Secrets(ns).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			files = s.Data
			items = v.Secret.Items
		default:
			t.Fatalf("volume %s: a source this test does not know", v.Name)
		}
		if items == nil {
			for k := range files {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			writeFile(t, filepath.Join(dir, it.Path), string(files[it.Key]))
		}
	}
	expand := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, a := range append(slices.Clone(ctr.Command), ctr.Args...) {
		a = expand.ReplaceAllStringFunc(a, func(m string) string { return vars[m[2:len(m)-1]] })
		for flag, v := range replace {
			if strings.HasPrefix(a, flag) {
				a = flag + v
			}
		}
		for path, dir := range mounts {
			if i := strings.Index(a, "="+path+"/"); i >= 0 {
				a = a[:i+1] + dir + a[i+1+len(path):]
			}
		}
		args = append(args, a)
	}
	return args, env
}

// tokenKubeconfig writes a kubeconfig holding a token of ServiceAccount
// ns/name: what the pod's projected token gives client-go in-cluster.
func tokenKubeconfig(ctx context.Context, t *testing.T, c *testcluster.Cluster, admin kubernetes.Interface, ns, name, dir string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: c.AdminConfig.Host, CertificateAuthorityData: c.AdminConfig.CAData, CertificateAuthority: c.AdminConfig.CAFile}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: saToken(ctx, t, admin, ns, name)}
	kc.Contexts["sa"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "sa", Namespace: ns}
	kc.CurrentContext = "sa"
	path := filepath.Join(dir, "serviceaccount.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func saToken(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns, name string) string {
	t.Helper()
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

func ensureServiceAccount(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns, name string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// chartCRDs are the chart's crds/ files, which helm install applies first.
func chartCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, f := range ch.CRDObjects() {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(f.File.Data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f.Filename, err)
		}
		out = append(out, u)
	}
	return out
}

// decisions reads the decisions API with a bearer token.
func decisions(base, token string) ([]record.DecisionRecord, error) {
	code, body := get(base+"/api/v1/decisions", token)
	if code != http.StatusOK {
		return nil, fmt.Errorf("decisions: HTTP %d: %.300s", code, body)
	}
	var resp struct {
		Decisions []record.DecisionRecord `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, err
	}
	return resp.Decisions, nil
}

func get(u, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// buildBinary compiles elmascale as the image builds it.
func buildBinary(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "elmascale")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "noplots", "-ldflags", "-s -w", "-o", bin, "./cmd/elmascale")
	cmd.Dir = kubetest.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go build: %v\n%s", err, out)
		return "/nonexistent/elmascale"
	}
	return bin
}

func freeLocalAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
