package scaler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
)

// errNotSynced is returned by Observe before the caches are filled: reading
// an empty cache would look like every target is gone.
var errNotSynced = errors.New("scaler: informer caches not synced yet")

// errScaledObjectsNotSynced is returned by Observe while the ScaledObject
// informer, started once KEDA's CRD is served, has not filled its cache.
var errScaledObjectsNotSynced = errors.New("scaler: ScaledObject cache not synced yet; holding so that no target KEDA scales is scaled")

// target is one resolved scale target: its object from the cache plus what
// Observe made of it.
type target struct {
	obj      runtime.Object
	kind     string
	name     string
	rv       string
	status   loop.TargetStatus
	recorded string // AnnotationRecommended as cached
}

// Observe reads every configured target's replicas from the informer
// caches; it makes no API request. It also notes which targets are handed
// off and records an Event when a target's hand-off state changes.
func (s *Scaler) Observe(ctx context.Context, cfg *config.Config) (map[string]loop.TargetStatus, error) {
	for _, ok := range s.synced {
		if !ok() {
			return nil, errNotSynced
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		s.ensureScaledObjects(s.runCtx)
	}
	owners, err := s.owners()
	if err != nil {
		return nil, err
	}
	out := make(map[string]loop.TargetStatus, len(cfg.Services))
	seen := make(map[string]target, len(cfg.Services))
	for i, svc := range cfg.Services {
		t, err := s.lookup(svc.Target)
		if err != nil {
			s.log.Warn("scale target unreadable", zap.String("service", svc.Name), zap.Error(err))
		}
		if t.status.Found {
			t.status.HandedOff = handedOff(t.obj, owners[svc.Target.Kind+"/"+svc.Target.Name])
			t.status.Pinned = (i < len(cfg.Policy.Services) && cfg.Policy.Services[i].Pinned) || singleInstance(t.obj)
			s.noteHandoff(svc.Name, t)
		}
		out[svc.Name] = t.status
		seen[svc.Name] = t
	}
	s.targets = seen
	return out, nil
}

// lookup reads one target from the caches.
func (s *Scaler) lookup(tg config.Target) (target, error) {
	t := target{kind: tg.Kind, name: tg.Name}
	switch tg.Kind {
	case "Deployment":
		d, err := s.deploys.Deployments(s.opts.Namespace).Get(tg.Name)
		if err != nil {
			return t, ignoreNotFound(err)
		}
		t.obj, t.rv, t.recorded = d, d.ResourceVersion, d.Annotations[AnnotationRecommended]
		t.status = loop.TargetStatus{Found: true, Current: replicas(d.Spec.Replicas), Ready: d.Status.ReadyReplicas}
	case "StatefulSet":
		st, err := s.sets.StatefulSets(s.opts.Namespace).Get(tg.Name)
		if err != nil {
			return t, ignoreNotFound(err)
		}
		t.obj, t.rv, t.recorded = st, st.ResourceVersion, st.Annotations[AnnotationRecommended]
		t.status = loop.TargetStatus{Found: true, Current: replicas(st.Spec.Replicas), Ready: st.Status.ReadyReplicas}
	default:
		return t, fmt.Errorf("unsupported target kind %q", tg.Kind)
	}
	return t, nil
}

// replicas reads spec.replicas, which the API server defaults to 1.
func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// owners maps "Kind/name" of every workload an HPA or a ScaledObject scales
// to that scaler, as "HorizontalPodAutoscaler/x" or "ScaledObject/y". A
// ScaledObject wins over the HPA KEDA creates for it, since the
// ScaledObject is what a user would edit.
func (s *Scaler) owners() (map[string]string, error) {
	m := map[string]string{}
	hpas, err := s.hpas.HorizontalPodAutoscalers(s.opts.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list HPAs from cache: %w", err)
	}
	for _, h := range hpas {
		ref := h.Spec.ScaleTargetRef
		if !appsGroup(ref.APIVersion) {
			continue
		}
		key := ref.Kind + "/" + ref.Name
		if _, ok := m[key]; !ok {
			m[key] = OwnerHPA + "/" + h.Name
		}
	}
	if s.soLister == nil {
		return m, nil
	}
	if !s.soSynced() {
		// The ScaledObject cache is being filled: a target KEDA scales
		// would read as nobody's and be scaled against it. Hold instead.
		return nil, errScaledObjectsNotSynced
	}
	sos, err := s.soLister.ByNamespace(s.opts.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list ScaledObjects from cache: %w", err)
	}
	for _, o := range sos {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind")
		apiVersion, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "apiVersion")
		if kind == "" {
			kind = "Deployment" // KEDA's default
		}
		if name == "" || !appsGroup(apiVersion) {
			continue
		}
		m[kind+"/"+name] = OwnerScaledObject + "/" + u.GetName()
	}
	return m, nil
}

func appsGroup(apiVersion string) bool {
	return apiVersion == "" || apiVersion == "apps/v1" || strings.HasPrefix(apiVersion, "apps/")
}

// annotations of a cached workload.
func annotations(obj runtime.Object) map[string]string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Annotations
	case *appsv1.StatefulSet:
		return o.Annotations
	}
	return nil
}

// singleInstance reports whether the workload carries
// AnnotationSingleInstance=true.
func singleInstance(obj runtime.Object) bool {
	return strings.EqualFold(strings.TrimSpace(annotations(obj)[AnnotationSingleInstance]), "true")
}

// handedOff says who else controls a target: the pause annotation first
// (a human asked), then an HPA or ScaledObject.
func handedOff(obj runtime.Object, owner string) string {
	if strings.EqualFold(strings.TrimSpace(annotations(obj)[AnnotationPaused]), "true") {
		return OwnerPaused
	}
	return owner
}

// noteHandoff logs and records an Event when a target's hand-off state
// changes. The state is tracked on every replica so a new leader does not
// repeat Events the old one already recorded; only the leader records them.
// A pinned target is never handed off: the claim is refused with a Warning.
func (s *Scaler) noteHandoff(service string, t target) {
	now := t.status.HandedOff
	key := now
	if t.status.Pinned && now != "" {
		key = "refused:" + now
	}
	prev, seen := s.handoffs[service]
	s.handoffs[service] = key
	if prev == key || (!seen && key == "") {
		return
	}
	if t.status.Pinned && now != "" {
		msg := "elmascale refuses to hand this single-instance " + t.kind + " off and holds it at one replica: " + describeOwner(now) +
			"; remove that owner (a second instance of this service is unsafe)"
		s.log.Warn("single-instance target claimed by another owner; hand-off refused", zap.String("service", service), zap.String("owner", now))
		if s.isLeader() {
			s.events.Event(t.obj, corev1.EventTypeWarning, ReasonPinnedHandOffRefused, msg)
		}
		return
	}
	prev = strings.TrimPrefix(prev, "refused:")
	if prev == now {
		return // a refused claim became an ordinary hand-off or the reverse: nothing new to say
	}
	if now != "" {
		msg := "elmascale leaves this " + t.kind + " alone: " + describeOwner(now)
		s.log.Info("target handed off", zap.String("service", service), zap.String("owner", now))
		if s.isLeader() {
			s.events.Event(t.obj, corev1.EventTypeNormal, ReasonHandedOff, msg)
		}
		return
	}
	s.log.Info("hand-off ended; elmascale scales the target again", zap.String("service", service), zap.String("previousOwner", prev))
	if s.isLeader() {
		s.events.Event(t.obj, corev1.EventTypeNormal, ReasonHandOffEnded, "elmascale scales this "+t.kind+" again ("+describeOwner(prev)+" no longer applies)")
	}
}

func describeOwner(h string) string {
	if h == OwnerPaused {
		return "annotation " + AnnotationPaused + "=true"
	}
	return h + " scales it"
}
