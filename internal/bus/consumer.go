package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Handler processes one batch of messages, in offset order per partition. It returns nil only
// once everything it made from the batch is durable (produced, stored or delivered); the batch is
// committed after that. It returns an error only for failures worth retrying — the same batch is
// then offered again after a backoff, never skipped. Messages it cannot decode it counts and
// skips, so one bad message cannot stall a partition.
type Handler func(ctx context.Context, msgs []kafka.Message) error

// ConsumerConfig names a consumer group and what it reads.
type ConsumerConfig struct {
	// Group is the Kafka consumer group; instances with the same group share partitions.
	Group string
	// Topics the group reads.
	Topics []string
	// BatchSize and BatchTimeout override Config's for this consumer (0 keeps Config's): the
	// most messages per batch, and how long to wait for a batch to fill.
	BatchSize    int
	BatchTimeout time.Duration
}

// Consumer is a Component that reads topics as a consumer group, hands batches to a Handler and
// commits offsets only after the handler succeeded: at-least-once, nothing acknowledged is lost.
type Consumer struct {
	brokers []string
	cfg     Config
	ccfg    ConsumerConfig
	handle  Handler
	logger  *slog.Logger

	consumed     prometheus.Counter
	handlerFails prometheus.Counter
	commitFails  prometheus.Counter

	mu       sync.Mutex
	reader   *kafka.Reader
	stopRead context.CancelFunc // stops fetching; the current batch still completes
	stopWork context.CancelFunc // abandons the current batch (left uncommitted)
	done     chan struct{}
}

// NewConsumer returns a consumer; call Start to run it.
func NewConsumer(brokers []string, cfg Config, ccfg ConsumerConfig, handle Handler, set pipeline.Settings) *Consumer {
	set = set.WithComponent("consumer")
	if ccfg.BatchSize > 0 {
		cfg.BatchSize = ccfg.BatchSize
	}
	if ccfg.BatchTimeout > 0 {
		cfg.BatchTimeout = ccfg.BatchTimeout
	}
	consumed := pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpwatch_bus_consumed_messages_total",
		Help: "Messages handled and committed, by consumer group.",
	}, []string{"group"}))
	handlerFails := pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpwatch_bus_handler_failures_total",
		Help: "Batches whose handler failed and will be retried, by consumer group.",
	}, []string{"group"}))
	commitFails := pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpwatch_bus_commit_failures_total",
		Help: "Offset commits that failed (the batch will be delivered again), by consumer group.",
	}, []string{"group"}))
	return &Consumer{
		brokers:      brokers,
		cfg:          cfg,
		ccfg:         ccfg,
		handle:       handle,
		logger:       set.Logger.With("group", ccfg.Group),
		consumed:     consumed.WithLabelValues(ccfg.Group),
		handlerFails: handlerFails.WithLabelValues(ccfg.Group),
		commitFails:  commitFails.WithLabelValues(ccfg.Group),
	}
}

// Start joins the group and begins consuming in the background.
func (c *Consumer) Start(_ context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader != nil {
		return errors.New("consumer already started")
	}
	c.reader = kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.brokers,
		GroupID:        c.ccfg.Group,
		GroupTopics:    c.ccfg.Topics,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  c.cfg.BatchSize,
		CommitInterval: 0, // synchronous commits: we commit only what is durable
		StartOffset:    kafka.FirstOffset,
		// A short rebalance/session keeps restarts and scale-out quick.
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		HeartbeatInterval: time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    250 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.logger.Debug("kafka reader: " + fmt.Sprintf(msg, args...))
		}),
	})
	readCtx, stopRead := context.WithCancel(context.Background())
	workCtx, stopWork := context.WithCancel(context.Background())
	c.stopRead, c.stopWork = stopRead, stopWork
	c.done = make(chan struct{})
	go c.run(readCtx, workCtx)
	return nil
}

// Shutdown stops fetching, lets the batch in progress finish and commit until ctx expires, then
// leaves the group. Messages fetched but not handled are delivered again later.
func (c *Consumer) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader == nil || c.done == nil {
		return nil
	}
	c.stopRead()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stopWork()
		<-c.done
	}
	c.stopWork()
	err := c.reader.Close()
	c.done = nil
	if err != nil {
		return fmt.Errorf("cannot close consumer %s: %w", c.ccfg.Group, err)
	}
	return nil
}

func (c *Consumer) run(readCtx, workCtx context.Context) {
	defer close(c.done)
	fetched := make(chan kafka.Message, c.cfg.BatchSize)
	go c.fetch(readCtx, fetched)

	batch := make([]kafka.Message, 0, c.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		m, ok := <-fetched
		if !ok {
			return
		}
		batch = append(batch[:0], m)
		timer.Reset(c.cfg.BatchTimeout)
	fill:
		for len(batch) < c.cfg.BatchSize {
			select {
			case m, ok := <-fetched:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if !c.process(readCtx, workCtx, batch) {
			return
		}
	}
}

// fetch feeds fetched until readCtx ends, then closes it.
func (c *Consumer) fetch(ctx context.Context, fetched chan<- kafka.Message) {
	defer close(fetched)
	for {
		m, err := c.reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			c.logger.Warn("cannot fetch message; retrying", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		select {
		case fetched <- m:
		case <-ctx.Done():
			return
		}
	}
}

// process handles a batch until it succeeds and commits it. A failing batch is retried until
// shutdown begins (readCtx ends); then it is left uncommitted, to be delivered again. It returns
// false when the batch was abandoned.
func (c *Consumer) process(readCtx, ctx context.Context, batch []kafka.Message) bool {
	for attempt := 0; ; attempt++ {
		err := c.handle(ctx, batch)
		if err == nil {
			break
		}
		if readCtx.Err() != nil || ctx.Err() != nil {
			c.logger.Warn("batch left uncommitted at shutdown", "messages", len(batch), "err", err)
			return false
		}
		c.handlerFails.Inc()
		delay := pipeline.Backoff(attempt, 100*time.Millisecond, 10*time.Second)
		c.logger.Warn("batch handler failed; retrying", "messages", len(batch), "attempt", attempt+1, "retry_in", delay, "err", err)
		if !sleep(readCtx, delay) {
			return false
		}
	}
	// Commit even while shutting down: the work is done and durable.
	commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.reader.CommitMessages(commitCtx, batch...); err != nil {
		c.commitFails.Inc()
		c.logger.Warn("cannot commit offsets; the batch will be delivered again", "messages", len(batch), "err", err)
		return true
	}
	c.consumed.Add(float64(len(batch)))
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
