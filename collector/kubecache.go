package collector

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// kubeCache holds the informers of one namespace: its Deployments and
// StatefulSets (each cut down to its selector) and its pods (cut down to
// what podStateOf reads), so a tick reads memory, not the API server. A
// tick used to list every pod and workload of the namespace: at a
// thousand services that is megabytes decoded and dropped every tick and
// as many objects served by the API server.
type kubeCache struct {
	namespace string
	core      kubernetes.Interface
	m         *metrics
	ctx       context.Context
	stop      context.CancelFunc

	mu                  sync.Mutex
	deploys, sets, pods cache.SharedIndexInformer
	lastErr             error // the latest list or watch failure, for a cache that does not sync
	// failing holds, per informer ("pods", "deployments", ...), since when
	// and with what its lists and watches fail; an informer is absent
	// while they succeed. A synced cache then holds what the API server
	// said last, and after staleAfter of that it is no longer read.
	failing    map[string]failure
	staleAfter time.Duration
	now        func() time.Time
}

// cacheStaleAfter is how long a synced cache is still read while its lists
// and watches fail: a reconnect takes a second or two; an API server gone
// for longer leaves pods that may have started, stopped or turned ready
// since, and a signal read from them would decide on a picture that is no
// longer true. The signals fail (and hold) instead.
const cacheStaleAfter = 30 * time.Second

// failure is an informer's failing lists and watches: since the first, the
// latest error.
type failure struct {
	since time.Time
	err   error
}

// labelIndex indexes pods by each of their labels as key=value, so a
// selector with an equality finds its candidates without a scan of every
// pod of the namespace for every service.
const labelIndex = "label"

// cacheFor returns the cache of namespace, starting it on first use; a
// different namespace (a reloaded config) replaces the previous cache.
func (s *kubeSource) cacheFor(namespace string) *kubeCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache != nil && s.cache.namespace == namespace {
		return s.cache
	}
	if s.cache != nil {
		s.cache.stop()
	}
	ctx, stop := context.WithCancel(context.Background())
	s.cache = &kubeCache{namespace: namespace, core: s.core, m: s.m, ctx: ctx, stop: stop, staleAfter: cacheStaleAfter, now: time.Now}
	return s.cache
}

// close stops the informers.
func (s *kubeSource) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache != nil {
		s.cache.stop()
		s.cache = nil
	}
}

// informers returns the pod informer and the workload informers asked for,
// starting those not running yet; an informer not asked for is nil.
func (k *kubeCache) informers(deploys, sets bool) (d, st, p cache.SharedIndexInformer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ns := k.namespace
	if deploys && k.deploys == nil {
		k.deploys = k.start(&appsv1.Deployment{}, cache.Indexers{}, "deployments",
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return k.core.AppsV1().Deployments(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return k.core.AppsV1().Deployments(ns).Watch(ctx, o)
			})
	}
	if sets && k.sets == nil {
		k.sets = k.start(&appsv1.StatefulSet{}, cache.Indexers{}, "statefulsets",
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return k.core.AppsV1().StatefulSets(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return k.core.AppsV1().StatefulSets(ns).Watch(ctx, o)
			})
	}
	if k.pods == nil {
		k.pods = k.start(&corev1.Pod{}, cache.Indexers{labelIndex: podLabels}, "pods",
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return k.core.CoreV1().Pods(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return k.core.CoreV1().Pods(ns).Watch(ctx, o)
			})
	}
	return k.deploys, k.sets, k.pods
}

// start runs an informer whose objects pass through slimForCollector. Its
// lists count as the source's queries; its list and watch failures are
// kept for waitSynced to report.
func (k *kubeCache) start(example runtime.Object, idx cache.Indexers, what string,
	list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			start := time.Now()
			obj, err := list(ctx, o)
			k.m.queries.WithLabelValues(SourceKubernetes).Inc()
			k.m.duration.WithLabelValues(SourceKubernetes).Observe(time.Since(start).Seconds())
			if err == nil {
				k.failed(what, nil)
			}
			return obj, err
		},
		// A watch that cannot be opened is retried by the reflector
		// without a call to the error handler (connection refused during
		// an outage), so it is counted here; one that opens clears it.
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			if err != nil {
				k.failed(what, fmt.Errorf("watch %s in namespace %q: %w", what, k.namespace, err))
			} else {
				k.failed(what, nil)
			}
			return w, err
		},
	}
	// The fake clientset of unit tests cannot stream a watch-list; the
	// wrapper tells the reflector so, and a real client is unaffected.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, k.core), example, 0, idx)
	_ = inf.SetTransform(slimForCollector)
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		// Called for list failures too ("failed to list ..."), also
		// when the workloads stream in through a watch.
		k.failed(what, fmt.Errorf("%s in namespace %q: %w", what, k.namespace, err))
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	go inf.RunWithContext(k.ctx)
	return inf
}

// failed records a list or watch failure of the informer what, or with nil
// a success.
func (k *kubeCache) failed(what string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr = err
	if err == nil {
		delete(k.failing, what)
		return
	}
	if k.failing == nil {
		k.failing = map[string]failure{}
	}
	f, ok := k.failing[what]
	if !ok {
		f.since = k.now()
	}
	f.err = err
	k.failing[what] = f
}

// stale is the error of a synced cache one of whose informers has failed
// its lists and watches for longer than staleAfter, else nil.
func (k *kubeCache) stale() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var worst failure
	for _, f := range k.failing {
		if worst.err == nil || f.since.Before(worst.since) {
			worst = f
		}
	}
	if worst.err == nil {
		return nil
	}
	if d := k.now().Sub(worst.since); d > k.staleAfter {
		return fmt.Errorf("pods and workloads of namespace %q last refreshed %s ago (the API server fails: %w); not read past %s",
			k.namespace, d.Round(time.Second), worst.err, k.staleAfter)
	}
	return nil
}

// waitSynced waits until the informers asked for have their first full
// listing. A list or watch failure before that (say, a missing
// permission) is returned at once, so a source that cannot sync fails its
// signals without holding up the tick; else it waits until ctx ends. A
// synced cache whose lists and watches have failed for longer than
// staleAfter is an error too (see cacheStaleAfter).
func (k *kubeCache) waitSynced(ctx context.Context, deploys, sets bool) error {
	k.mu.Lock()
	synced := []cache.InformerSynced{k.pods.HasSynced}
	if deploys {
		synced = append(synced, k.deploys.HasSynced)
	}
	if sets {
		synced = append(synced, k.sets.HasSynced)
	}
	k.mu.Unlock()
	ready := func() (bool, error) {
		for _, s := range synced {
			if !s() {
				k.mu.Lock()
				defer k.mu.Unlock()
				return false, k.lastErr
			}
		}
		return true, nil
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		switch ok, err := ready(); {
		case ok:
			return k.stale()
		case err != nil:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods and workloads of namespace %q not cached yet: %w", k.namespace, ctx.Err())
		case <-tick.C:
		}
	}
}

// podLabels is the label index's function.
func podLabels(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(p.Labels))
	for k, v := range p.Labels {
		out = append(out, k+"="+v)
	}
	return out, nil
}

// candidates are the pods that may match sel: those carrying the label of
// one of its equalities, or every pod when it has none.
func candidates(idx cache.Indexer, sel labels.Selector) []any {
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if vals := r.ValuesUnsorted(); len(vals) == 1 {
				objs, err := idx.ByIndex(labelIndex, r.Key()+"="+vals[0])
				if err == nil {
					return objs
				}
			}
		}
	}
	return idx.List()
}

// workloadSelector is a cached Deployment's or StatefulSet's selector.
func workloadSelector(obj any) *metav1.LabelSelector {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Selector
	case *appsv1.StatefulSet:
		return o.Spec.Selector
	}
	return nil
}

// slimForCollector keeps of each object only what the source reads: of a
// workload its name and selector; of a pod its name, labels, deletion,
// phase, start time, the PodReady condition and the CPU and memory
// requests of the pod and its containers. A pod so cut is a few hundred
// bytes instead of several kilobytes.
func slimForCollector(obj any) (any, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: slimObjectMeta(&o.ObjectMeta, false),
			Spec: appsv1.DeploymentSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: slimObjectMeta(&o.ObjectMeta, false),
			Spec: appsv1.StatefulSetSpec{Selector: o.Spec.Selector}}, nil
	case *corev1.Pod:
		p := &corev1.Pod{ObjectMeta: slimObjectMeta(&o.ObjectMeta, true)}
		p.Status.Phase, p.Status.StartTime = o.Status.Phase, o.Status.StartTime
		for _, c := range o.Status.Conditions {
			if c.Type == corev1.PodReady {
				p.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}}
			}
		}
		if o.Spec.Resources != nil {
			p.Spec.Resources = &corev1.ResourceRequirements{Requests: requestsRead(o.Spec.Resources.Requests)}
		}
		p.Spec.Containers = make([]corev1.Container, len(o.Spec.Containers))
		for i := range o.Spec.Containers {
			p.Spec.Containers[i].Resources.Requests = requestsRead(o.Spec.Containers[i].Resources.Requests)
		}
		return p, nil
	}
	return obj, nil
}

func slimObjectMeta(m *metav1.ObjectMeta, withLabels bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp}
	if withLabels {
		out.Labels = m.Labels
	}
	return out
}

// requestsRead keeps the CPU and memory entries of a request list: a
// missing entry still reads as missing.
func requestsRead(rl corev1.ResourceList) corev1.ResourceList {
	var out corev1.ResourceList
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := rl[res]; ok {
			if out == nil {
				out = corev1.ResourceList{}
			}
			out[res] = q
		}
	}
	return out
}

// Close stops the informers of the Kubernetes source. The Collector stays
// usable: the next collection that needs them starts them again.
func (c *Collector) Close() {
	if c.kube != nil {
		c.kube.close()
	}
}
