package scaler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/elmascale/elmascale/loop"
)

// Mode says whether decisions are written or only recommended.
type Mode string

// Modes.
const (
	// ModeApply writes desired replicas (only while leader).
	ModeApply Mode = "apply"
	// ModeDryRun publishes decisions as recommendations and never writes
	// spec.replicas.
	ModeDryRun Mode = "dry-run"
)

// Annotations elmascale reads or writes on scale targets.
const (
	// AnnotationPaused set to "true" on a Deployment or StatefulSet makes
	// elmascale leave it alone.
	AnnotationPaused = "elmascale.io/paused"
	// AnnotationRecommended is written in dry-run (when asked) with the
	// recommended replica count.
	AnnotationRecommended = "elmascale.io/recommended-replicas"
	// AnnotationSingleInstance set to "true" on a Deployment or StatefulSet
	// says it cannot run as more than one instance: elmascale holds it at
	// exactly one whatever its config entry, another autoscaler or a pause
	// says.
	AnnotationSingleInstance = "elmascale.io/single-instance"
)

// Who else may own a target; the part of TargetStatus.HandedOff before "/".
const (
	OwnerHPA          = "HorizontalPodAutoscaler"
	OwnerScaledObject = "ScaledObject"
	OwnerPaused       = "paused"
)

// Event reasons, for `kubectl get events --field-selector reason=...`.
const (
	ReasonScaledUp        = "ScaledUp"
	ReasonScaledDown      = "ScaledDown"
	ReasonPinnedScaledTo1 = "PinnedServiceScaledDown"
	// ReasonPinnedHandOffRefused: another owner (an HPA, a ScaledObject, the
	// pause annotation) claims a single-instance target; elmascale keeps it
	// at one instead of handing it off.
	ReasonPinnedHandOffRefused = "PinnedHandOffRefused"
	ReasonHandedOff            = "HandedOff"
	ReasonHandOffEnded         = "HandOffEnded"
	ReasonScaleFailed          = "ScaleFailed"
	// ReasonRecommendationFailed: the dry-run annotation could not be
	// written.
	ReasonRecommendationFailed = "RecommendationNotRecorded"
)

// ScaledObjectGVR is KEDA's ScaledObject resource.
var ScaledObjectGVR = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}

// Options configure a Scaler. Client, Scales and Mapper are required; use
// NewForConfig to build them from a rest.Config.
type Options struct {
	Client kubernetes.Interface
	// Scales reads and writes the scale subresource.
	Scales scale.ScalesGetter
	// Mapper maps a target's kind to its resource.
	Mapper meta.RESTMapper
	// Dynamic reads KEDA ScaledObjects. Nil means ScaledObjects are not
	// looked for; a cluster without the CRD simply has none.
	Dynamic dynamic.Interface
	// Discovery tells whether the ScaledObject CRD is served; nil means
	// Client's discovery.
	Discovery discovery.DiscoveryInterface

	// Namespace of every target. Informers watch only this namespace.
	Namespace string
	Mode      Mode
	// IsLeader reports whether this process may write; nil means always.
	// It is asked right before every write (fencing), not once a tick, so a
	// leader deposed mid-tick writes nothing more.
	IsLeader func() bool
	// WriteTimeout bounds each write (scale update, annotation), inside
	// the tick's own context; zero means 10s.
	WriteTimeout time.Duration
	// AnnotateRecommendations writes AnnotationRecommended in dry-run.
	AnnotateRecommendations bool
	// Events records Kubernetes Events. Nil means a recorder writing to the
	// API server, flushed by Close.
	Events record.EventRecorder
	Logger *zap.Logger
	// Resync of the informers; zero means none (watch events only).
	Resync time.Duration
	// CRDRecheck is how often a missing ScaledObject CRD is looked for
	// again; zero means one minute.
	CRDRecheck time.Duration
	// Now is the clock for the CRD recheck; nil means time.Now.
	Now func() time.Time
	// ScaledObjectWait bounds how long Start waits for the ScaledObject
	// cache when KEDA is installed; zero means 30s. Past it Start returns
	// and every tick holds, saying why, until the cache is filled (say,
	// once a missing permission to list ScaledObjects is granted).
	ScaledObjectWait time.Duration
}

// Scaler implements loop.Scaler against a Kubernetes API server.
type Scaler struct {
	opts   Options
	log    *zap.Logger
	events record.EventRecorder
	closer func()

	factory    informers.SharedInformerFactory
	deploys    appslisters.DeploymentLister
	sets       appslisters.StatefulSetLister
	hpas       autoscalinglisters.HorizontalPodAutoscalerLister
	synced     []cache.InformerSynced
	dynFactory dynamicinformer.DynamicSharedInformerFactory
	soLister   cache.GenericLister
	soSynced   cache.InformerSynced

	mu       sync.Mutex
	started  bool
	runCtx   context.Context
	lastCRD  time.Time
	targets  map[string]target // as of the last Observe
	handoffs map[string]string // service -> HandedOff last seen
	recs     recommendations   // dry-run Events told, per target
}

var _ loop.Scaler = (*Scaler)(nil)

// NewForConfig builds the clients a Scaler needs from cfg and fills in what
// opts leaves empty.
func NewForConfig(cfg *rest.Config, opts Options) (*Scaler, error) {
	if opts.Client == nil {
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts.Client = c
	}
	if opts.Discovery == nil {
		opts.Discovery = opts.Client.Discovery()
	}
	if opts.Mapper == nil {
		// Deferred: discovery runs on first use and is cached, so an API
		// server that is down at start-up does not fail construction.
		opts.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(opts.Discovery))
	}
	if opts.Scales == nil {
		s, err := scale.NewForConfig(cfg, opts.Mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(opts.Discovery))
		if err != nil {
			return nil, err
		}
		opts.Scales = s
	}
	if opts.Dynamic == nil {
		d, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts.Dynamic = d
	}
	return New(opts)
}

// New returns a Scaler; call Start before the first Observe.
func New(opts Options) (*Scaler, error) {
	if opts.Client == nil || opts.Scales == nil || opts.Mapper == nil {
		return nil, errors.New("scaler: Client, Scales and Mapper are required")
	}
	if opts.Namespace == "" {
		return nil, errors.New("scaler: namespace is required")
	}
	switch opts.Mode {
	case ModeApply, ModeDryRun:
	case "":
		opts.Mode = ModeDryRun
	default:
		return nil, fmt.Errorf("scaler: unknown mode %q (want %s or %s)", opts.Mode, ModeApply, ModeDryRun)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Discovery == nil {
		opts.Discovery = opts.Client.Discovery()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.CRDRecheck == 0 {
		opts.CRDRecheck = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Scaler{opts: opts, log: opts.Logger, handoffs: map[string]string{}}

	s.events = opts.Events
	s.closer = func() {}
	if s.events == nil {
		// The default spam filter lets 25 events per object through and
		// then one per five minutes, which would hide the scale events of a
		// busy service; allow more while still protecting the API server.
		b := record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{BurstSize: 100, QPS: 1.0 / 15}))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: opts.Client.CoreV1().Events(opts.Namespace)})
		s.events = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "elmascale"})
		s.closer = b.Shutdown
	}

	s.factory = informers.NewSharedInformerFactoryWithOptions(opts.Client, opts.Resync,
		informers.WithNamespace(opts.Namespace), informers.WithTransform(slim))
	d := s.factory.Apps().V1().Deployments()
	st := s.factory.Apps().V1().StatefulSets()
	h := s.factory.Autoscaling().V2().HorizontalPodAutoscalers()
	s.deploys, s.sets, s.hpas = d.Lister(), st.Lister(), h.Lister()
	s.synced = []cache.InformerSynced{d.Informer().HasSynced, st.Informer().HasSynced, h.Informer().HasSynced}
	return s, nil
}

// Start starts the informers and waits until their caches are filled or ctx
// ends. The informers run until ctx ends.
func (s *Scaler) Start(ctx context.Context) error {
	s.mu.Lock()
	s.runCtx = ctx
	s.started = true
	s.factory.Start(ctx.Done())
	s.ensureScaledObjects(ctx)
	soSynced := s.soSynced
	s.mu.Unlock()
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("scaler: informer caches did not sync: %w", ctx.Err())
	}
	if soSynced != nil {
		// KEDA is installed: the first tick should already see its
		// ScaledObjects. Until they are cached, Observe holds every tick
		// (errScaledObjectsNotSynced), so a wait cut short scales
		// nothing KEDA owns; it only keeps the daemon from hanging here.
		wait := s.opts.ScaledObjectWait
		if wait <= 0 {
			wait = 30 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if !cache.WaitForCacheSync(wctx.Done(), soSynced) {
			s.log.Warn("KEDA ScaledObjects are not cached yet (can elmascale list them?); every tick holds until they are",
				zap.Duration("waited", wait))
		}
	}
	return nil
}

// Close flushes pending Events. Stop the informers by cancelling the
// context given to Start.
func (s *Scaler) Close() { s.closer() }

// ensureScaledObjects starts a ScaledObject informer once the KEDA CRD is
// served. Without the CRD there are no ScaledObjects to respect; the check
// repeats every CRDRecheck so KEDA installed later is noticed.
func (s *Scaler) ensureScaledObjects(ctx context.Context) {
	if s.opts.Dynamic == nil || s.soLister != nil {
		return
	}
	now := s.opts.Now()
	if !s.lastCRD.IsZero() && now.Sub(s.lastCRD) < s.opts.CRDRecheck {
		return
	}
	s.lastCRD = now
	if !scaledObjectsServed(s.opts.Discovery) {
		return
	}
	s.dynFactory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.opts.Dynamic, s.opts.Resync, s.opts.Namespace, nil)
	inf := s.dynFactory.ForResource(ScaledObjectGVR)
	s.soLister, s.soSynced = inf.Lister(), inf.Informer().HasSynced
	s.dynFactory.Start(ctx.Done())
	s.log.Info("KEDA ScaledObjects found; targets they scale are handed off")
}

func scaledObjectsServed(d discovery.DiscoveryInterface) bool {
	if d == nil {
		return false
	}
	list, err := d.ServerResourcesForGroupVersion(ScaledObjectGVR.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == ScaledObjectGVR.Resource {
			return true
		}
	}
	return false
}

func (s *Scaler) isLeader() bool { return s.opts.IsLeader == nil || s.opts.IsLeader() }

// slim drops what elmascale never reads from cached workloads, so watching
// thousands of Deployments stays cheap: managed fields, the pod template and
// the last-applied annotation are most of an object's size; labels, the
// selector, the rollout strategy and annotations other than elmascale's
// own are the rest of what Observe does not read. The cached object is
// still a valid reference for Events (kind, namespace, name, UID).
func slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		slimMeta(&o.ObjectMeta)
		o.Spec.Template = corev1.PodTemplateSpec{}
		o.Spec.Selector, o.Spec.Strategy = nil, appsv1.DeploymentStrategy{}
		o.Status.Conditions = nil
	case *appsv1.StatefulSet:
		slimMeta(&o.ObjectMeta)
		o.Spec.Template = corev1.PodTemplateSpec{}
		o.Spec.VolumeClaimTemplates = nil
		o.Spec.Selector, o.Spec.UpdateStrategy = nil, appsv1.StatefulSetUpdateStrategy{}
		o.Status.Conditions = nil
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// annotationPrefix is what elmascale's own annotations (AnnotationPaused
// and the others) start with: the only ones a cached workload keeps.
const annotationPrefix = "elmascale.io/"

func slimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields, m.Labels = nil, nil
	var own map[string]string
	for k, v := range m.Annotations {
		if strings.HasPrefix(k, annotationPrefix) {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	m.Annotations = own
}
