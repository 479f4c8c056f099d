package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// WriterConfig tunes the writer role's batches.
type WriterConfig struct {
	// BatchSize is the most records written in one store batch (default 5000).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval bounds how long a partial batch waits before it is written (default 200ms).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// RetentionInterval is how often data older than store.retention_days is removed
	// (default 1h).
	RetentionInterval time.Duration `yaml:"retention_interval"`
}

// SetDefaults fills zero values.
func (c *WriterConfig) SetDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Hour
	}
}

// Validate names the invalid field.
func (c WriterConfig) Validate() error {
	if c.BatchSize < 1 {
		return fmt.Errorf("writer.batch_size: must be at least 1")
	}
	if c.FlushInterval <= 0 {
		return fmt.Errorf("writer.flush_interval: must be positive")
	}
	if c.RetentionInterval <= 0 {
		return fmt.Errorf("writer.retention_interval: must be positive")
	}
	return nil
}

// WriterGroup is the writer role's consumer group.
const WriterGroup = "mcpwatch-writer"

// Writer is the writer role: it consumes enriched events and anomalies into a Store in batches
// and commits their offsets only after the store accepted them. A store outage backs the stream
// up in the broker; nothing is dropped.
type Writer struct {
	cfg      WriterConfig
	st       Store
	stop     chan struct{}
	stopped  chan struct{}
	consumer *bus.Consumer
	logger   *slog.Logger
	written  *prometheus.CounterVec
	skipped  prometheus.Counter
}

// NewWriter returns a writer consuming from brokers into st.
func NewWriter(cfg WriterConfig, st Store, brokers []string, busCfg bus.Config, set pipeline.Settings) *Writer {
	set = set.WithComponent("writer")
	w := &Writer{
		cfg:    cfg,
		st:     st,
		logger: set.Logger,
		written: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_store_written_total", Help: "Records written to the store, by kind (event, anomaly).",
		}, []string{"kind"})),
		skipped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_store_undecodable_total", Help: "Bus messages the writer could not decode and skipped.",
		})),
	}
	w.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{
		Group:        WriterGroup,
		Topics:       []string{bus.TopicEventsEnriched, bus.TopicAnomalies},
		BatchSize:    cfg.BatchSize,
		BatchTimeout: cfg.FlushInterval,
	}, w.handle, set)
	return w
}

// Start begins consuming, and enforcing retention every RetentionInterval.
func (w *Writer) Start(ctx context.Context) error {
	if err := w.consumer.Start(ctx); err != nil {
		return err
	}
	w.stop, w.stopped = make(chan struct{}), make(chan struct{})
	go w.enforceRetention()
	return nil
}

// Shutdown writes the batch in progress and stops. Safe to call twice and without Start.
func (w *Writer) Shutdown(ctx context.Context) error {
	if w.stop != nil {
		close(w.stop)
		<-w.stopped
		w.stop = nil
	}
	return w.consumer.Shutdown(ctx)
}

func (w *Writer) enforceRetention() {
	defer close(w.stopped)
	t := time.NewTicker(w.cfg.RetentionInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.RetentionInterval)
		if err := w.st.DropExpired(ctx, time.Now()); err != nil {
			w.logger.Warn("cannot remove expired data; will retry", "err", err)
		}
		cancel()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

var errNoID = errors.New("message has no id")

func (w *Writer) handle(ctx context.Context, msgs []kafka.Message) error {
	var events []schemas.Event
	var anomalies []schemas.Anomaly
	for _, m := range msgs {
		var err error
		switch m.Topic {
		case bus.TopicEventsEnriched:
			var e schemas.Event
			if err = schemas.DecodeEvent(m.Value, &e); err == nil && e.ID == "" {
				err = errNoID // e.g. JSON null: it decodes, but would be stored as an empty row
			}
			if err == nil {
				events = append(events, e)
			}
		case bus.TopicAnomalies:
			var a schemas.Anomaly
			if err = json.Unmarshal(m.Value, &a); err == nil && a.ID == "" {
				err = errNoID
			}
			if err == nil {
				anomalies = append(anomalies, a)
			}
		}
		if err != nil {
			w.skipped.Inc()
			w.logger.Warn("skipping undecodable message", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
		}
	}
	if err := w.st.InsertEvents(ctx, events); err != nil {
		return fmt.Errorf("cannot write %d events: %w", len(events), err)
	}
	if err := w.st.UpsertAnomalies(ctx, anomalies); err != nil {
		return fmt.Errorf("cannot write %d anomalies: %w", len(anomalies), err)
	}
	w.written.WithLabelValues("event").Add(float64(len(events)))
	w.written.WithLabelValues("anomaly").Add(float64(len(anomalies)))
	return nil
}
