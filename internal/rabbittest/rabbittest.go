package rabbittest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// InstallHint is what to run when the broker is missing.
const InstallHint = "make setup-prometheus-rabbitmq (or: sudo apt-get install -y --no-install-recommends rabbitmq-server)"

// Default locations of the Debian package. The wrapper in /usr/sbin would
// switch to the rabbitmq user; the scripts here run as the current user.
const (
	defaultServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	defaultEPMD   = "epmd"
)

// Broker is a running RabbitMQ node.
type Broker struct {
	// URL is the management API's base URL, http://127.0.0.1:port.
	URL string
	// AMQPAddr is the AMQP listener, 127.0.0.1:port.
	AMQPAddr string
	// AdminUser and AdminPassword are the administrator created at boot.
	AdminUser, AdminPassword string
	// TLSURL is the management API's https listener,
	// https://127.0.0.1:port, when the node was started with TLS.
	TLSURL string
	// StartupTime is how long the node took until the management API
	// answered.
	StartupTime time.Duration

	dir       string
	stompAddr string
	cmd       *exec.Cmd
	done      chan struct{}
	epmd      *exec.Cmd
	client    *http.Client
}

var seq atomic.Int64

// TLS is an https listener for the management API, beside its plain one
// (which the helpers here keep using). Files are PEM.
type TLS struct {
	// CertFile and KeyFile are the broker's certificate and key.
	CertFile, KeyFile string
	// CAFile, when set, is the CA client certificates must chain to, and
	// a client without a certificate is refused.
	CAFile string
}

// Options are what a node offers beyond the management API.
type Options struct {
	// TLS, when set, adds an https management listener.
	TLS *TLS
	// STOMP enables the STOMP plugin, whose subscriptions are the
	// queues' consumers (Broker.Subscribe).
	STOMP bool
}

// Start boots a node with the management plugin and waits for its API.
// The caller must Stop it.
func Start() (*Broker, error) { return StartWith(Options{}) }

// StartWith is Start with the options given.
func StartWith(o Options) (*Broker, error) {
	tls := o.TLS
	server := os.Getenv("ELMASCALE_RABBITMQ_SERVER")
	if server == "" {
		server = defaultServer
	}
	if _, err := os.Stat(server); err != nil {
		return nil, fmt.Errorf("rabbitmq-server not found at %s; install it with: %s", server, InstallHint)
	}
	epmdBin, err := exec.LookPath(defaultEPMD)
	if err != nil {
		return nil, fmt.Errorf("epmd not found on PATH (comes with rabbitmq-server's Erlang); install with: %s", InstallHint)
	}
	dir, err := os.MkdirTemp("", "rabbittest-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(6)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	amqp, mgmt, dist, epmdPort, mgmtTLS, stomp := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	b := &Broker{
		URL:           fmt.Sprintf("http://127.0.0.1:%d", mgmt),
		AMQPAddr:      fmt.Sprintf("127.0.0.1:%d", amqp),
		AdminUser:     "admin",
		AdminPassword: "admin-secret",
		dir:           dir,
		client:        &http.Client{Timeout: 10 * time.Second},
	}
	conf := fmt.Sprintf(`listeners.tcp.1 = 127.0.0.1:%d
management.tcp.ip = 127.0.0.1
management.tcp.port = %d
default_user = %s
default_pass = %s
default_user_tags.administrator = true
loopback_users = none
# Queues report statistics this often (default 5s), and the management
# plugin keeps samples at this granularity (default 5s): 1s each lets a
# test read counters and steady rates within seconds.
collect_statistics_interval = 1000
management.sample_retention_policies.global.minute = 1
management.sample_retention_policies.basic.minute = 1
management.sample_retention_policies.detailed.10 = 1
`, amqp, mgmt, b.AdminUser, b.AdminPassword)
	if tls != nil {
		b.TLSURL = fmt.Sprintf("https://127.0.0.1:%d", mgmtTLS)
		conf += fmt.Sprintf("management.ssl.ip = 127.0.0.1\nmanagement.ssl.port = %d\nmanagement.ssl.certfile = %s\nmanagement.ssl.keyfile = %s\n",
			mgmtTLS, tls.CertFile, tls.KeyFile)
		if tls.CAFile != "" {
			conf += fmt.Sprintf("management.ssl.cacertfile = %s\nmanagement.ssl.verify = verify_peer\nmanagement.ssl.fail_if_no_peer_cert = true\n", tls.CAFile)
		}
	}
	plugins := "[rabbitmq_management].\n"
	if o.STOMP {
		b.stompAddr = fmt.Sprintf("127.0.0.1:%d", stomp)
		conf += fmt.Sprintf("stomp.listeners.tcp.1 = %s\n", b.stompAddr)
		plugins = "[rabbitmq_management,rabbitmq_stomp].\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o600); err != nil {
		b.cleanup()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte(plugins), 0o644); err != nil {
		b.cleanup()
		return nil, err
	}
	env := append(os.Environ(),
		"HOME="+dir, // the Erlang cookie is written here, not in the user's home
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		fmt.Sprintf("RABBITMQ_NODENAME=elmascale-test-%d-%d@localhost", os.Getpid(), seq.Add(1)),
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqp),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", dist),
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmdPort),
	)

	// Our own epmd in the foreground: one the node started would daemonize
	// and outlive the test.
	b.epmd = exec.Command(epmdBin, "-port", fmt.Sprint(epmdPort), "-address", "127.0.0.1")
	b.epmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.epmd.Start(); err != nil {
		b.cleanup()
		return nil, fmt.Errorf("start epmd: %w", err)
	}

	logf, err := os.Create(filepath.Join(dir, "server.out"))
	if err != nil {
		b.cleanup()
		return nil, err
	}
	start := time.Now()
	b.cmd = exec.Command(server)
	b.cmd.Dir = dir
	b.cmd.Env = env
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		logf.Close()
		b.cleanup()
		return nil, fmt.Errorf("start %s: %w", server, err)
	}
	b.done = make(chan struct{})
	go func() { b.cmd.Wait(); logf.Close(); close(b.done) }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-b.done:
			out := b.logTail()
			b.cmd = nil
			b.cleanup()
			return nil, fmt.Errorf("rabbitmq-server exited during start-up:\n%s", out)
		default:
		}
		if err := b.do(http.MethodGet, "/api/overview", nil, nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			out := b.logTail()
			b.Stop()
			return nil, fmt.Errorf("rabbitmq management API not answering after 90s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StartupTime = time.Since(start)
	return b, nil
}

// Stop shuts the node down (SIGTERM, SIGKILL after 30s), ends epmd and
// removes the temp dir.
func (b *Broker) Stop() {
	if b.cmd != nil {
		pgid := b.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-b.done
		}
		b.cmd = nil
	}
	b.cleanup()
}

func (b *Broker) cleanup() {
	if b.epmd != nil && b.epmd.Process != nil {
		_ = syscall.Kill(-b.epmd.Process.Pid, syscall.SIGKILL)
		_ = b.epmd.Wait()
		b.epmd = nil
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
		b.dir = ""
	}
}

func (b *Broker) logTail() string {
	var out []byte
	for _, p := range []string{filepath.Join(b.dir, "server.out")} {
		data, _ := os.ReadFile(p)
		out = append(out, data...)
	}
	if logs, _ := filepath.Glob(filepath.Join(b.dir, "log", "*.log")); len(logs) > 0 {
		data, _ := os.ReadFile(logs[0])
		out = append(out, data...)
	}
	if len(out) > 6000 {
		out = out[len(out)-6000:]
	}
	return string(out)
}

var (
	shared     *Broker
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns the one broker of this test binary, starting it on first
// use; a node takes seconds to boot, so tests share it and keep apart by
// queue names. It runs STOMP, so a test can hold messages unacknowledged
// (Subscribe). Main stops it. A missing broker fails the test.
func Shared(t testing.TB) *Broker {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = StartWith(Options{STOMP: true})
		if sharedErr == nil {
			fmt.Fprintf(os.Stderr, "rabbittest: broker at %s ready in %s\n", shared.URL, shared.StartupTime.Round(time.Millisecond))
		}
	})
	if sharedErr != nil {
		t.Fatalf("rabbittest: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and then stops the shared broker, if one started:
//
//	func TestMain(m *testing.M) { os.Exit(rabbittest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// CreateUser adds a user with the given tags (e.g. "monitoring") and full
// permissions on vhost.
func (b *Broker) CreateUser(name, password, tags, vhost string) error {
	if err := b.do(http.MethodPut, "/api/users/"+url.PathEscape(name), map[string]any{"password": password, "tags": tags}, nil); err != nil {
		return err
	}
	perm := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	return b.do(http.MethodPut, "/api/permissions/"+url.PathEscape(vhost)+"/"+url.PathEscape(name), perm, nil)
}

// DeclareQueue creates a non-durable queue.
func (b *Broker) DeclareQueue(vhost, name string) error {
	return b.do(http.MethodPut, queuePath(vhost, name), map[string]any{"durable": false, "auto_delete": false}, nil)
}

// DeleteQueue removes a queue.
func (b *Broker) DeleteQueue(vhost, name string) error {
	return b.do(http.MethodDelete, queuePath(vhost, name), nil, nil)
}

// Publish sends n messages to queue through the default exchange, one
// management API call each.
func (b *Broker) Publish(vhost, queue string, n int) error {
	msg := map[string]any{"properties": map[string]any{}, "routing_key": queue, "payload": "job", "payload_encoding": "string"}
	for i := 0; i < n; i++ {
		var res struct {
			Routed bool `json:"routed"`
		}
		if err := b.do(http.MethodPost, "/api/exchanges/"+url.PathEscape(vhost)+"/amq.default/publish", msg, &res); err != nil {
			return err
		}
		if !res.Routed {
			return fmt.Errorf("message to %q was not routed (does the queue exist?)", queue)
		}
	}
	return nil
}

// Consume takes up to n messages off queue and completes them
// (ack_requeue_false), returning how many it got.
func (b *Broker) Consume(vhost, queue string, n int) (int, error) {
	var msgs []json.RawMessage
	req := map[string]any{"count": n, "ackmode": "ack_requeue_false", "encoding": "auto"}
	if err := b.do(http.MethodPost, queuePath(vhost, queue)+"/get", req, &msgs); err != nil {
		return 0, err
	}
	return len(msgs), nil
}

// QueueInfo is what the management API says of a queue.
type QueueInfo struct {
	MessagesReady          *float64 `json:"messages_ready"`
	MessagesUnacknowledged *float64 `json:"messages_unacknowledged"`
}

// Queue reads a queue's counters.
func (b *Broker) Queue(vhost, name string) (QueueInfo, error) {
	var qi QueueInfo
	err := b.do(http.MethodGet, queuePath(vhost, name), nil, &qi)
	return qi, err
}

func queuePath(vhost, name string) string {
	return "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(name)
}

// do calls the management API as the administrator.
func (b *Broker) do(method, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.URL+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(b.AdminUser, b.AdminPassword)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if into != nil {
		if err := json.Unmarshal(data, into); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// freePorts reserves n distinct loopback ports and releases them; the
// broker binds them right after.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(errors.New("reserve port"), err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Subscribe attaches a consumer to queue in vhost "/" as the administrator,
// through STOMP (the node must have been started with Options.STOMP). It
// acknowledges nothing, so messages it receives stay unacknowledged, and
// it is detached when the returned function is called.
func (b *Broker) Subscribe(queue string) (stop func(), err error) {
	if b.stompAddr == "" {
		return nil, errors.New("rabbittest: the node was started without STOMP")
	}
	conn, err := net.DialTimeout("tcp", b.stompAddr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	frame := func(cmd string, headers ...string) string {
		return cmd + "\n" + strings.Join(headers, "\n") + "\n\n\x00"
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, frame("CONNECT", "accept-version:1.2", "host:/", "login:"+b.AdminUser, "passcode:"+b.AdminPassword)); err != nil {
		conn.Close()
		return nil, err
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "CONNECTED") {
		conn.Close()
		return nil, fmt.Errorf("rabbittest: STOMP connect: %q %v", buf[:n], err)
	}
	// prefetch-count 1: the consumer holds at most one message.
	if _, err := io.WriteString(conn, frame("SUBSCRIBE", "id:0", "destination:/amq/queue/"+queue, "ack:client-individual", "prefetch-count:1")); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	// Drain what the broker sends so it never blocks on this connection.
	go func() { _, _ = io.Copy(io.Discard, conn) }()
	return func() { _ = conn.Close() }, nil
}
