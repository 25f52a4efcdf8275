package loop

import (
	"context"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// MissingCollector reports every configured signal as missing. With it the
// policy holds every service (bounds and pins still apply): it never makes
// up load that was not measured.
type MissingCollector struct {
	// Reason is put in each observation's Error.
	Reason string
}

var _ Collector = MissingCollector{}

// Collect returns StatusMissing for every signal.
func (m MissingCollector) Collect(_ context.Context, cfg *config.Config, now time.Time) (Signals, error) {
	out := make(Signals, len(cfg.Services))
	for _, s := range cfg.Services {
		obs := make(map[string]policy.Observation, len(s.Signals))
		for _, sg := range s.Signals {
			obs[sg.Name] = policy.Observation{Status: policy.StatusMissing, Time: now, Error: m.Reason}
		}
		out[s.Name] = obs
	}
	return out, nil
}
