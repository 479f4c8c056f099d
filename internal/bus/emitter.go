package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/collector/spool"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// EventEmitter is the collectors' way onto the bus. Emit never waits for the broker, so a slow
// or absent broker never slows an MCP call; a background loop produces events in batches and
// retries failed batches until they are acknowledged.
//
// A spooled emitter (NewSpooledEventEmitter) writes every event ahead to a disk spool before
// Emit returns (waiting at most SpoolConfig.EmitWait, with group commit) and produces from the
// spool, acknowledging what the broker accepted: events survive a broker outage for as long as
// the spool has room, a restart, and the process being killed. A memory emitter
// (NewEventEmitter) keeps a bounded queue in memory: what is queued is lost if the process is
// killed, and events are dropped when the queue is full.
type EventEmitter struct {
	producer *Producer
	cfg      Config
	logger   *slog.Logger

	queue chan schemas.Event // memory emitter
	spool *spool.Spool       // spooled emitter
	wal   *spool.Queue

	emitted  prometheus.Counter
	produced prometheus.Counter
	dropped  prometheus.Counter
	queued   prometheus.GaugeFunc

	mu      sync.RWMutex
	closed  bool
	started bool
	done    chan struct{}
	abandon context.CancelFunc
}

// QueueCapacity is how many events a memory EventEmitter holds while the broker is slow or away,
// and how many a spooled one holds in memory while the disk is slower than EmitWait.
const QueueCapacity = 1 << 16

// Errors of TryEmit.
var (
	ErrEmitterFull   = errors.New("event emitter is full")
	ErrEmitterClosed = errors.New("event emitter is shut down")
)

// SpoolConfig configures the disk spool a collector's events are written to before they are
// produced (the collector.spool section).
type SpoolConfig struct {
	// Disabled keeps events in a bounded memory queue instead: a broker outage longer than the
	// queue lasts, or the process being killed, then loses events.
	Disabled bool `yaml:"disabled"`
	// Dir holds the spool. Default: spool/events under the data dir.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the events waiting in the spool; beyond it new events are dropped and
	// counted in mcpwatch_collector_events_dropped_total. Default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// Fsync is batch (default: every batch written is fsynced in the background, so a power
	// loss loses at most the batches being synced) or never (the OS writes back; a killed
	// process still loses nothing).
	Fsync string `yaml:"fsync"`
	// EmitWait bounds how long Emit waits for its event to reach the spool file. An event Emit
	// returned for survives the process being killed unless the disk took longer. Default 5ms.
	EmitWait time.Duration `yaml:"emit_wait"`
}

// DefaultEmitWait is SpoolConfig.EmitWait's default.
const DefaultEmitWait = 5 * time.Millisecond

// SetDefaults fills zero values; dataDir is the data dir the spool lives under by default.
func (c *SpoolConfig) SetDefaults(dataDir string) {
	if c.Dir == "" && dataDir != "" {
		c.Dir = filepath.Join(dataDir, "spool", "events")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = spool.DefaultMaxBytes
	}
	if c.Fsync == "" {
		c.Fsync = spool.FsyncBatch
	}
	if c.EmitWait == 0 {
		c.EmitWait = DefaultEmitWait
	}
}

// Validate reports every invalid field, named under collector.spool.
func (c SpoolConfig) Validate() error {
	if c.Disabled {
		return nil
	}
	errs := []error{c.spoolConfig().ValidateAt("collector.spool")}
	if c.EmitWait < 0 || c.EmitWait > time.Second {
		errs = append(errs, errors.New("collector.spool.emit_wait: must be between 0 and 1s"))
	}
	return errors.Join(errs...)
}

func (c SpoolConfig) spoolConfig() spool.Config {
	seg := int64(0)
	if c.MaxBytes > 0 && c.MaxBytes < spool.DefaultSegmentBytes {
		seg = c.MaxBytes // a small spool gets small segments
	}
	return spool.Config{Dir: c.Dir, MaxBytes: c.MaxBytes, SegmentBytes: seg, Fsync: c.Fsync}
}

func newEmitter(brokers []string, cfg Config, set pipeline.Settings) *EventEmitter {
	return &EventEmitter{
		producer: NewProducer(brokers, TopicEvents, cfg),
		cfg:      cfg,
		logger:   set.Logger,
		emitted: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_collector_events_emitted_total", Help: "Events handed to the bus by collectors.",
		})),
		produced: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_collector_events_produced_total", Help: "Events acknowledged by the broker.",
		})),
		dropped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_collector_events_dropped_total", Help: "Events dropped because the emit queue or the spool was full.",
		})),
	}
}

func (e *EventEmitter) registerQueued(reg prometheus.Registerer) {
	e.queued = pipeline.Register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mcpwatch_collector_emit_queue_length", Help: "Events waiting to be produced (in memory and in the spool).",
	}, func() float64 { return float64(e.Queued()) }))
}

// NewEventEmitter returns an emitter producing to TopicEvents from a memory queue.
func NewEventEmitter(brokers []string, cfg Config, set pipeline.Settings) *EventEmitter {
	set = set.WithComponent("emitter")
	e := newEmitter(brokers, cfg, set)
	e.queue = make(chan schemas.Event, QueueCapacity)
	e.registerQueued(set.Registry)
	return e
}

// NewSpooledEventEmitter returns an emitter producing to TopicEvents through a disk spool in
// sc.Dir (see EventEmitter). Events left in the spool by an earlier run are produced first.
func NewSpooledEventEmitter(brokers []string, cfg Config, sc SpoolConfig, set pipeline.Settings) (*EventEmitter, error) {
	if sc.Disabled {
		return NewEventEmitter(brokers, cfg, set), nil
	}
	set = set.WithComponent("emitter")
	sc.SetDefaults("")
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("invalid event spool config: %w", err)
	}
	sp, err := spool.Open(sc.spoolConfig(), "events", set)
	if err != nil {
		return nil, fmt.Errorf("cannot open event spool: %w", err)
	}
	e := newEmitter(brokers, cfg, set)
	e.spool = sp
	e.wal = spool.NewQueue(sp, e.deliver, spool.QueueOptions{
		MaxBuffered:  QueueCapacity,
		AddWait:      sc.EmitWait,
		BatchRecords: cfg.BatchSize,
		Linger:       cfg.BatchTimeout,
		RetryMin:     100 * time.Millisecond,
		RetryMax:     5 * time.Second,
		OnDrop:       func(n int) { e.dropped.Add(float64(n)) },
		OnDeliver:    func(n int) { e.produced.Add(float64(n)) },
	}, set)
	e.registerQueued(set.Registry)
	if n, bytes := sp.Pending(); n > 0 {
		e.logger.Info("producing events spooled by an earlier run", "events", n, "bytes", bytes)
	}
	return e, nil
}

// Emit hands ev to the bus without waiting for the broker. When the emitter is full or shut
// down, the event is counted as dropped.
func (e *EventEmitter) Emit(ev schemas.Event) { _ = e.TryEmit(ev) }

// EmitNow is Emit without waiting for the spool's disk (pipeline.NowEmitter): the event is
// in memory until the spool has written it, as in a memory emitter's queue.
func (e *EventEmitter) EmitNow(ev schemas.Event) { _ = e.tryEmit(ev, false) }

// TryEmit is Emit that reports a drop: ErrEmitterFull or ErrEmitterClosed.
func (e *EventEmitter) TryEmit(ev schemas.Event) error { return e.tryEmit(ev, true) }

func (e *EventEmitter) tryEmit(ev schemas.Event, waitForDisk bool) error {
	if e.wal != nil {
		add := e.wal.Add
		if !waitForDisk {
			add = e.wal.Offer
		}
		switch err := add(encodeEvent(ev)); {
		case err == nil:
			e.emitted.Inc()
			return nil
		case errors.Is(err, spool.ErrClosed):
			return ErrEmitterClosed
		default:
			return ErrEmitterFull
		}
	}
	// The read lock is held across the send so Shutdown cannot close the queue under it.
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.dropped.Inc()
		return ErrEmitterClosed
	}
	select {
	case e.queue <- ev:
		e.emitted.Inc()
		return nil
	default:
		e.dropped.Inc()
		return ErrEmitterFull
	}
}

// Queued is the number of events waiting to be produced.
func (e *EventEmitter) Queued() int {
	if e.wal != nil {
		return e.wal.Len()
	}
	return len(e.queue)
}

// Start begins producing in the background.
func (e *EventEmitter) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return nil
	}
	e.started = true
	if e.wal != nil {
		return e.wal.Start(ctx)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.abandon = cancel
	e.done = make(chan struct{})
	go e.run(runCtx)
	return nil
}

// Shutdown stops accepting events and produces everything waiting, until ctx expires or (for
// a spooled emitter) the broker fails; a spooled emitter keeps what is left in its spool for
// the next run. Safe to call twice and without Start.
func (e *EventEmitter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	started := e.started
	if e.queue != nil {
		close(e.queue)
	}
	e.mu.Unlock()
	if e.wal != nil {
		err := errors.Join(e.wal.Shutdown(ctx), e.spool.Close(), e.producer.Close())
		if err != nil {
			return fmt.Errorf("cannot shut the event emitter down: %w", err)
		}
		return nil
	}
	if started {
		select {
		case <-e.done:
		case <-ctx.Done():
			e.abandon()
			<-e.done
		}
		e.abandon()
	}
	if n := len(e.queue); n > 0 {
		e.logger.Error("shutdown deadline passed before all events were produced", "left", n)
	}
	return e.producer.Close()
}

// deliver produces spooled events; the spool acknowledges them once the broker has.
func (e *EventEmitter) deliver(ctx context.Context, recs [][]byte) error {
	msgs := make([]kafka.Message, 0, len(recs))
	for _, r := range recs {
		m, ok := decodeEvent(r)
		if !ok || len(r) > maxMessageBytes {
			// Retrying cannot help either; holding on to it would stall the spool.
			e.logger.Error("dropping a spooled event that cannot be produced", "bytes", len(r), "decodable", ok)
			e.dropped.Inc()
			continue
		}
		msgs = append(msgs, m)
	}
	return e.producer.Produce(ctx, msgs...)
}

// maxMessageBytes keeps a message under the producer's request size (kafka-go's 1 MiB default
// BatchBytes), which it would refuse every time.
const maxMessageBytes = 1<<20 - 1<<10

// encodeEvent makes the spool record of ev: the message key (uvarint length, bytes), then the
// message value (the event's JSON).
func encodeEvent(ev schemas.Event) []byte {
	v, err := ev.AppendJSON(nil)
	if err != nil {
		panic("BUG: cannot marshal event: " + err.Error())
	}
	rec := make([]byte, 0, binary.MaxVarintLen64+len(ev.AgentID)+len(v))
	rec = binary.AppendUvarint(rec, uint64(len(ev.AgentID)))
	rec = append(rec, ev.AgentID...)
	return append(rec, v...)
}

func decodeEvent(rec []byte) (kafka.Message, bool) {
	n, w := binary.Uvarint(rec)
	if w <= 0 || uint64(len(rec)-w) < n {
		return kafka.Message{}, false
	}
	key := rec[w : w+int(n)]
	return kafka.Message{Key: key, Value: rec[w+int(n):]}, true
}

func (e *EventEmitter) run(ctx context.Context) {
	defer close(e.done)
	msgs := make([]kafka.Message, 0, e.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		ev, ok := <-e.queue
		if !ok {
			return
		}
		msgs = append(msgs[:0], e.message(ev))
		timer.Reset(e.cfg.BatchTimeout)
	fill:
		for len(msgs) < e.cfg.BatchSize {
			select {
			case ev, ok := <-e.queue:
				if !ok {
					break fill
				}
				msgs = append(msgs, e.message(ev))
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		for attempt := 0; ; attempt++ {
			err := e.producer.Produce(ctx, msgs...)
			if err == nil {
				e.produced.Add(float64(len(msgs)))
				break
			}
			if ctx.Err() != nil {
				e.logger.Error("events abandoned at shutdown", "events", len(msgs))
				return
			}
			delay := pipeline.Backoff(attempt, 100*time.Millisecond, 5*time.Second)
			e.logger.Warn("cannot produce events; retrying", "events", len(msgs), "retry_in", delay, "err", err)
			if !sleep(ctx, delay) {
				return
			}
		}
	}
}

func (e *EventEmitter) message(ev schemas.Event) kafka.Message {
	v, err := ev.AppendJSON(nil)
	if err != nil {
		panic("BUG: cannot marshal event: " + err.Error())
	}
	return kafka.Message{Key: []byte(ev.AgentID), Value: v}
}
