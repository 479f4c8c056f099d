package enricher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/enricher/drift"
	"github.com/mcpwatch/mcpwatch/enricher/inspect"
	"github.com/mcpwatch/mcpwatch/enricher/policy"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Identity sources the enricher itself may record in Event.AgentSource, for events a collector
// sent without an attribution. Collectors attribute events themselves (collector.identity),
// with these and stronger methods (mtls, jwt, baggage); the enricher keeps what they decided.
const (
	IdentityHeader     = "header"      // the agent-id header the client sent
	IdentityClientInfo = "client_info" // clientInfo.name from initialize (or _meta)
	IdentityUnknown    = "unknown"
)

// UnknownAgent is the agent id of events no identity source could attribute.
const UnknownAgent = "unknown"

// Config configures the enricher.
type Config struct {
	// Labels are added to every event (e.g. environment: prod); an event's own labels win.
	Labels map[string]string `yaml:"labels"`
	// Files are the policy and the inventory (policy_file, inventory_file, reload_interval;
	// docs/policy.md).
	policy.Files `yaml:",inline"`
	// Inspection inspects every event's content for injection, hidden characters, secrets and
	// more (docs/inspection.md).
	Inspection inspect.Config `yaml:"inspection"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	c.Files.SetDefaults()
	c.Inspection.SetDefaults()
}

// Validate names every invalid field.
func (c Config) Validate() error {
	var errs config.Errors
	for k := range c.Labels {
		if k == "" {
			errs.Add("enricher.labels", "label names must not be empty")
		}
	}
	errs.Merge("enricher", c.Files.Validate())
	errs.Merge("enricher.inspection", c.Inspection.Validate())
	return errs.Err()
}

// Group is the enricher's consumer group.
const Group = "mcpwatch-enricher"

// Enricher is the enricher role: mcp.events → Enrich → mcp.events.enriched, and the anomalies
// Enrich raises → mcp.anomalies, committing a batch only after both were acknowledged.
type Enricher struct {
	cfg        Config
	consumer   *bus.Consumer
	producer   *bus.Producer // mcp.events.enriched
	anomalies  *bus.Producer // mcp.anomalies
	logger     *slog.Logger
	skipped    prometheus.Counter
	enriched   prometheus.Counter
	raised     *prometheus.CounterVec
	suspicious *suspiciousContent
	inspector  *inspect.Inspector
	drift      *drift.Tracker
	policy     *policy.Engine
	store      drift.Store // definition history; nil keeps it in memory only

	// pending is the output of a batch whose handling failed, kept so that the retry of the
	// same batch (the consumer offers it again) resumes instead of running stateful checks a
	// second time. Only the consumer's goroutine touches it.
	pending *output
}

// New returns an enricher for the bus at brokers. st keeps the history of servers' tool,
// prompt and resource definitions (tool-definition drift); with a nil st it is kept in memory
// only, and a restart baselines every server again.
func New(cfg Config, st drift.Store, brokers []string, busCfg bus.Config, set pipeline.Settings) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithComponent("enricher")
	inspector, err := inspect.New(cfg.Inspection)
	if err != nil {
		return nil, err
	}
	e := &Enricher{
		cfg:        cfg,
		producer:   bus.NewProducer(brokers, bus.TopicEventsEnriched, busCfg),
		anomalies:  bus.NewProducer(brokers, bus.TopicAnomalies, busCfg),
		logger:     set.Logger,
		suspicious: newSuspiciousContent(time.Now),
		inspector:  inspector,
		drift:      drift.New(inspector.Text, set),
		store:      st,
		skipped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_undecodable_total", Help: "Messages on mcp.events the enricher could not decode and skipped.",
		})),
		enriched: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_events_total", Help: "Events enriched and produced to mcp.events.enriched.",
		})),
		raised: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_anomalies_total", Help: "Anomaly versions the enricher produced to mcp.anomalies, by kind.",
		}, []string{"kind"})),
	}
	if e.policy, err = policy.NewEngine(cfg.Files, set); err != nil {
		return nil, err
	}
	e.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{Group: Group, Topics: []string{bus.TopicEvents}}, e.handle, set)
	return e, nil
}

// Start rebuilds the servers' current definitions from the store, then begins consuming.
func (e *Enricher) Start(ctx context.Context) error {
	if e.store != nil {
		if err := e.drift.Load(ctx, e.store); err != nil {
			return err
		}
	}
	e.policy.Start()
	if err := e.consumer.Start(ctx); err != nil {
		e.policy.Stop()
		return err
	}
	return nil
}

// Reload reads the policy and inventory files again now (SIGHUP); they are also reloaded
// when they change. An invalid file is logged and its last good version kept.
func (e *Enricher) Reload() error { return e.policy.Reload() }

// Shutdown finishes the batch in progress and stops.
func (e *Enricher) Shutdown(ctx context.Context) error {
	err := e.consumer.Shutdown(ctx)
	e.policy.Stop()
	if perr := e.producer.Close(); err == nil {
		err = perr
	}
	if perr := e.anomalies.Close(); err == nil {
		err = perr
	}
	return err
}

// output is what one batch produces: enriched events, then anomalies. Done flags let a retry
// resume where the failed attempt stopped.
type output struct {
	first, last   kafka.Message // identify the batch (topic, partition, offset)
	n             int
	events        []kafka.Message
	anomalies     []kafka.Message
	kinds         []string // the kind of each anomaly message, for metrics
	defs          []store.Definition
	eventsDone    bool
	anomaliesDone bool
	defsDone      bool
}

// sameBatch reports whether msgs is the batch o was made from.
func (o *output) sameBatch(msgs []kafka.Message) bool {
	if o == nil || len(msgs) != o.n || len(msgs) == 0 {
		return false
	}
	same := func(a, b kafka.Message) bool {
		return a.Topic == b.Topic && a.Partition == b.Partition && a.Offset == b.Offset
	}
	return same(msgs[0], o.first) && same(msgs[len(msgs)-1], o.last)
}

// handle enriches a batch and produces its events to mcp.events.enriched and its anomalies to
// mcp.anomalies (keyed by agent), then saves the definition versions it saw. It returns nil
// only when all of that was acknowledged, so the batch is committed only then. The same batch
// offered again after a failure resumes from what was already done, without enriching it
// twice. Definitions are saved last: after a crash before the save, the store still holds the
// old versions, so the redelivered batch finds the same changes and raises the same
// anomalies (same ids) rather than losing them.
func (e *Enricher) handle(ctx context.Context, msgs []kafka.Message) error {
	o := e.pending
	if !o.sameBatch(msgs) {
		o = e.process(msgs)
	}
	e.pending = o
	if !o.eventsDone {
		if err := e.producer.Produce(ctx, o.events...); err != nil {
			return err
		}
		o.eventsDone = true
		e.enriched.Add(float64(len(o.events)))
	}
	if !o.anomaliesDone {
		if err := e.anomalies.Produce(ctx, o.anomalies...); err != nil {
			return err
		}
		o.anomaliesDone = true
		for _, k := range o.kinds {
			e.raised.WithLabelValues(k).Inc()
		}
	}
	if !o.defsDone {
		if e.store != nil && len(o.defs) > 0 {
			if err := e.store.SaveDefinitions(ctx, o.defs); err != nil {
				return fmt.Errorf("cannot save %d definition versions: %w", len(o.defs), err)
			}
		}
		o.defsDone = true
	}
	e.pending = nil
	return nil
}

// process enriches msgs. An anomaly raised several times in the batch (a growing
// suspicious_content) is produced once, as its latest version.
func (e *Enricher) process(msgs []kafka.Message) *output {
	o := &output{first: msgs[0], last: msgs[len(msgs)-1], n: len(msgs), events: make([]kafka.Message, 0, len(msgs))}
	var found []schemas.Anomaly
	for _, m := range msgs {
		var ev schemas.Event
		err := schemas.DecodeEvent(m.Value, &ev)
		if err == nil {
			// A time RFC 3339 cannot express (a +24:00 offset decodes) could not be encoded
			// after Enrich: the stage would stop on it at every restart.
			var ts [64]byte
			_, err = ev.ObservedAt.AppendText(ts[:0])
		}
		if err != nil {
			e.skipped.Inc()
			e.logger.Warn("skipping undecodable event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		found = append(found, e.Enrich(&ev)...)
		v, err := ev.AppendJSON(nil)
		if err != nil {
			panic("BUG: cannot marshal event: " + err.Error())
		}
		o.events = append(o.events, kafka.Message{Key: []byte(ev.AgentID), Value: v})
	}
	o.defs = e.drift.TakeDefinitions()
	if len(found) == 0 {
		return o
	}
	latest := make(map[string]int, len(found)) // id → index in found of its latest version
	for i, a := range found {
		latest[a.ID] = i
	}
	for i, a := range found {
		if latest[a.ID] != i {
			continue
		}
		v, err := json.Marshal(a)
		if err != nil {
			panic("BUG: cannot marshal anomaly: " + err.Error())
		}
		o.anomalies = append(o.anomalies, kafka.Message{Key: []byte(a.AgentID), Value: v})
		o.kinds = append(o.kinds, a.Kind)
	}
	return o
}

// Enrich completes the event's attribution when the collector left it out, inspects its content
// (flags), joins the inventory into its labels and checks it against the policy, adds the
// configured labels, and drops content that was not captured, so that only content an
// operator opted in to capture reaches mcp.events.enriched and the store.
//
// It returns the anomalies the event raises (nil when none); handle produces them to
// mcp.anomalies, keyed by agent. Each check appends to anomalies (anomalies = check(ev,
// anomalies)), so adding one is a line here. Anomaly ids must be deterministic for a finding
// (see AnomalyID) so that a redelivered batch upserts rather than duplicates. Checks that keep
// state are called once per event: a batch whose output failed to produce is retried from its
// saved output, not enriched again.
func (e *Enricher) Enrich(ev *schemas.Event) []schemas.Anomaly {
	var anomalies []schemas.Anomaly
	if ev.AgentID == "" || ev.AgentSource == "" {
		ev.AgentID, ev.AgentSource = fallbackAgent(ev)
	}
	// Checks that read ev.Content run before this point; flags of severity high or above
	// become suspicious_content anomalies. What was not captured goes no further.
	e.inspector.Event(ev) // content inspection: flags
	anomalies = e.definitions(ev, anomalies)
	anomalies = e.suspicious.observe(ev, anomalies)
	anomalies = e.policy.Apply(ev, time.Now(), anomalies) // inventory labels, unknown_agent, policy_violation
	if len(anomalies) > 0 {
		tags := schemas.TagsOf(ev)
		for i := range anomalies {
			if anomalies[i].Tags == nil && anomalies[i].AgentID == ev.AgentID {
				anomalies[i].Tags = tags
			}
		}
	}
	if ev.Content != nil && !ev.Content.Captured {
		ev.Content = nil
	}
	if len(e.cfg.Labels) > 0 {
		if ev.Labels == nil {
			ev.Labels = make(map[string]string, len(e.cfg.Labels))
		}
		for k, v := range e.cfg.Labels {
			if _, ok := ev.Labels[k]; !ok {
				ev.Labels[k] = v
			}
		}
	}
	return anomalies
}

// definitions compares list results with the servers' current definitions (tool-definition
// drift, shadowing) and notes list_changed notifications.
func (e *Enricher) definitions(ev *schemas.Event, anomalies []schemas.Anomaly) []schemas.Anomaly {
	for _, f := range e.drift.Observe(ev) {
		anomalies = append(anomalies, driftAnomaly(f, time.Now()))
	}
	return anomalies
}

// fallbackAgent attributes an event its collector did not attribute: by the declared agent,
// else the client's name.
func fallbackAgent(ev *schemas.Event) (id, source string) {
	switch {
	case ev.DeclaredAgent != "":
		return ev.DeclaredAgent, IdentityHeader
	case ev.ClientName != "":
		return ev.ClientName, IdentityClientInfo
	}
	return UnknownAgent, IdentityUnknown
}
