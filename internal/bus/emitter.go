package bus

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// EventEmitter is the collectors' way onto the bus. Emit only enqueues, so a slow or absent
// broker never slows an MCP call; a background loop produces queued events in batches and
// retries failed batches until they are acknowledged. Shutdown drains the queue.
type EventEmitter struct {
	producer *Producer
	cfg      Config
	logger   *slog.Logger
	queue    chan schemas.Event

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

// QueueCapacity is how many events an EventEmitter holds while the broker is slow or away.
const QueueCapacity = 1 << 16

// NewEventEmitter returns an emitter producing to TopicEvents.
func NewEventEmitter(brokers []string, cfg Config, set pipeline.Settings) *EventEmitter {
	set = set.WithComponent("emitter")
	e := &EventEmitter{
		producer: NewProducer(brokers, TopicEvents, cfg),
		cfg:      cfg,
		logger:   set.Logger,
		queue:    make(chan schemas.Event, QueueCapacity),
		emitted: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_collector_events_emitted_total", Help: "Events handed to the bus by collectors.",
		})),
		produced: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_collector_events_produced_total", Help: "Events acknowledged by the broker.",
		})),
		dropped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_collector_events_dropped_total", Help: "Events dropped because the emit queue was full.",
		})),
	}
	e.queued = pipeline.Register(set.Registry, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mcpwatch_collector_emit_queue_length", Help: "Events waiting to be produced.",
	}, func() float64 { return float64(len(e.queue)) }))
	return e
}

// Emit enqueues e without blocking. When the queue is full the event is counted as dropped.
func (e *EventEmitter) Emit(ev schemas.Event) {
	// The read lock is held across the send so Shutdown cannot close the queue under it.
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.dropped.Inc()
		return
	}
	select {
	case e.queue <- ev:
		e.emitted.Inc()
	default:
		e.dropped.Inc()
	}
}

// Queued is the number of events waiting to be produced.
func (e *EventEmitter) Queued() int { return len(e.queue) }

// Start begins producing in the background.
func (e *EventEmitter) Start(_ context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return nil
	}
	e.started = true
	ctx, cancel := context.WithCancel(context.Background())
	e.abandon = cancel
	e.done = make(chan struct{})
	go e.run(ctx)
	return nil
}

// Shutdown stops accepting events and produces everything queued, until ctx expires.
func (e *EventEmitter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.queue)
	started := e.started
	e.mu.Unlock()
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
			delay := Backoff(attempt, 100*time.Millisecond, 5*time.Second)
			e.logger.Warn("cannot produce events; retrying", "events", len(msgs), "retry_in", delay, "err", err)
			if !sleep(ctx, delay) {
				return
			}
		}
	}
}

func (e *EventEmitter) message(ev schemas.Event) kafka.Message {
	v, err := json.Marshal(ev)
	if err != nil {
		panic("BUG: cannot marshal event: " + err.Error())
	}
	return kafka.Message{Key: []byte(ev.AgentID), Value: v}
}
