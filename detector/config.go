package detector

import (
	"fmt"
	"time"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/internal/config"
)

// RateConfig configures the request_rate model in the live detector.
type RateConfig struct {
	// Disabled turns the model off.
	Disabled bool `yaml:"disabled"`
	// MinScore is the score (0–100) from which a finished bucket becomes a rate_spike or
	// rate_drop anomaly (default 40: a probability of 10⁻⁴ after calibration).
	MinScore float64 `yaml:"min_score"`
	// PriorWeight is how many buckets of evidence the population prior counts for in a cold
	// agent's baseline (default 60). The prior is the median of up to 1,000 known agents'
	// baselines, refreshed every hour of event time; 0 agents known: no prior.
	PriorWeight float64 `yaml:"prior_weight"`
	// Model holds the rate model's parameters (bucket, profiles, half-lives…).
	Model rate.Config `yaml:",inline"`
}

// SequenceConfig configures the tool_sequence model in the live detector.
type SequenceConfig struct {
	// Disabled turns the model off.
	Disabled bool `yaml:"disabled"`
	// MinScore is the score (0–100) from which a step (new_transition, unlikely_step) or a
	// whole session (unusual_session) becomes an anomaly (default 60: a probability of 10⁻³).
	MinScore float64 `yaml:"min_score"`
	// SessionIdle ends an agent's session after this long without a request, by event time
	// (default 30m). A session also ends when the agent opens a new session with the same
	// server, or a fifth session at once (the least recently used).
	SessionIdle time.Duration `yaml:"session_idle"`
	// Model holds the sequence model's parameters (caps, smoothing…).
	Model sequence.Config `yaml:",inline"`
}

// WarmUpConfig is the per-agent warm-up of the statistical models (request_rate,
// tool_sequence, session_shape): until an agent has been seen for Duration of event time and sent Events
// requests, its anomalies carry learning: true and are not alerted. first_seen_tool has no
// statistics to warm up and is not affected.
type WarmUpConfig struct {
	// Duration of event time since the agent's first event (default 24h; negative: none).
	Duration time.Duration `yaml:"duration"`
	// Events is the number of requests the agent must have sent (default 100; negative: none).
	Events int `yaml:"events"`
}

// Suppression drops anomalies matching it (the models still learn). An empty field matches
// anything; at least one must be set.
type Suppression struct {
	// Agent is an agent id.
	Agent string `yaml:"agent"`
	// Kind is an anomaly kind (new_tool, rate_spike, rate_drop, new_transition,
	// unlikely_step, unusual_session, scan, session_shape, server_fanout, large_response,
	// large_request, campaign).
	Kind string `yaml:"kind"`
}

// Anomaly kinds of the statistical models.
const (
	KindRateSpike      = "rate_spike"
	KindRateDrop       = "rate_drop"
	KindNewTransition  = "new_transition"
	KindUnlikelyStep   = "unlikely_step"
	KindUnusualSession = "unusual_session"
	KindScan           = "scan"
)

var knownKinds = map[string]bool{
	KindNewTool: true, KindRateSpike: true, KindRateDrop: true,
	KindNewTransition: true, KindUnlikelyStep: true, KindUnusualSession: true, KindScan: true,
	KindLargeResponse: true, KindLargeRequest: true, KindCampaign: true,
	KindSessionShape: true, KindServerFanout: true,
}

func (c *RateConfig) setDefaults() {
	if c.MinScore == 0 {
		c.MinScore = 40
	}
	if c.PriorWeight == 0 {
		c.PriorWeight = 60
	}
	c.Model.SetDefaults()
}

func (c *SequenceConfig) setDefaults() {
	if c.MinScore == 0 {
		c.MinScore = 60
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = 30 * time.Minute
	}
	c.Model.SetDefaults()
}

func validateScore(errs *config.Errors, path string, s float64) {
	if !(s >= 0 && s <= 100) {
		errs.Addf(path, "must be between 0 and 100, got %g", s)
	}
}

func (c Config) validateModels(errs *config.Errors) {
	validateScore(errs, "detector.rate.min_score", c.Rate.MinScore)
	if !(c.Rate.PriorWeight >= 0) {
		errs.Addf("detector.rate.prior_weight", "must not be negative, got %g", c.Rate.PriorWeight)
	}
	errs.Merge("detector.rate", c.Rate.Model.Validate())
	validateScore(errs, "detector.sequence.min_score", c.Sequence.MinScore)
	if c.Sequence.SessionIdle <= 0 {
		errs.Add("detector.sequence.session_idle", "must be positive")
	}
	errs.Merge("detector.sequence", c.Sequence.Model.Validate())
	c.Size.validate(errs)
	c.Campaign.validate(errs)
	c.Shape.validate(errs)
	validateScore(errs, "detector.scan.min_score", c.Scan.MinScore)
	if c.Scan.MinCalls < 2 {
		errs.Addf("detector.scan.min_calls", "must be at least 2, got %d", c.Scan.MinCalls)
	}
	if c.MergeWindow <= 0 {
		errs.Add("detector.merge_window", "must be positive")
	}
	for i, s := range c.Suppress {
		path := fmt.Sprintf("detector.suppress[%d]", i)
		if s.Agent == "" && s.Kind == "" {
			errs.Add(path, "must name an agent, a kind or both")
		}
		if s.Kind != "" && !knownKinds[s.Kind] {
			errs.Addf(path+".kind", "unknown anomaly kind %q", s.Kind)
		}
	}
}
