package sequence

import (
	"math"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Config holds the model's parameters. Zero fields take their defaults (SetDefaults).
type Config struct {
	// MaxSymbols caps the distinct calls ((method, tool) pairs) an agent's baseline remembers
	// (default 32). When it is full, a new call evicts the one seen in the fewest sessions,
	// with that call's transitions.
	MaxSymbols int `yaml:"max_symbols"`
	// MaxTransitions caps the distinct transitions an agent's baseline remembers (default 128);
	// the one seen in the fewest sessions is evicted. It also caps what one session records.
	MaxTransitions int `yaml:"max_transitions"`
	// PeerMaxSymbols and PeerMaxTransitions are the same caps for a peer-group baseline, which
	// sees every call of its agents (defaults 512 and 4096).
	PeerMaxSymbols     int `yaml:"peer_max_symbols"`
	PeerMaxTransitions int `yaml:"peer_max_transitions"`
	// Smoothing is the weight, in pseudo-sessions (or pseudo-calls), of the prior every
	// estimate is smoothed toward: the agent's own call frequencies for transitions, the peer
	// group for calls and transitions, then PriorRate (default 1).
	Smoothing float64 `yaml:"smoothing"`
	// PriorRate is the probability assumed for a session doing something no baseline knows
	// anything about (default 0.5). A cold agent without peers is therefore never surprising;
	// after n sessions that never did X, a session doing X has probability PriorRate·s/(n+s).
	PriorRate float64 `yaml:"prior_rate"`
	// MaxSessions bounds memory of the past: when a baseline has learnt this many sessions,
	// all its counts are halved, so old habits fade and counters cannot overflow
	// (default 10000).
	MaxSessions int `yaml:"max_sessions"`
}

// Defaults.
const (
	DefaultMaxSymbols         = 32
	DefaultMaxTransitions     = 128
	DefaultPeerMaxSymbols     = 512
	DefaultPeerMaxTransitions = 4096
	DefaultSmoothing          = 1
	DefaultPriorRate          = 0.5
	DefaultMaxSessions        = 10000

	maxTableSize = 1 << 15 // the tables index entries with uint16
)

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.MaxSymbols, DefaultMaxSymbols)
	setInt(&c.MaxTransitions, DefaultMaxTransitions)
	setInt(&c.PeerMaxSymbols, DefaultPeerMaxSymbols)
	setInt(&c.PeerMaxTransitions, DefaultPeerMaxTransitions)
	setInt(&c.MaxSessions, DefaultMaxSessions)
	if c.Smoothing == 0 {
		c.Smoothing = DefaultSmoothing
	}
	if c.PriorRate == 0 {
		c.PriorRate = DefaultPriorRate
	}
}

// Validate names every invalid field, with paths relative to this section (merge them under
// the section's own path, e.g. "detector.sequence").
func (c Config) Validate() error {
	var errs config.Errors
	for _, f := range []struct {
		path string
		v    int
		min  int
	}{
		{"max_symbols", c.MaxSymbols, 2},
		{"max_transitions", c.MaxTransitions, 1},
		{"peer_max_symbols", c.PeerMaxSymbols, 2},
		{"peer_max_transitions", c.PeerMaxTransitions, 1},
	} {
		if f.v < f.min || f.v > maxTableSize {
			errs.Addf(f.path, "must be from %d to %d, got %d", f.min, maxTableSize, f.v)
		}
	}
	if c.MaxSessions < 2 || c.MaxSessions > math.MaxUint32/2 {
		errs.Addf("max_sessions", "must be from 2 to %d, got %d", math.MaxUint32/2, c.MaxSessions)
	}
	if !(c.Smoothing > 0) || math.IsInf(c.Smoothing, 0) {
		errs.Addf("smoothing", "must be a positive number, got %g", c.Smoothing)
	}
	if !(c.PriorRate > 0 && c.PriorRate <= 1) {
		errs.Addf("prior_rate", "must be in (0, 1], got %g", c.PriorRate)
	}
	return errs.Err()
}
