package detector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Config configures the detector.
type Config struct {
	// NewTool configures the first_seen_tool model.
	NewTool NewToolConfig `yaml:"new_tool"`
	// SnapshotInterval is how often changed baselines are saved to the store (default 30s);
	// they are also saved at shutdown.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
}

// NewToolConfig configures the first_seen_tool model.
type NewToolConfig struct {
	// Disabled turns the model off.
	Disabled bool `yaml:"disabled"`
	// Score given to a first-seen tool, 0–100 (default 50: medium).
	Score float64 `yaml:"score"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	if c.NewTool.Score == 0 {
		c.NewTool.Score = 50
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
}

// Validate names every invalid field.
func (c Config) Validate() error {
	var errs config.Errors
	if c.NewTool.Score < 0 || c.NewTool.Score > 100 {
		errs.Addf("detector.new_tool.score", "must be between 0 and 100, got %g", c.NewTool.Score)
	}
	if c.SnapshotInterval <= 0 {
		errs.Add("detector.snapshot_interval", "must be positive")
	}
	return errs.Err()
}

// Group is the detector's consumer group.
const Group = "mcpwatch-detector"

// Detector is the detector role: mcp.events.enriched → models → mcp.anomalies.
type Detector struct {
	cfg      Config
	st       store.Store
	consumer *bus.Consumer
	producer *bus.Producer
	logger   *slog.Logger

	raised  *prometheus.CounterVec
	skipped prometheus.Counter

	// State is touched by the consumer's single handler goroutine and, after the consumer has
	// stopped, by Shutdown; mu makes that hand-over explicit.
	mu           sync.Mutex
	tools        map[string]*agentTools
	dirty        map[string]struct{}
	lastSnapshot time.Time
	now          func() time.Time
}

// New returns a detector reading and writing the bus at brokers and keeping baselines in st.
func New(cfg Config, st store.Store, brokers []string, busCfg bus.Config, set pipeline.Settings) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithComponent("detector")
	d := &Detector{
		cfg:      cfg,
		st:       st,
		producer: bus.NewProducer(brokers, bus.TopicAnomalies, busCfg),
		logger:   set.Logger,
		raised: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_detector_anomalies_total", Help: "Anomalies raised, by kind.",
		}, []string{"kind"})),
		skipped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_detector_undecodable_total", Help: "Messages the detector could not decode and skipped.",
		})),
		tools: map[string]*agentTools{},
		dirty: map[string]struct{}{},
		now:   time.Now,
	}
	d.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{Group: Group, Topics: []string{bus.TopicEventsEnriched}}, d.handle, set)
	return d, nil
}

// Start restores baselines from the store and begins consuming.
func (d *Detector) Start(ctx context.Context) error {
	snaps, err := d.st.LoadBaselines(ctx, ModelFirstSeenTool)
	if err != nil {
		return fmt.Errorf("cannot restore detector baselines: %w", err)
	}
	d.mu.Lock()
	for _, s := range snaps {
		a := &agentTools{}
		if err := json.Unmarshal(s.State, a); err != nil {
			d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
			continue
		}
		d.tools[s.Key] = a
	}
	d.lastSnapshot = d.now()
	d.mu.Unlock()
	d.logger.Info("baselines restored", "agents", len(snaps))
	return d.consumer.Start(ctx)
}

// Shutdown stops consuming and saves the baselines.
func (d *Detector) Shutdown(ctx context.Context) error {
	err := d.consumer.Shutdown(ctx)
	d.mu.Lock()
	serr := d.snapshot(ctx)
	d.mu.Unlock()
	if err == nil {
		err = serr
	}
	if perr := d.producer.Close(); err == nil {
		err = perr
	}
	return err
}

func (d *Detector) handle(ctx context.Context, msgs []kafka.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []kafka.Message
	var raised []schemas.Anomaly
	now := d.now().UTC()
	for _, m := range msgs {
		var ev schemas.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			d.skipped.Inc()
			d.logger.Warn("skipping undecodable event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		for _, a := range d.Observe(&ev, now) {
			v, err := json.Marshal(a)
			if err != nil {
				panic("BUG: cannot marshal anomaly: " + err.Error())
			}
			out = append(out, kafka.Message{Key: []byte(a.AgentID), Value: v})
			raised = append(raised, a)
		}
	}
	if err := d.producer.Produce(ctx, out...); err != nil {
		// The batch will be offered again: unlearn what it taught, or the retry would find
		// every new tool already known and its anomaly would be lost.
		d.forget(raised)
		return err
	}
	for _, a := range raised {
		d.raised.WithLabelValues(a.Kind).Inc()
	}
	if now.Sub(d.lastSnapshot) >= d.cfg.SnapshotInterval {
		if err := d.snapshot(ctx); err != nil {
			d.logger.Warn("cannot save baselines; will retry", "err", err)
		}
	}
	return nil
}

// Observe updates the agent's baselines with ev and returns the anomalies it raises. Callers
// hold d.mu (the handler does).
func (d *Detector) Observe(ev *schemas.Event, now time.Time) []schemas.Anomaly {
	if d.cfg.NewTool.Disabled {
		return nil
	}
	a := d.tools[ev.AgentID]
	if a == nil {
		a = &agentTools{Tools: map[string]struct{}{}}
		d.tools[ev.AgentID] = a
	}
	an, ok := observeTool(a, ev, d.cfg.NewTool.Score, now)
	if !ok {
		return nil
	}
	d.dirty[ev.AgentID] = struct{}{}
	return []schemas.Anomaly{an}
}

// forget undoes what Observe learnt when it raised anomalies. Callers hold d.mu.
func (d *Detector) forget(raised []schemas.Anomaly) {
	for _, a := range raised {
		if a.Kind == KindNewTool {
			if t := d.tools[a.AgentID]; t != nil {
				delete(t.Tools, a.Subject)
			}
		}
	}
}

// snapshot saves the baselines of agents that changed. Callers hold d.mu.
func (d *Detector) snapshot(ctx context.Context) error {
	if len(d.dirty) == 0 {
		return nil
	}
	now := d.now().UTC()
	snaps := make([]store.Baseline, 0, len(d.dirty))
	for agent := range d.dirty {
		state, err := json.Marshal(d.tools[agent])
		if err != nil {
			panic("BUG: cannot marshal baseline: " + err.Error())
		}
		snaps = append(snaps, store.Baseline{Model: ModelFirstSeenTool, Key: agent, UpdatedAt: now, State: state})
	}
	if err := d.st.SaveBaselines(ctx, snaps); err != nil {
		return fmt.Errorf("cannot save %d baselines: %w", len(snaps), err)
	}
	clear(d.dirty)
	d.lastSnapshot = now
	return nil
}
