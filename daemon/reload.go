package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/record"
)

// ConfigSource holds the config in force and reloads it when its file
// changes. A changed file that does not validate is logged, counted and
// ignored: the last good config stays in force, so a typo in a ConfigMap
// never stops the daemon or scales anything.
type ConfigSource struct {
	path   string
	adjust func(*config.Config) error
	log    *zap.Logger
	onLoad func(result string)

	cur     atomic.Pointer[config.Config]
	tried   [sha256.Size]byte // content last attempted, good or bad
	modTime time.Time

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, when a new config takes force
}

// Changed returns a channel closed when a config newer than the one
// Current returns at the time of this call takes force. Ask for it before
// reading Current, so no reload is missed in between.
func (s *ConfigSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// NewConfigSource loads path, applies adjust (flag overrides; it may reject
// a config) and returns the source. The first load must succeed.
func NewConfigSource(path string, adjust func(*config.Config) error, log *zap.Logger, onLoad func(result string)) (*ConfigSource, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if onLoad == nil {
		onLoad = func(string) {}
	}
	s := &ConfigSource{path: path, adjust: adjust, log: log, onLoad: onLoad}
	data, fi, err := s.read()
	if err != nil {
		return nil, err
	}
	cfg, err := s.parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	s.cur.Store(cfg)
	s.tried, s.modTime = sha256.Sum256(data), fi.ModTime()
	return s, nil
}

// Current returns the config in force; it is never nil and never modified.
func (s *ConfigSource) Current() *config.Config { return s.cur.Load() }

func (s *ConfigSource) read() ([]byte, os.FileInfo, error) {
	// Stat before reading: if the file changes in between, the next poll
	// sees a newer mtime and reads again.
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(s.path)
	return data, fi, err
}

func (s *ConfigSource) parse(data []byte) (*config.Config, error) {
	return parseAdjusted(data, s.adjust)
}

// parseAdjusted parses a config file or a ScalingPolicy and applies adjust
// (the command line's overrides), when set.
func parseAdjusted(data []byte, adjust func(*config.Config) error) (*config.Config, error) {
	cfg, err := config.Parse(data)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		if err := adjust(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Check reloads the file when its content changed since the last attempt.
// The content is compared, not only the mtime, because a ConfigMap update
// swaps a symlink and an editor may keep the mtime's second.
func (s *ConfigSource) Check() {
	data, fi, err := s.read()
	if err != nil {
		if fi == nil || !fi.ModTime().Equal(s.modTime) {
			s.log.Warn("config file unreadable; keeping the config in force", zap.String("path", s.path), zap.Error(err))
		}
		return
	}
	sum := sha256.Sum256(data)
	s.modTime = fi.ModTime()
	if bytes.Equal(sum[:], s.tried[:]) {
		return
	}
	s.tried = sum
	cfg, err := s.parse(data)
	if err != nil {
		result := record.ReloadFailure
		if _, rej := err.(rejectError); rej {
			result = record.ReloadRejected
		}
		s.onLoad(result)
		s.log.Error("new config rejected; keeping the config in force", zap.String("path", s.path), zap.String("result", result), zap.Error(err))
		return
	}
	s.cur.Store(cfg)
	s.mu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
	s.onLoad(record.ReloadSuccess)
	s.log.Info("config reloaded", zap.String("path", s.path), zap.Int("services", len(cfg.Services)), zap.Duration("interval", cfg.Interval))
}

// Watch polls the file every `every` until ctx ends.
func (s *ConfigSource) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Check()
		}
	}
}

// rejectError marks a valid config that cannot be taken without a restart.
type rejectError struct{ msg string }

func (e rejectError) Error() string { return e.msg }
