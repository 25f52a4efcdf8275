package daemon

import (
	"context"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// leanAfter are the delays after the informers synced at which start-up
// memory is released: after the first ticks, after the start-up checks,
// and after the first minute, for what a slow start-up touched late.
var leanAfter = []time.Duration{5 * time.Second, 15 * time.Second, time.Minute}

// releaseWhenStarted gives back what only start-up needed, at each of
// leanAfter until ctx ends: the heap the informers' first full listing
// left behind (a collection, and the freed pages returned to the kernel
// at once rather than over minutes by the scavenger) and the executable's
// start-up pages (releaseStartupPages).
func releaseWhenStarted(ctx context.Context, clk clock.Clock, log *zap.Logger) {
	var waited time.Duration
	for _, at := range leanAfter {
		select {
		case <-ctx.Done():
			return
		case <-clk.After(at - waited):
		}
		waited = at
		debug.FreeOSMemory()
		n, err := releaseStartupPages()
		if err != nil {
			log.Debug("start-up pages not released", zap.Error(err))
			return
		}
		log.Debug("start-up pages released", zap.Int64("bytes", n))
	}
}
