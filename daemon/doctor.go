package daemon

import (
	"context"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/doctor"
	"github.com/elmascale/elmascale/scaler"
)

// doctorTimeout bounds the start-up checks: one collection, one
// observation and a dozen access reviews.
const doctorTimeout = 30 * time.Second

// checkAtStart runs the checks `elmascale doctor` runs, once, and logs
// them as one table, with a warning per problem, so the first lines of
// the log say what elmascale is blind to and how to fix it. It runs beside
// the loop and never stops it.
func checkAtStart(ctx context.Context, cfg *config.Config, o Options, sc *scaler.Scaler, client kubernetes.Interface, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	leaseNS := ""
	if o.LeaderElect {
		leaseNS = o.LeaseNamespace
		if leaseNS == "" {
			leaseNS = podNamespace(cfg.Namespace)
		}
	}
	policyNS := ""
	if o.Policy != "" {
		// Malformed references were refused before the loop started.
		policyNS, _, _ = ParsePolicyRef(o.Policy, o.Namespace)
	}
	r := doctor.Run(ctx, cfg, doctor.Options{
		Collector: o.Collector, Targets: sc, Access: doctor.SelfAccess{Client: client}, Sources: o.Sources,
		Apply: o.Mode == scaler.ModeApply, LeaseNamespace: leaseNS, AnnotateRecommendations: o.AnnotateRecommendations, MetricsAuth: o.MetricsAuth,
		PolicyNamespace: policyNS,
	}, o.Clock.Now())
	if ctx.Err() != nil && r.OK() {
		return // shutting down, or nothing answered in time: the loop's own logs say so
	}
	log.Info("start-up checks (elmascale doctor): "+r.Summary(), zap.Int("problems", r.Problems), zap.Int("warnings", r.Warnings), zap.String("table", r.Table()))
	for _, c := range r.Checks {
		if c.Severity == doctor.SeverityProblem {
			log.Warn("start-up check failed", zap.String("check", c.Kind), zap.String("service", c.Service), zap.String("name", c.Name),
				zap.String("detail", c.Detail), zap.String("fix", c.Fix))
		}
	}
}
