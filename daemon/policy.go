package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/config"
	metrics "github.com/elmascale/elmascale/record"
)

// configSource is what the loop needs of wherever the config comes from: a
// file (ConfigSource) or a ScalingPolicy (PolicySource).
type configSource interface {
	Current() *config.Config
	Changed() <-chan struct{}
}

var (
	_ configSource = (*ConfigSource)(nil)
	_ configSource = (*PolicySource)(nil)
)

// Event reasons on a ScalingPolicy.
const (
	EventPolicyLoaded  = "PolicyLoaded"
	EventPolicyInvalid = "PolicyInvalid"
)

// PolicyState is what the daemon made of its ScalingPolicy.
type PolicyState struct {
	// InForce is the generation the config in force was compiled from; 0
	// before any compiled.
	InForce int64
	// Latest is the newest generation seen.
	Latest int64
	// Err is why Latest could not be taken (it did not compile, or it
	// asks for what needs a restart); nil when Latest is in force.
	Err error
	// Deleted is true when the resource is gone: the last config stays in
	// force until it comes back.
	Deleted bool
}

// PolicySource holds the config compiled from one ScalingPolicy, watched
// through the API server. A generation the API server accepted but
// elmascale cannot compile (a dependsOn naming no service, a cycle, a rule
// only the whole config can check) keeps the last good config in force,
// says so in the state the status writer reports, and in a Warning Event.
type PolicySource struct {
	Namespace, Name string

	dyn    dynamic.Interface
	adjust func(*config.Config) error
	log    *zap.Logger
	onLoad func(result string)
	events record.EventRecorder

	cur   atomic.Pointer[config.Config]
	state atomic.Pointer[PolicyState]
	first chan struct{} // closed when a config is first in force

	mu       sync.Mutex
	changed  chan struct{}
	onChange []func()
}

// NewPolicySource watches the ScalingPolicy namespace/name. events may be
// nil. Call Start, then WaitFirst.
func NewPolicySource(dyn dynamic.Interface, namespace, name string, adjust func(*config.Config) error, events record.EventRecorder, log *zap.Logger, onLoad func(string)) *PolicySource {
	if log == nil {
		log = zap.NewNop()
	}
	if onLoad == nil {
		onLoad = func(string) {}
	}
	s := &PolicySource{Namespace: namespace, Name: name, dyn: dyn, adjust: adjust, log: log, onLoad: onLoad, events: events, first: make(chan struct{})}
	s.state.Store(&PolicyState{})
	return s
}

// Current returns the config in force; nil only before WaitFirst returned.
func (s *PolicySource) Current() *config.Config { return s.cur.Load() }

// State returns what the daemon made of the resource.
func (s *PolicySource) State() PolicyState { return *s.state.Load() }

// Changed: see ConfigSource.Changed.
func (s *PolicySource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// OnStateChange registers f, called after every change of State.
func (s *PolicySource) OnStateChange(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, f)
}

// Start runs the watch until ctx ends.
func (s *PolicySource) Start(ctx context.Context) {
	inf := dynamicinformer.NewFilteredDynamicInformer(s.dyn, v1alpha1.GroupVersionResource, s.Namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.Name).String()
		})
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.take(obj) },
		UpdateFunc: func(_, obj any) { s.take(obj) },
		DeleteFunc: func(any) { s.deleted() },
	})
	go inf.Informer().Run(ctx.Done())
}

// WaitFirst waits until a generation of the resource compiles, logging
// every so often what it is waiting for.
func (s *PolicySource) WaitFirst(ctx context.Context) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.first:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("no usable ScalingPolicy %s/%s: %w", s.Namespace, s.Name, ctx.Err())
		case <-t.C:
			st := s.State()
			switch {
			case st.Latest == 0:
				s.log.Warn("waiting for the ScalingPolicy to exist", zap.String("namespace", s.Namespace), zap.String("name", s.Name))
			default:
				s.log.Warn("waiting for a ScalingPolicy that compiles", zap.String("namespace", s.Namespace), zap.String("name", s.Name), zap.Error(st.Err))
			}
		}
	}
}

func (s *PolicySource) take(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	prev := s.State()
	gen := u.GetGeneration()
	if gen == prev.Latest && gen != 0 && !prev.Deleted {
		return // a status write, or a resync: the spec is the one already judged
	}
	next := PolicyState{InForce: prev.InForce, Latest: gen}
	cfg, err := s.compile(u)
	if err != nil {
		next.Err = err
		result := metrics.ReloadFailure
		if errors.As(err, new(rejectError)) {
			result = metrics.ReloadRejected
		}
		s.onLoad(result)
		s.log.Error("ScalingPolicy generation not taken; the config in force stays", zap.Int64("generation", gen), zap.Int64("inForce", prev.InForce), zap.Error(err))
		s.event(u, corev1.EventTypeWarning, EventPolicyInvalid, invalidMessage(gen, prev.InForce, err))
		s.setState(next)
		return
	}
	next.InForce = gen
	s.cur.Store(cfg)
	s.setState(next)
	s.mu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
	select {
	case <-s.first:
		s.onLoad(metrics.ReloadSuccess)
	default:
		close(s.first)
	}
	s.log.Info("ScalingPolicy in force", zap.String("namespace", s.Namespace), zap.String("name", s.Name), zap.Int64("generation", gen),
		zap.Int("services", len(cfg.Services)), zap.Duration("interval", cfg.Interval))
	s.event(u, corev1.EventTypeNormal, EventPolicyLoaded, fmt.Sprintf("generation %d in force: %d services, every %s", gen, len(cfg.Services), cfg.Interval))
}

func (s *PolicySource) compile(u *unstructured.Unstructured) (*config.Config, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	return parseAdjusted(data, s.adjust)
}

// PolicyConfig compiles a ScalingPolicy read from the API server as run
// --policy does, without the command line's overrides.
func PolicyConfig(u *unstructured.Unstructured) (*config.Config, error) {
	return (&PolicySource{}).compile(u)
}

func (s *PolicySource) deleted() {
	st := s.State()
	st.Deleted = true
	s.log.Warn("ScalingPolicy deleted; the config in force stays until it is created again", zap.String("namespace", s.Namespace), zap.String("name", s.Name))
	s.setState(st)
}

func (s *PolicySource) setState(st PolicyState) {
	s.state.Store(&st)
	s.mu.Lock()
	fs := append([]func(){}, s.onChange...)
	s.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (s *PolicySource) event(u *unstructured.Unstructured, typ, reason, msg string) {
	if s.events != nil {
		s.events.Event(u, typ, reason, msg)
	}
}

// invalidMessage says which generation failed, what stays in force, and
// why, within what an Event or a condition can carry.
func invalidMessage(gen, inForce int64, err error) string {
	keep := "no earlier generation compiled, so nothing is scaled"
	if inForce > 0 {
		keep = fmt.Sprintf("generation %d stays in force", inForce)
	}
	return truncate(fmt.Sprintf("generation %d not taken (%s): %s", gen, keep, strings.ReplaceAll(err.Error(), "\n", "; ")), 1000)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n])
	return string(r[:len(r)-1]) + "…"
}

// openConfig opens the config source Options name: the ScalingPolicy when
// o.Policy is set (waiting until a generation of it compiles, its status
// saying meanwhile why not), the file otherwise. The status writer is nil
// for a file.
func openConfig(ctx context.Context, o *Options, adjust func(*config.Config) error, client kubernetes.Interface, log *zap.Logger, onLoad func(string)) (configSource, *StatusWriter, error) {
	if o.Policy == "" {
		src, err := NewConfigSource(o.ConfigPath, adjust, log, onLoad)
		return src, nil, err
	}
	ns, name, err := ParsePolicyRef(o.Policy, o.Namespace)
	if err != nil {
		return nil, nil, err
	}
	if o.Namespace != "" && o.Namespace != ns {
		return nil, nil, fmt.Errorf("ScalingPolicy %s/%s manages its own namespace, not --namespace %s", ns, name, o.Namespace)
	}
	dyn, err := dynamic.NewForConfig(o.RESTConfig)
	if err != nil {
		return nil, nil, err
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events(ns)})
	go func() { <-ctx.Done(); b.Shutdown() }()
	events := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "elmascale"})
	src := NewPolicySource(dyn, ns, name, adjust, events, log.Named("policy"), onLoad)
	sw := &StatusWriter{Source: src, Dyn: dyn, Mode: o.Mode, Log: log.Named("status")}
	src.OnStateChange(func() { sw.Forget(); sw.Kick() })
	go sw.Run(ctx)
	src.Start(ctx)
	log.Info("config from a ScalingPolicy", zap.String("namespace", ns), zap.String("name", name))
	if o.HealthAddr != "" {
		// Until a generation compiles the daemon is alive but not ready:
		// the pod is not restarted for a policy not applied yet.
		stop := serveWaitingProbes(o.HealthAddr, src, log)
		defer stop()
	}
	if err := src.WaitFirst(ctx); err != nil {
		return nil, nil, err
	}
	return src, sw, nil
}

// serveWaitingProbes answers /healthz with ok and /readyz with why no
// config is in force yet, until stop is called (which frees the address
// for the daemon's own servers).
func serveWaitingProbes(addr string, src *PolicySource, log *zap.Logger) (stop func()) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("probes not served while waiting for the ScalingPolicy", zap.Error(err))
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		why := fmt.Sprintf("waiting for the ScalingPolicy %s/%s to exist", src.Namespace, src.Name)
		if st := src.State(); st.Err != nil {
			why = invalidMessage(st.Latest, st.InForce, st.Err)
		}
		http.Error(w, why, http.StatusServiceUnavailable)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return func() {
		_ = srv.Close()
		<-done
	}
}

// ParsePolicyRef reads "namespace/name", or "name" in defaultNamespace.
func ParsePolicyRef(ref, defaultNamespace string) (namespace, name string, err error) {
	ns, n, found := strings.Cut(ref, "/")
	if !found {
		ns, n = defaultNamespace, ref
	}
	if ns == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("ScalingPolicy %q: want namespace/name, or a name with --namespace", ref)
	}
	return ns, n, nil
}
