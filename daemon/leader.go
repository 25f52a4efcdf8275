package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leadership is whether this process may write. Every replica runs the
// loop, so a follower keeps its policy history warm and takes over with
// its stabilization windows intact; only the leader writes.
type Leadership struct {
	v atomic.Bool
	// elector, once campaigning, tells as soon as a renewal attempt found
	// the Lease held by another identity, before client-go gives up
	// renewing (RenewDeadline later) and calls OnStoppedLeading.
	elector atomic.Pointer[leaderelection.LeaderElector]

	mu   sync.Mutex
	term chan struct{} // closed when the current term ends; nil when not leading
}

// IsLeader reports whether this process holds the lease. The scaler asks
// it right before every write.
func (l *Leadership) IsLeader() bool {
	if !l.v.Load() {
		return false
	}
	if el := l.elector.Load(); el != nil && !el.IsLeader() {
		return false
	}
	return true
}

func (l *Leadership) set(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v.Store(v)
	switch {
	case v && l.term == nil:
		l.term = make(chan struct{})
	case !v && l.term != nil:
		close(l.term)
		l.term = nil
	}
}

// TickContext returns the context of one tick: when this process leads as
// the tick starts, the context ends as soon as the term does (the lease is
// lost, or seen held by another identity), so no write of that tick is
// still on its way once another replica may write.
func (l *Leadership) TickContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	l.mu.Lock()
	term := l.term
	l.mu.Unlock()
	if term == nil {
		return ctx, cancel
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-term:
				cancel()
				return
			case <-t.C:
				if !l.IsLeader() {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, func() { close(done); cancel() }
}

// LeaderElection configures the Lease-based election.
type LeaderElection struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	Identity  string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// KeepLeaseOnExit skips releasing the lease on shutdown; tests use it to
	// play a leader that crashed.
	KeepLeaseOnExit bool
}

// elect campaigns for the lease until ctx ends, flipping l and calling
// onChange as leadership comes and goes. A leader that loses the lease
// becomes a candidate again rather than exiting.
func elect(ctx context.Context, le LeaderElection, l *Leadership, onChange func(bool), log *zap.Logger) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
		Client:     le.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	el, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: !le.KeepLeaseOnExit,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				l.set(true)
				onChange(true)
				log.Info("became leader", zap.String("identity", le.Identity))
			},
			OnStoppedLeading: func() {
				// client-go calls this whenever Run returns, led or not.
				if !l.v.Swap(false) {
					return
				}
				onChange(false)
				log.Info("stopped leading", zap.String("identity", le.Identity))
			},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					log.Info("leader is another replica", zap.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return err
	}
	l.elector.Store(el)
	for ctx.Err() == nil {
		el.Run(ctx)
	}
	return nil
}
