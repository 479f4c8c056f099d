package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Group is alerting's consumer group.
const Group = "mcpwatch-alerting"

// Delivery statuses recorded in the store.
const (
	StatusDelivered    = "delivered"
	StatusDeadLettered = "dead_lettered"
	StatusReplayed     = "replayed"
)

// Dead-letter headers on mcp.alerts.dlq; the value and key are the original message's.
const (
	DLQHeaderSink         = "mcpwatch-sink"          // the sink that did not accept it ("" for an undecodable anomaly)
	DLQHeaderError        = "mcpwatch-error"         // the last error
	DLQHeaderDeliveryID   = "mcpwatch-delivery-id"   // the delivery id (also recomputable from value and sink)
	DLQHeaderAttempts     = "mcpwatch-attempts"      // attempts made
	DLQHeaderSourceOffset = "mcpwatch-source-offset" // partition/offset on mcp.anomalies, e.g. "2/1841"
)

// maxErrorLen bounds error text stored with a delivery or a dead letter.
const maxErrorLen = 512

// DeliveryStore records delivery outcomes; store.Store implements it.
type DeliveryStore interface {
	RecordDeliveries(ctx context.Context, ds []store.Delivery) error
}

// Alerting is the alerting role: mcp.anomalies → sinks, dead letters → mcp.alerts.dlq.
type Alerting struct {
	cfg      Config
	sinks    []*routedSink
	st       DeliveryStore
	consumer *bus.Consumer
	dlq      *bus.Producer
	logger   *slog.Logger
	now      func() time.Time
	m        *metrics

	// outcomes of the batch in hand, kept when the handler fails after delivering (e.g. the
	// store write failed), so the retried batch is not sent again.
	mu       sync.Mutex
	outcomes map[string]outcome

	life       sync.Mutex
	stopDigest context.CancelFunc
	digests    sync.WaitGroup
	closed     bool
}

// routedSink is a sink with its routing and noise control.
type routedSink struct {
	sink        Sink
	route       Route
	noise       *noise
	digestEvery time.Duration
	sendMu      sync.Mutex // Send is never called concurrently on one sink
}

type outcome struct {
	status   string // StatusDelivered or StatusDeadLettered
	attempts int
	err      error
	at       time.Time
	produced bool // the dead letter is on mcp.alerts.dlq
}

type metrics struct {
	delivered, failed, retried, deadLettered, suppressed, digests *prometheus.CounterVec
	undecodable                                                   prometheus.Counter
	unavailable                                                   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return pipeline.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
	}
	return &metrics{
		delivered:    counter("mcpwatch_alerts_delivered_total", "Alerts a sink accepted, by sink.", "sink"),
		failed:       counter("mcpwatch_alerts_failed_attempts_total", "Delivery attempts that failed, by sink.", "sink"),
		retried:      counter("mcpwatch_alerts_retried_total", "Delivery attempts made again after a failure, by sink.", "sink"),
		deadLettered: counter("mcpwatch_alerts_dead_lettered_total", "Alerts sent to mcp.alerts.dlq (rejected, or out of retry budget), by sink.", "sink"),
		suppressed:   counter("mcpwatch_alerts_suppressed_total", "Repeats of an anomaly held back by the sink's re-alert window (reported in its digest), by sink.", "sink"),
		undecodable: pipeline.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_alerts_undecodable_total",
			Help: "Messages on mcp.anomalies that are not valid Anomaly v1, dead-lettered without a sink.",
		})),
		digests: counter("mcpwatch_alerts_digests_total", "Digests of suppressed repeats, by sink and result (sent, failed).", "sink", "result"),
		unavailable: pipeline.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcpwatch_alerts_sink_unavailable",
			Help: "1 while alerting waits for a sink that is down or overloaded (the stream backs up), by sink.",
		}, []string{"sink"})),
	}
}

// New returns alerting for the bus at brokers, recording deliveries in st.
func New(cfg Config, st DeliveryStore, brokers []string, busCfg bus.Config, set pipeline.Settings) (*Alerting, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("alerting needs a store to record deliveries")
	}
	set = set.WithComponent("alerting")
	a := &Alerting{
		cfg:      cfg,
		st:       st,
		logger:   set.Logger,
		now:      time.Now,
		m:        newMetrics(set.Registry),
		outcomes: map[string]outcome{},
	}
	sinks, err := buildSinks(cfg, set)
	if err != nil {
		return nil, err
	}
	for _, s := range sinks {
		every := cfg.digestInterval(s.route)
		s.noise = newNoise(cfg.realertWindow(s.route), every > 0, a.now())
		s.digestEvery = every
		a.m.unavailable.WithLabelValues(s.sink.Name()).Set(0)
	}
	a.sinks = sinks
	a.dlq = bus.NewProducer(brokers, bus.TopicAlertsDLQ, busCfg)
	// Alerts go out one by one anyway: waiting for a batch to fill would only add latency.
	a.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{Group: Group, Topics: []string{bus.TopicAnomalies}, BatchTimeout: time.Millisecond}, a.handle, set)
	return a, nil
}

// buildSinks makes every configured sink; on error it closes those already made.
func buildSinks(cfg Config, set pipeline.Settings) ([]*routedSink, error) {
	var out []*routedSink
	add := func(kind, name string, r Route, s Sink, err error) error {
		if err != nil {
			for _, o := range out {
				_ = o.sink.Close()
			}
			return fmt.Errorf("cannot set up %s sink %s: %w", kind, name, err)
		}
		out = append(out, &routedSink{sink: s, route: r})
		return nil
	}
	for _, c := range cfg.Webhooks {
		s, err := newWebhookSink(c, set)
		if err := add("webhook", c.Name, c.Route, s, err); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.Syslog {
		s, err := newSyslogSink(c, set)
		if err := add("syslog", c.Name, c.Route, s, err); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.HEC {
		s, err := newHECSink(c, set)
		if err := add("hec", c.Name, c.Route, s, err); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.Files {
		s, err := newFileSink(c, set)
		if err := add("file", c.Name, c.Route, s, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Start begins consuming, and sending digests.
func (a *Alerting) Start(ctx context.Context) error {
	a.life.Lock()
	defer a.life.Unlock()
	if a.closed {
		return errors.New("alerting was shut down")
	}
	if err := a.consumer.Start(ctx); err != nil {
		return err
	}
	dctx, stop := context.WithCancel(context.Background())
	a.stopDigest = stop
	for _, s := range a.sinks {
		if s.digestEvery > 0 {
			a.digests.Go(func() { a.digestLoop(dctx, s) })
		}
	}
	return nil
}

// Shutdown finishes the batch in progress (until ctx ends; an unfinished batch stays
// uncommitted and is delivered again later), sends each sink's pending digest, and closes
// the sinks.
func (a *Alerting) Shutdown(ctx context.Context) error {
	a.life.Lock()
	defer a.life.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	err := a.consumer.Shutdown(ctx)
	if a.stopDigest != nil {
		a.stopDigest()
		a.digests.Wait()
		// Deliver what was held back so far rather than forget it; a sink that is down gets
		// a few seconds at most.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for _, s := range a.sinks {
			if s.digestEvery > 0 {
				a.sendDigest(fctx, s)
			}
		}
		cancel()
	}
	if perr := a.dlq.Close(); err == nil {
		err = perr
	}
	for _, s := range a.sinks {
		if cerr := s.sink.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cannot close sink %s: %w", s.sink.Name(), cerr)
		}
	}
	return err
}

// DeliveryID is stable for one version of an anomaly (its id and count) at one sink, so a
// redelivery after a restart, or a replay from the dead-letter queue, carries the same id and
// receivers can drop it.
func DeliveryID(an schemas.Anomaly, sink string) string {
	h := sha256.Sum256([]byte(an.ID + "\x00" + strconv.Itoa(an.Count) + "\x00" + sink))
	return hex.EncodeToString(h[:16])
}

// job is one alert for one sink within a batch.
type job struct {
	msg   int // index in the batch
	alert Alert
}

// handle delivers a batch. It returns nil once every alert of the batch was accepted by each
// sink it is routed to, or dead-lettered, and the outcomes are recorded in the store; the
// consumer then commits. It returns an error (the batch is offered again) when shutting down,
// or when the dead-letter queue or the store cannot be written.
func (a *Alerting) handle(ctx context.Context, msgs []kafka.Message) error {
	jobs := make([][]job, len(a.sinks))
	var bad []int // undecodable messages
	var badErrs []error
	for i, m := range msgs {
		an, err := decode(m.Value)
		if err != nil {
			a.logger.Warn("dead-lettering an invalid anomaly", "partition", m.Partition, "offset", m.Offset, "err", err)
			bad, badErrs = append(bad, i), append(badErrs, err)
			continue
		}
		if an.Learning {
			continue // the agent's baseline is still warming up: stored, not alerted
		}
		for si, s := range a.sinks {
			if !s.route.Accepts(an) {
				continue
			}
			name := s.sink.Name()
			if ok, newly := s.noise.admit(an); !ok {
				if newly {
					a.m.suppressed.WithLabelValues(name).Inc()
				}
				continue
			}
			jobs[si] = append(jobs[si], job{msg: i, alert: Alert{Anomaly: an, JSON: m.Value, DeliveryID: DeliveryID(an, name)}})
		}
	}

	// Each sink works through its alerts in order; sinks work concurrently.
	results := make([][]outcome, len(a.sinks))
	errs := make([]error, len(a.sinks))
	var wg sync.WaitGroup
	for si, s := range a.sinks {
		if len(jobs[si]) == 0 {
			continue
		}
		results[si] = make([]outcome, len(jobs[si]))
		wg.Go(func() {
			for j, jb := range jobs[si] {
				if o, ok := a.outcome(jb.alert.DeliveryID); ok {
					results[si][j] = o
					continue
				}
				o, err := a.deliver(ctx, s, jb.alert)
				if err != nil {
					errs[si] = err
					return
				}
				a.setOutcome(jb.alert.DeliveryID, o)
				results[si][j] = o
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err // shutting down: the batch stays uncommitted
	}

	var dead []kafka.Message
	var deadKeys []string
	for k, i := range bad {
		key := fmt.Sprintf("invalid/%d/%d", msgs[i].Partition, msgs[i].Offset)
		if o, ok := a.outcome(key); ok && o.produced {
			continue
		}
		dead = append(dead, deadLetter(msgs[i], "", "", 1, badErrs[k]))
		deadKeys = append(deadKeys, key)
	}
	var records []store.Delivery
	queued := map[string]bool{} // an alert twice in one batch is recorded and dead-lettered once
	for si, s := range a.sinks {
		for j, jb := range jobs[si] {
			o := results[si][j]
			if queued[jb.alert.DeliveryID] {
				continue
			}
			queued[jb.alert.DeliveryID] = true
			records = append(records, deliveryRecord(jb.alert, s.sink.Name(), o))
			if o.status == StatusDeadLettered && !o.produced {
				dead = append(dead, deadLetter(msgs[jb.msg], s.sink.Name(), jb.alert.DeliveryID, o.attempts, o.err))
				deadKeys = append(deadKeys, jb.alert.DeliveryID)
			}
		}
	}
	if err := a.dlq.Produce(ctx, dead...); err != nil {
		return fmt.Errorf("cannot dead-letter %d alerts: %w", len(dead), err)
	}
	for _, k := range deadKeys {
		o, _ := a.outcome(k)
		o.produced = true
		a.setOutcome(k, o)
	}
	if len(bad) > 0 {
		a.m.undecodable.Add(float64(len(bad)))
	}
	if len(records) > 0 {
		if err := a.st.RecordDeliveries(ctx, records); err != nil {
			return fmt.Errorf("cannot record %d deliveries: %w", len(records), err)
		}
	}
	a.mu.Lock()
	clear(a.outcomes)
	a.mu.Unlock()
	return nil
}

func (a *Alerting) outcome(key string) (outcome, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.outcomes[key]
	return o, ok
}

func (a *Alerting) setOutcome(key string, o outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcomes[key] = o
}

// decode parses and validates Anomaly v1.
func decode(v []byte) (schemas.Anomaly, error) {
	var an schemas.Anomaly
	if err := schemas.ValidateAnomalyJSON(v); err != nil {
		return an, err
	}
	if err := json.Unmarshal(v, &an); err != nil {
		return an, fmt.Errorf("cannot decode anomaly: %w", err)
	}
	return an, nil
}

// deliver sends one alert to one sink until it is accepted or dead-lettered (see
// RetryConfig). It returns an error only when ctx ends first.
func (a *Alerting) deliver(ctx context.Context, s *routedSink, al Alert) (outcome, error) {
	name := s.sink.Name()
	spent := 0 // attempts that count against the budget
	waiting := false
	defer func() {
		if waiting {
			a.m.unavailable.WithLabelValues(name).Set(0)
		}
	}()
	for attempt := 1; ; attempt++ {
		al.Time = a.now()
		s.sendMu.Lock()
		err := s.sink.Send(ctx, al)
		s.sendMu.Unlock()
		if err == nil {
			a.m.delivered.WithLabelValues(name).Inc()
			if waiting {
				a.logger.Info("sink available again", "sink", name)
			}
			return outcome{status: StatusDelivered, attempts: attempt, at: a.now()}, nil
		}
		if ctx.Err() != nil {
			return outcome{}, ctx.Err()
		}
		a.m.failed.WithLabelValues(name).Inc()
		dead := func() (outcome, error) {
			a.m.deadLettered.WithLabelValues(name).Inc()
			a.logger.Error("alert dead-lettered", "sink", name, "anomaly", al.Anomaly.ID, "delivery", al.DeliveryID, "attempts", attempt, "err", err)
			return outcome{status: StatusDeadLettered, attempts: attempt, err: err, at: a.now()}, nil
		}
		if IsPermanent(err) {
			return dead()
		}
		unavailable := IsUnavailable(err) && !a.cfg.Retry.DeadLetterWhenUnavailable
		if !unavailable {
			if spent++; spent >= a.cfg.Retry.MaxAttempts {
				return dead()
			}
		}
		delay := pipeline.Backoff(attempt-1, a.cfg.Retry.InitialBackoff, a.cfg.Retry.MaxBackoff)
		if unavailable {
			if !waiting {
				waiting = true
				a.m.unavailable.WithLabelValues(name).Set(1)
			}
			a.logger.Warn("sink unavailable; holding alerts until it is back", "sink", name, "attempt", attempt, "retry_in", delay, "err", err)
		} else {
			a.logger.Warn("alert delivery failed; retrying", "sink", name, "anomaly", al.Anomaly.ID, "attempt", attempt, "retry_in", delay, "err", err)
		}
		a.m.retried.WithLabelValues(name).Inc()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return outcome{}, ctx.Err()
		case <-t.C:
		}
	}
}

// digestLoop sends the sink's digest every digestEvery until ctx ends.
func (a *Alerting) digestLoop(ctx context.Context, s *routedSink) {
	t := time.NewTicker(s.digestEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.sendDigest(ctx, s)
		}
	}
}

// sendDigest delivers what the sink's re-alert window held back since the last digest. A
// digest that could not be delivered before ctx ended is kept for the next one; one the sink
// rejects is logged and dropped (the anomalies themselves are in the store).
func (a *Alerting) sendDigest(ctx context.Context, s *routedSink) {
	name := s.sink.Name()
	d := s.noise.takeDigest(name, a.now())
	if d == nil {
		return
	}
	al, err := digestAlert(d)
	if err != nil {
		a.logger.Error("cannot build digest", "sink", name, "err", err)
		return
	}
	o, err := a.deliver(ctx, s, al)
	if err != nil {
		s.noise.putBack(d)
		return
	}
	if o.status != StatusDelivered {
		a.m.digests.WithLabelValues(name, "failed").Inc()
		a.logger.Error("digest not delivered", "sink", name, "suppressed", d.Suppressed, "err", o.err)
		return
	}
	a.m.digests.WithLabelValues(name, "sent").Inc()
	if err := a.st.RecordDeliveries(ctx, []store.Delivery{deliveryRecord(al, name, o)}); err != nil {
		a.logger.Warn("cannot record digest delivery", "sink", name, "err", err)
	}
}

// deliveryRecord is an outcome as the store keeps it.
func deliveryRecord(al Alert, sink string, o outcome) store.Delivery {
	return store.Delivery{
		ID:        al.DeliveryID,
		AnomalyID: al.Anomaly.ID,
		AgentID:   al.Anomaly.AgentID,
		Kind:      al.Anomaly.Kind,
		Severity:  string(al.Anomaly.Severity),
		Sink:      sink,
		Status:    o.status,
		Attempts:  o.attempts,
		Error:     errorText(o.err),
		Time:      o.at.UTC(),
	}
}

// errorText is an error as stored and dead-lettered: sinks keep secrets and payloads out of
// their errors; this bounds the length.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen] + "…"
	}
	return s
}

// deadLetter wraps the original message with why, and for which sink, it was not delivered.
func deadLetter(m kafka.Message, sink, deliveryID string, attempts int, err error) kafka.Message {
	return kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: DLQHeaderSink, Value: []byte(sink)},
			{Key: DLQHeaderError, Value: []byte(errorText(err))},
			{Key: DLQHeaderDeliveryID, Value: []byte(deliveryID)},
			{Key: DLQHeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
			{Key: DLQHeaderSourceOffset, Value: []byte(fmt.Sprintf("%d/%d", m.Partition, m.Offset))},
		},
	}
}
