package record

import (
	"time"

	"go.uber.org/zap"

	"github.com/elmascale/elmascale/loop"
)

// TickLogger logs each tick: an incomplete tick at warn, the rest at debug.
// Writes are logged by the scaler where they happen.
type TickLogger struct{ Log *zap.Logger }

// Record logs one tick.
func (l TickLogger) Record(t loop.Tick) {
	if t.Err != nil {
		l.Log.Warn("tick incomplete; affected services held", zap.Error(t.Err))
	}
	if ce := l.Log.Check(zap.DebugLevel, "tick"); ce != nil {
		var total time.Duration
		for _, d := range t.Steps {
			total += d
		}
		ce.Write(zap.Int("decisions", len(t.Plan.Decisions)), zap.Int("handedOff", len(t.HandedOff)), zap.Duration("took", total))
	}
}
