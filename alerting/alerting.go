package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Group is alerting's consumer group.
const Group = "mcpwatch-alerting"

// Alerting is the alerting role: mcp.anomalies → sinks, dead letters → mcp.alerts.dlq.
type Alerting struct {
	cfg      Config
	sinks    []routedSink
	consumer *bus.Consumer
	dlq      *bus.Producer
	logger   *slog.Logger
	now      func() time.Time

	delivered    *prometheus.CounterVec
	failed       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
}

// New returns alerting for the bus at brokers.
func New(cfg Config, brokers []string, busCfg bus.Config, set pipeline.Settings) (*Alerting, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithComponent("alerting")
	a := &Alerting{
		cfg:    cfg,
		dlq:    bus.NewProducer(brokers, bus.TopicAlertsDLQ, busCfg),
		logger: set.Logger,
		now:    time.Now,
		delivered: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_alerts_delivered_total", Help: "Alerts a sink accepted, by sink.",
		}, []string{"sink"})),
		failed: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_alerts_failed_attempts_total", Help: "Delivery attempts that failed, by sink.",
		}, []string{"sink"})),
		deadLettered: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_alerts_dead_lettered_total", Help: "Alerts sent to mcp.alerts.dlq after the retry budget, by sink.",
		}, []string{"sink"})),
	}
	for _, w := range cfg.Webhooks {
		s, err := newWebhookSink(w, set)
		if err != nil {
			return nil, fmt.Errorf("cannot set up webhook %s: %w", w.Name, err)
		}
		a.sinks = append(a.sinks, routedSink{sink: s, route: w.Route})
	}
	a.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{Group: Group, Topics: []string{bus.TopicAnomalies}}, a.handle, set)
	return a, nil
}

// Start begins consuming.
func (a *Alerting) Start(ctx context.Context) error { return a.consumer.Start(ctx) }

// Shutdown finishes the batch in progress and stops.
func (a *Alerting) Shutdown(ctx context.Context) error {
	err := a.consumer.Shutdown(ctx)
	if perr := a.dlq.Close(); err == nil {
		err = perr
	}
	for _, s := range a.sinks {
		if cerr := s.sink.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// DeliveryID is stable for one version of an anomaly (its id and count) at one sink, so a
// redelivery after a restart carries the same id and receivers can drop it.
func DeliveryID(an schemas.Anomaly, sink string) string {
	h := sha256.Sum256([]byte(an.ID + "\x00" + strconv.Itoa(an.Count) + "\x00" + sink))
	return hex.EncodeToString(h[:16])
}

func (a *Alerting) handle(ctx context.Context, msgs []kafka.Message) error {
	var dead []kafka.Message
	for _, m := range msgs {
		var an schemas.Anomaly
		if err := json.Unmarshal(m.Value, &an); err != nil {
			a.logger.Warn("dead-lettering undecodable anomaly", "partition", m.Partition, "offset", m.Offset, "err", err)
			dead = append(dead, deadLetter(m, "", err))
			continue
		}
		if an.Learning {
			continue // the agent's baseline is still warming up: stored, not alerted
		}
		for _, s := range a.sinks {
			if !s.route.Accepts(an) {
				continue
			}
			if err := a.deliver(ctx, s.sink, an, m.Value); err != nil {
				if ctx.Err() != nil {
					return ctx.Err() // shutting down: leave the batch uncommitted
				}
				a.deadLettered.WithLabelValues(s.sink.Name()).Inc()
				a.logger.Error("alert dead-lettered", "sink", s.sink.Name(), "anomaly", an.ID, "err", err)
				dead = append(dead, deadLetter(m, s.sink.Name(), err))
			}
		}
	}
	return a.dlq.Produce(ctx, dead...)
}

// deliver tries one sink within the retry budget.
func (a *Alerting) deliver(ctx context.Context, s Sink, an schemas.Anomaly, body []byte) error {
	alert := Alert{Anomaly: an, JSON: body, DeliveryID: DeliveryID(an, s.Name())}
	var err error
	for attempt := 0; attempt < a.cfg.Retry.MaxAttempts; attempt++ {
		alert.Time = a.now()
		if err = s.Send(ctx, alert); err == nil {
			a.delivered.WithLabelValues(s.Name()).Inc()
			return nil
		}
		a.failed.WithLabelValues(s.Name()).Inc()
		if IsPermanent(err) || attempt == a.cfg.Retry.MaxAttempts-1 {
			break
		}
		delay := pipeline.Backoff(attempt, a.cfg.Retry.InitialBackoff, a.cfg.Retry.MaxBackoff)
		a.logger.Warn("alert delivery failed; retrying", "sink", s.Name(), "anomaly", an.ID, "attempt", attempt+1, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}

// routedSink is a sink with its routing.
type routedSink struct {
	sink  Sink
	route Route
}

// deadLetter wraps the original message with why and for which sink it was not delivered.
func deadLetter(m kafka.Message, sink string, err error) kafka.Message {
	return kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: "mcpwatch-sink", Value: []byte(sink)},
			{Key: "mcpwatch-error", Value: []byte(err.Error())},
			{Key: "mcpwatch-source-offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	}
}
