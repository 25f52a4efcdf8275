package testcluster

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Users the cluster knows, for Kubeconfig and UserConfig.
const (
	// UserAdmin authenticates with a client certificate in system:masters.
	UserAdmin = "admin"
	// UserElmascale authenticates with a static bearer token and belongs to
	// no group beyond system:authenticated, so it can do only what RBAC
	// objects created by the test grant it.
	UserElmascale = "elmascale"
)

const (
	// KubernetesVersion is the version `make testcluster` builds.
	KubernetesVersion = "v1.37.2"
	// EnvBinDir names the directory holding the binaries; `make` exports it.
	EnvBinDir = "ELMASCALE_TESTBIN"
	// EnvKeepDir, when set to a non-empty value, keeps the cluster's
	// directory (logs, certificates, etcd data) after Stop for inspection.
	EnvKeepDir = "ELMASCALE_TESTCLUSTER_KEEP"

	// DefaultNodeName is the fake node KWOK manages.
	DefaultNodeName = "kwok-node-0"

	// AnnotationUsageCPU and AnnotationUsageMemory on a pod set the usage
	// KWOK reports for it to metrics-server (e.g. "250m", "300Mi").
	AnnotationUsageCPU    = "kwok.x-k8s.io/usage-cpu"
	AnnotationUsageMemory = "kwok.x-k8s.io/usage-memory"

	serviceCIDR          = "10.96.0.0/16"
	kubernetesServiceIP  = "10.96.0.1"
	metricsServerName    = "metrics-server"
	frontProxyClientName = "front-proxy-client"
	kwokNodeAnnotation   = "kwok.x-k8s.io/node"
	stopGrace            = 10 * time.Second
)

// Binaries the cluster runs, in start order.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "metrics-server"}

//go:embed kwok/*.yaml
var kwokConfigs embed.FS

// Options configure Start. The zero value is a working cluster without
// metrics-server.
type Options struct {
	// BinDir holds the binaries. Empty means $ELMASCALE_TESTBIN, then the
	// bin directory at the root of the elmascale repository.
	BinDir string
	// Dir is where certificates, configs, etcd data and logs go. Empty
	// means a fresh temporary directory, removed by Stop unless
	// $ELMASCALE_TESTCLUSTER_KEEP is set.
	Dir string
	// MetricsServer also starts metrics-server and registers it as the
	// v1beta1.metrics.k8s.io APIService.
	MetricsServer bool
	// NodeName is the name of the fake node; empty means DefaultNodeName.
	NodeName string
	// StartTimeout bounds the whole start-up; zero means 2 minutes.
	StartTimeout time.Duration
	// Logf, if set, receives progress messages (for example t.Logf).
	Logf func(format string, args ...any)
}

// Cluster is a running control plane. Its fields are read-only.
type Cluster struct {
	// Dir holds pki/, kubeconfigs, kwok configs, etcd data and *.log files.
	Dir string
	// APIServerURL is https://127.0.0.1:<port>; it does not change when
	// the API server is restarted.
	APIServerURL string
	// CACertPEM is the CA that signed the API server's serving certificate.
	CACertPEM []byte
	// KubeconfigAdmin and KubeconfigElmascale are kubeconfig file paths.
	KubeconfigAdmin     string
	KubeconfigElmascale string
	// AdminConfig authenticates as a member of system:masters.
	AdminConfig *rest.Config
	// ElmascaleConfig authenticates as user "elmascale" (no groups).
	ElmascaleConfig *rest.Config
	// ElmascaleToken is the static bearer token of user "elmascale".
	ElmascaleToken string
	// NodeName is the fake node that runs every pod.
	NodeName string
	// MetricsServer reports whether metrics.k8s.io is served.
	MetricsServer bool

	opts       Options
	removeDir  bool
	etcdURL    string
	admin      kubernetes.Interface
	procs      []*process // started components, in start order
	mu         sync.Mutex // serialises Stop and the API server restart
	stopped    bool
	apiserver  *process
	readyAfter time.Duration
}

// Start brings up a cluster and returns once the API server is ready, the
// default ServiceAccount exists, the fake node is Ready and (if requested)
// the metrics API is available. On error everything already started is
// stopped and the error carries the tail of each component's log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	started := time.Now()
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	} else {
		// Stamp progress messages with the time since Start was called, so
		// a slow start shows which step it spent its time on.
		logf := opts.Logf
		opts.Logf = func(format string, args ...any) {
			logf("[%5.1fs] "+format, append([]any{time.Since(started).Seconds()}, args...)...)
		}
	}
	binDir, err := resolveBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	if err := checkBinaries(binDir, opts.MetricsServer); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	c := &Cluster{opts: opts, NodeName: opts.NodeName, MetricsServer: opts.MetricsServer}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "elmascale-testcluster-")
		if err != nil {
			return nil, err
		}
		c.Dir, c.removeDir = dir, true
	} else {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, err
		}
		c.Dir = opts.Dir
	}

	if err := c.start(ctx, binDir); err != nil {
		// Keep the directory: the full logs are the way to find out why.
		c.removeDir = false
		err = fmt.Errorf("testcluster: %w (full logs kept in %s)\n%s", err, c.Dir, c.LogTails(25))
		_ = c.Stop()
		return nil, err
	}
	c.readyAfter = time.Since(started)
	opts.Logf("testcluster: ready in %s (dir %s)", c.readyAfter.Round(time.Millisecond), c.Dir)
	return c, nil
}

func (c *Cluster) start(ctx context.Context, binDir string) error {
	ports, err := freePorts(7)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort, msPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
	c.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	c.etcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	c.ElmascaleToken = randomToken()

	pki, err := writePKI(c.Dir, c.ElmascaleToken)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	c.CACertPEM = pki.caPEM
	if err := c.writeKubeconfigs(pki); err != nil {
		return err
	}
	kwokConfigFiles, err := c.writeKWOKConfigs()
	if err != nil {
		return err
	}

	bin := func(name string) string { return filepath.Join(binDir, name) }
	logf := func(name string) string { return filepath.Join(c.Dir, name+".log") }
	kubeconfig := func(name string) string { return filepath.Join(c.Dir, name+".kubeconfig") }

	// etcd: plain HTTP on loopback. --unsafe-no-fsync because durability
	// means nothing for a cluster that lives for one test run and fsync is
	// the slowest thing it does.
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd := newProcess("etcd", bin("etcd"), logf("etcd"),
		"--name=testcluster",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+c.etcdURL,
		"--advertise-client-urls="+c.etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testcluster="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err := c.launch(etcd); err != nil {
		return err
	}
	c.opts.Logf("testcluster: waiting for etcd")
	if err := c.waitFor(ctx, "etcd /health", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, c.etcdURL+"/health")
	}); err != nil {
		return err
	}

	c.apiserver = newProcess("kube-apiserver", bin("kube-apiserver"), logf("kube-apiserver"),
		"--etcd-servers="+c.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// No kubernetes Endpoints pointing at 127.0.0.1: nothing in the
		// cluster could reach it, and the reconciler would fight over it
		// if two test clusters shared an etcd (they do not, but be explicit).
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+pki.APIServerCert,
		"--tls-private-key-file="+pki.APIServerKey,
		"--client-ca-file="+pki.CACert,
		"--token-auth-file="+pki.TokenFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.SAPublic,
		"--service-account-signing-key-file="+pki.SAPrivate,
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		// On SIGTERM, answer new requests with 429 Retry-After while the
		// in-flight ones drain, then give open watches 2 s instead of the
		// default 60 s: StopAPIServer stays quick and clients see what a
		// rolling API server upgrade looks like.
		"--shutdown-send-retry-after=true",
		// The aggregation layer: kube-apiserver proxies metrics.k8s.io to
		// metrics-server with the front-proxy client cert, and
		// metrics-server trusts the user named in the request headers.
		"--requestheader-client-ca-file="+pki.FrontProxyCA,
		"--requestheader-allowed-names="+frontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+pki.FrontProxyCert,
		"--proxy-client-key-file="+pki.FrontProxyKey,
	)
	if err := c.launch(c.apiserver); err != nil {
		return err
	}
	c.opts.Logf("testcluster: waiting for kube-apiserver /readyz")
	if err := c.waitAPIServerReady(ctx); err != nil {
		return err
	}

	for _, p := range []*process{
		newProcess("kube-controller-manager", bin("kube-controller-manager"), logf("kube-controller-manager"),
			"--kubeconfig="+kubeconfig("controller-manager"),
			"--authentication-kubeconfig="+kubeconfig("controller-manager"),
			"--authorization-kubeconfig="+kubeconfig("controller-manager"),
			"--bind-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(kcmPort),
			"--leader-elect=false",
			// Each controller gets its own service account, so RBAC is
			// exercised the way a production cluster does it.
			"--use-service-account-credentials=true",
			"--service-account-private-key-file="+pki.SAPrivate,
			"--root-ca-file="+pki.CACert,
			"--cluster-signing-cert-file="+pki.CACert,
			"--cluster-signing-key-file="+pki.CAKey,
			"--profiling=false",
		),
		// KWOK never binds pods to nodes, so a real scheduler is needed.
		newProcess("kube-scheduler", bin("kube-scheduler"), logf("kube-scheduler"),
			"--kubeconfig="+kubeconfig("scheduler"),
			"--authentication-kubeconfig="+kubeconfig("scheduler"),
			"--authorization-kubeconfig="+kubeconfig("scheduler"),
			"--bind-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(schedPort),
			"--leader-elect=false",
			"--profiling=false",
		),
		// KWOK manages only nodes annotated kwok.x-k8s.io/node=fake and
		// serves their "kubelet" endpoint (metrics) on kwokPort.
		newProcess("kwok", bin("kwok"), logf("kwok"),
			"--kubeconfig="+kubeconfig(UserAdmin),
			"--config="+strings.Join(kwokConfigFiles, ","),
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
			"--node-ip=127.0.0.1",
			"--node-port="+strconv.Itoa(kwokPort),
			"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
			"--node-lease-duration-seconds=40",
		),
	} {
		if err := c.launch(p); err != nil {
			return err
		}
	}

	c.opts.Logf("testcluster: creating node %s", c.NodeName)
	if err := c.createNode(ctx); err != nil {
		return err
	}
	if c.MetricsServer {
		if err := c.startMetricsServer(ctx, bin("metrics-server"), logf("metrics-server"), kubeconfig(UserAdmin), pki, msPort); err != nil {
			return err
		}
	}

	c.opts.Logf("testcluster: waiting for the default ServiceAccount and a Ready node")
	if err := c.waitFor(ctx, "ServiceAccount default/default", func(ctx context.Context) error {
		_, err := c.admin.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "node "+c.NodeName+" Ready", func(ctx context.Context) error {
		node, err := c.admin.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("node not Ready yet")
	}); err != nil {
		return err
	}
	if c.MetricsServer {
		c.opts.Logf("testcluster: waiting for APIService v1beta1.metrics.k8s.io Available")
		if err := c.waitMetricsAPIAvailable(ctx); err != nil {
			return err
		}
	}
	return nil
}

// launch starts p and remembers it for Stop and for the exit watch.
func (c *Cluster) launch(p *process) error {
	if err := p.start(); err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// createNode registers the fake node. KWOK fills in its status (Ready,
// addresses, kubelet port) because of the kwok.x-k8s.io/node annotation;
// the metrics path annotation tells metrics-server where KWOK serves the
// node's resource metrics.
func (c *Cluster) createNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: c.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": c.NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
			Annotations: map[string]string{
				kwokNodeAnnotation:                     "fake",
				"node.alpha.kubernetes.io/ttl":         "0",
				"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + c.NodeName + "/metrics/resource",
			},
		},
	}
	return c.waitFor(ctx, "create node "+c.NodeName, func(ctx context.Context) error {
		_, err := c.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// Stop kills every component (SIGTERM, then SIGKILL after a grace period)
// in reverse start order and removes the directory Start created, unless
// $ELMASCALE_TESTCLUSTER_KEEP is set. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var wg sync.WaitGroup
	// Components other than etcd and the API server stop in parallel; they
	// only matter as clients. The API server goes before etcd so it does not
	// spend its grace period retrying a vanished store.
	for _, p := range c.procs {
		if p.name == "etcd" || p.name == "kube-apiserver" {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(stopGrace) }()
	}
	wg.Wait()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		for _, p := range c.procs {
			if p.name == name {
				p.stop(stopGrace)
			}
		}
	}
	if c.removeDir && os.Getenv(EnvKeepDir) == "" {
		if err := os.RemoveAll(c.Dir); err != nil {
			return fmt.Errorf("testcluster: remove %s: %w", c.Dir, err)
		}
	}
	return nil
}

// StopAPIServer stops kube-apiserver and leaves everything else running, so
// a test can watch its code ride out an API outage.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("testcluster: cluster is stopped")
	}
	c.apiserver.stop(stopGrace)
	return nil
}

// StartAPIServer starts kube-apiserver again with the same flags, so at the
// same address with the same certificates, and waits for /readyz.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("testcluster: cluster is stopped")
	}
	if err := c.apiserver.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.waitAPIServerReady(ctx); err != nil {
		return fmt.Errorf("testcluster: restart kube-apiserver: %w\n%s", err, c.apiserver.tail(25))
	}
	return nil
}

// APIServerRunning reports whether the kube-apiserver process is up.
func (c *Cluster) APIServerRunning() bool { return c.apiserver.pid() != 0 }

// Kubeconfig returns the path of a kubeconfig file for user (UserAdmin or
// UserElmascale), or "" for an unknown user.
func (c *Cluster) Kubeconfig(user string) string {
	switch user {
	case UserAdmin:
		return c.KubeconfigAdmin
	case UserElmascale:
		return c.KubeconfigElmascale
	}
	return ""
}

// UserConfig returns a fresh copy of the rest.Config for user (UserAdmin or
// UserElmascale), or nil for an unknown user. Callers may modify the copy.
func (c *Cluster) UserConfig(user string) *rest.Config {
	switch user {
	case UserAdmin:
		return rest.CopyConfig(c.AdminConfig)
	case UserElmascale:
		return rest.CopyConfig(c.ElmascaleConfig)
	}
	return nil
}

// StartupDuration is how long Start took from call to readiness.
func (c *Cluster) StartupDuration() time.Duration { return c.readyAfter }

// CreateNamespace creates a namespace and waits for its default
// ServiceAccount: until that exists the ServiceAccount admission plugin
// rejects every pod, and ReplicaSets back off for seconds.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.waitFor(ctx, "ServiceAccount "+name+"/default", func(ctx context.Context) error {
		_, err := c.admin.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// LogTails returns the last n lines of every component's log, headed by the
// log file's path: what a failing test should print.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		running := "running"
		if done, err := p.exited(); done {
			running = fmt.Sprintf("exited: %v", err)
		}
		fmt.Fprintf(&b, "---- %s (%s), last %d lines of %s\n%s\n", p.name, running, n, p.logPath, p.tail(n))
	}
	return b.String()
}

// waitAPIServerReady polls /readyz with the admin identity.
func (c *Cluster) waitAPIServerReady(ctx context.Context) error {
	client, err := rest.HTTPClientFor(c.AdminConfig)
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "kube-apiserver /readyz", func(ctx context.Context) error {
		return httpOK(ctx, client, c.APIServerURL+"/readyz")
	})
}

// waitFor polls cond every 100 ms until it returns nil, ctx ends, or one of
// the started components exits (then there is no point waiting further).
func (c *Cluster) waitFor(ctx context.Context, what string, cond func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = cond(attempt)
		cancel()
		if last == nil {
			return nil
		}
		for _, p := range c.procs {
			if done, err := p.exited(); done {
				return fmt.Errorf("%s exited (%v) while waiting for %s", p.name, err, what)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// writeKubeconfigs writes one kubeconfig per identity and builds the
// rest.Configs. Credentials are embedded so each file stands alone.
func (c *Cluster) writeKubeconfigs(pki *pkiFiles) error {
	certUsers := map[string]keyPair{
		UserAdmin:            pki.admin,
		"controller-manager": pki.controllerMgr,
		"scheduler":          pki.scheduler,
	}
	for name, kp := range certUsers {
		cfg := kubeconfigFor(c.APIServerURL, pki.caPEM, name, &clientcmdapi.AuthInfo{
			ClientCertificateData: kp.CertPEM,
			ClientKeyData:         kp.KeyPEM,
		})
		if err := clientcmd.WriteToFile(*cfg, filepath.Join(c.Dir, name+".kubeconfig")); err != nil {
			return err
		}
	}
	cfg := kubeconfigFor(c.APIServerURL, pki.caPEM, UserElmascale, &clientcmdapi.AuthInfo{Token: c.ElmascaleToken})
	if err := clientcmd.WriteToFile(*cfg, filepath.Join(c.Dir, UserElmascale+".kubeconfig")); err != nil {
		return err
	}
	c.KubeconfigAdmin = filepath.Join(c.Dir, UserAdmin+".kubeconfig")
	c.KubeconfigElmascale = filepath.Join(c.Dir, UserElmascale+".kubeconfig")

	tls := rest.TLSClientConfig{CAData: pki.caPEM}
	c.AdminConfig = &rest.Config{Host: c.APIServerURL, TLSClientConfig: tls, QPS: 100, Burst: 200}
	c.AdminConfig.CertData, c.AdminConfig.KeyData = pki.admin.CertPEM, pki.admin.KeyPEM
	c.ElmascaleConfig = &rest.Config{Host: c.APIServerURL, TLSClientConfig: tls, BearerToken: c.ElmascaleToken, QPS: 100, Burst: 200}
	admin, err := kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	c.admin = admin
	return nil
}

func kubeconfigFor(server string, caPEM []byte, user string, auth *clientcmdapi.AuthInfo) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = auth
	cfg.Contexts[user] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: user}
	cfg.CurrentContext = user
	return cfg
}

// writeKWOKConfigs copies the embedded stage and usage configs into the
// cluster directory and returns their paths.
func (c *Cluster) writeKWOKConfigs() ([]string, error) {
	entries, err := kwokConfigs.ReadDir("kwok")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "kwok")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		data, err := kwokConfigs.ReadFile("kwok/" + e.Name())
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, e.Name())
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// freePorts asks the kernel for n distinct free loopback ports. All
// listeners stay open until every port is chosen, so none repeats; another
// process could still grab one before the component binds it, which is
// rare enough on a test machine to accept.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
