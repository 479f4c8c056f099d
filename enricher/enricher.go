package enricher

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
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
}

// SetDefaults fills zero values (there are none to fill today).
func (c *Config) SetDefaults() {}

// Validate names every invalid field.
func (c Config) Validate() error {
	var errs config.Errors
	for k := range c.Labels {
		if k == "" {
			errs.Add("enricher.labels", "label names must not be empty")
		}
	}
	return errs.Err()
}

// Group is the enricher's consumer group.
const Group = "mcpwatch-enricher"

// Enricher is the enricher role: mcp.events → Enrich → mcp.events.enriched, committing a batch
// only after its enriched events were acknowledged.
type Enricher struct {
	cfg      Config
	consumer *bus.Consumer
	producer *bus.Producer
	logger   *slog.Logger
	skipped  prometheus.Counter
	enriched prometheus.Counter
}

// New returns an enricher for the bus at brokers.
func New(cfg Config, brokers []string, busCfg bus.Config, set pipeline.Settings) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithComponent("enricher")
	e := &Enricher{
		cfg:      cfg,
		producer: bus.NewProducer(brokers, bus.TopicEventsEnriched, busCfg),
		logger:   set.Logger,
		skipped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_undecodable_total", Help: "Messages on mcp.events the enricher could not decode and skipped.",
		})),
		enriched: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_events_total", Help: "Events enriched and produced to mcp.events.enriched.",
		})),
	}
	e.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{Group: Group, Topics: []string{bus.TopicEvents}}, e.handle, set)
	return e, nil
}

// Start begins consuming.
func (e *Enricher) Start(ctx context.Context) error { return e.consumer.Start(ctx) }

// Shutdown finishes the batch in progress and stops.
func (e *Enricher) Shutdown(ctx context.Context) error {
	err := e.consumer.Shutdown(ctx)
	if perr := e.producer.Close(); err == nil {
		err = perr
	}
	return err
}

func (e *Enricher) handle(ctx context.Context, msgs []kafka.Message) error {
	out := make([]kafka.Message, 0, len(msgs))
	for _, m := range msgs {
		var ev schemas.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			e.skipped.Inc()
			e.logger.Warn("skipping undecodable event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		e.Enrich(&ev)
		v, err := json.Marshal(ev)
		if err != nil {
			panic("BUG: cannot marshal event: " + err.Error())
		}
		out = append(out, kafka.Message{Key: []byte(ev.AgentID), Value: v})
	}
	if err := e.producer.Produce(ctx, out...); err != nil {
		return err
	}
	e.enriched.Add(float64(len(out)))
	return nil
}

// Enrich completes the event's attribution when the collector left it out, adds the configured
// labels, and drops content that was not captured, so that only content an operator opted in
// to capture reaches mcp.events.enriched and the store.
func (e *Enricher) Enrich(ev *schemas.Event) {
	if ev.AgentID == "" || ev.AgentSource == "" {
		ev.AgentID, ev.AgentSource = fallbackAgent(ev)
	}
	// Inspection of ev.Content happens before this point (none yet); what was not captured
	// goes no further.
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
