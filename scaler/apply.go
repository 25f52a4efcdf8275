package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Reasons an Outcome was skipped.
const (
	SkipNotFound  = "target not found"
	SkipNoChange  = "no change"
	SkipNotLeader = "not leader"
	SkipChanged   = "replicas changed since observed; the next tick decides again"
)

// errChanged stops a retry when the target's replicas moved under us;
// errAlready when they already are what was decided.
// errDeposed when leadership was lost between the decision and the write.
var (
	errChanged = errors.New("replicas changed since observed")
	errAlready = errors.New("replicas already at the desired count")
	errDeposed = errors.New("leadership lost before the write")
)

// Apply acts on every decision of plan. In apply mode the leader writes each
// change through the scale subresource; in dry-run every decision becomes a
// recommendation and spec.replicas is never written. Targets handed off at
// the last Observe are skipped.
func (s *Scaler) Apply(ctx context.Context, cfg *config.Config, plan policy.Plan) []loop.Outcome {
	s.mu.Lock()
	targets := s.targets
	s.mu.Unlock()
	leader := s.isLeader()
	out := make([]loop.Outcome, 0, len(plan.Decisions))
	for _, d := range plan.Decisions {
		o := loop.Outcome{Service: d.Service}
		t, ok := targets[d.Service]
		switch {
		case !ok || !t.status.Found:
			o.Skipped = SkipNotFound
		case t.status.HandedOff != "" && !t.status.Pinned:
			o.Skipped = loop.HandoffReason(t.status.HandedOff)
		case s.opts.Mode == ModeDryRun:
			o.Recommended = true
			if leader {
				s.recommend(t, d)
			}
			if s.opts.AnnotateRecommendations && leader {
				o.Err = s.withTimeout(ctx, func(ctx context.Context) error { return s.annotate(ctx, t, d.Desired) })
			}
		case d.Desired == t.status.Current:
			o.Skipped = SkipNoChange
		case !leader:
			o.Skipped = SkipNotLeader
		default:
			err := s.withTimeout(ctx, func(ctx context.Context) error { return s.write(ctx, t, d) })
			switch {
			case errors.Is(err, errChanged):
				o.Skipped = SkipChanged
			case errors.Is(err, errAlready):
				o.Skipped = SkipNoChange
			case errors.Is(err, errDeposed):
				o.Skipped = SkipNotLeader
			case err != nil:
				o.Err = err
			default:
				o.Applied = true
			}
		}
		out = append(out, o)
	}
	return out
}

// withTimeout runs one write under its own deadline, so a black-holed API
// server costs WriteTimeout per write, not the minute HTTP/2 pings take
// to notice it.
func (s *Scaler) withTimeout(ctx context.Context, fn func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	return fn(wctx)
}

// write sets the target's replicas to d.Desired. The first attempt carries
// the cached resourceVersion, so no GET is spent when the cache is current;
// a conflict (the object changed since: a status update, an edit of its
// labels) re-reads the scale subresource and tries again. If the re-read
// shows other replicas than the decision started from, someone else scaled
// the target in between, and the decision is stale: it is dropped, not
// forced over their change, and the next tick decides from the new count.
func (s *Scaler) write(ctx context.Context, t target, d policy.Decision) error {
	log := s.log.With(zap.String("service", d.Service), zap.String("target", t.kind+"/"+t.name),
		zap.Int32("from", d.Current), zap.Int32("to", d.Desired))
	attempts := 0
	err := s.update(ctx, t, d, &attempts)
	log = log.With(zap.Int("attempts", attempts))
	switch {
	case errors.Is(err, errChanged):
		log.Info("target scaled by someone else since observed; decision dropped")
		return err
	case errors.Is(err, errAlready):
		return err
	case errors.Is(err, errDeposed), err != nil && !s.isLeader():
		// Fencing: a deposed leader must not write, and a write cut short
		// because the lease was lost is not a failure of the target.
		log.Warn("leadership lost before the write; decision dropped", zap.Error(err))
		return errDeposed
	case err != nil:
		// Every failure, before the request (REST mapping, discovery) or
		// in it, is logged and shown on the target.
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within the write timeout %s: %w", s.opts.WriteTimeout, err)
		}
		log.Error("scale failed", zap.Error(err))
		s.events.Eventf(t.obj, corev1.EventTypeWarning, ReasonScaleFailed, "scale %d → %d failed: %v", d.Current, d.Desired, err)
		return fmt.Errorf("scale %s %s/%s to %d: %w", d.Service, t.kind, t.name, d.Desired, err)
	}
	if t.status.HandedOff != "" {
		log.Warn("single-instance target scaled although another owner claims it", zap.String("owner", t.status.HandedOff), zap.String("reason", d.Reason))
	} else {
		log.Info("scaled", zap.String("limitedBy", string(d.LimitedBy)), zap.String("reason", d.Reason))
	}
	switch {
	case (t.status.Pinned || d.LimitedBy == policy.LimitPinned) && d.Desired < d.Current:
		// Whatever limit the policy names (pinned, max), a single-instance
		// target found above one is an incident someone should see.
		owner := ""
		if t.status.HandedOff != "" {
			owner = " (written although " + describeOwner(t.status.HandedOff) + ": the hand-off is refused)"
		}
		s.events.Eventf(t.obj, corev1.EventTypeWarning, ReasonPinnedScaledTo1,
			"replicas %d → %d: this workload cannot run as more than one instance%s; %s", d.Current, d.Desired, owner, d.Reason)
	case d.Desired > d.Current:
		s.events.Eventf(t.obj, corev1.EventTypeNormal, ReasonScaledUp, "replicas %d → %d: %s", d.Current, d.Desired, d.Reason)
	default:
		s.events.Eventf(t.obj, corev1.EventTypeNormal, ReasonScaledDown, "replicas %d → %d: %s", d.Current, d.Desired, d.Reason)
	}
	return nil
}

// update writes the scale subresource, checking leadership right before
// every request that changes it.
func (s *Scaler) update(ctx context.Context, t target, d policy.Decision, attempts *int) error {
	gr, err := s.resource(t.kind)
	if err != nil {
		return err
	}
	scales := s.opts.Scales.Scales(s.opts.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		*attempts++
		sc := &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: t.name, Namespace: s.opts.Namespace, ResourceVersion: t.rv},
			Spec:       autoscalingv1.ScaleSpec{Replicas: d.Desired},
		}
		if *attempts > 1 || t.rv == "" {
			cur, err := scales.Get(ctx, gr, t.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.Spec.Replicas == d.Desired {
				return errAlready // a stale cache, or someone else set it
			}
			if cur.Spec.Replicas != d.Current {
				return errChanged
			}
			sc = cur
			sc.Spec.Replicas = d.Desired
		}
		if !s.isLeader() {
			return errDeposed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := scales.Update(ctx, gr, sc, metav1.UpdateOptions{})
		return err
	})
}

// resource maps a target kind in the apps group to its resource, through
// the RESTMapper so the scale client addresses the right subresource.
func (s *Scaler) resource(kind string) (schema.GroupResource, error) {
	m, err := s.opts.Mapper.RESTMapping(schema.GroupKind{Group: "apps", Kind: kind}, "v1")
	if err != nil {
		return schema.GroupResource{}, fmt.Errorf("map kind %s: %w", kind, err)
	}
	return m.Resource.GroupResource(), nil
}

// annotate records a recommendation on the target, only when it changed so
// a steady recommendation costs no write per tick.
func (s *Scaler) annotate(ctx context.Context, t target, desired int32) error {
	v := strconv.Itoa(int(desired))
	if t.recorded == v {
		return nil
	}
	if !s.isLeader() {
		return nil // a deposed leader writes nothing; the new one records it
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationRecommended: v}}})
	var err error
	switch t.kind {
	case "Deployment":
		_, err = s.opts.Client.AppsV1().Deployments(s.opts.Namespace).Patch(ctx, t.name, types.MergePatchType, patch, metav1.PatchOptions{})
	case "StatefulSet":
		_, err = s.opts.Client.AppsV1().StatefulSets(s.opts.Namespace).Patch(ctx, t.name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		s.log.Warn("recommendation annotation not written", zap.String("target", t.kind+"/"+t.name), zap.Error(err))
		s.events.Eventf(t.obj, corev1.EventTypeWarning, ReasonRecommendationFailed, "recommendation %d not recorded in %s: %v", desired, AnnotationRecommended, err)
		return fmt.Errorf("annotate %s/%s with recommendation: %w", t.kind, t.name, err)
	}
	return nil
}
