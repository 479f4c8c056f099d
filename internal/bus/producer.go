package bus

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Producer writes messages synchronously: Produce returns once the broker has acknowledged every
// message (all in-sync replicas), so a stage may then commit what it consumed.
type Producer struct {
	w         *kafka.Writer
	transport *kafka.Transport
}

// NewProducer returns a producer for one topic. Messages are partitioned by key with the same
// hash as the Java client, so one agent's messages stay on one partition.
func NewProducer(brokers []string, topic string, cfg Config) *Producer {
	transport := &kafka.Transport{}
	return &Producer{transport: transport, w: &kafka.Writer{
		Transport:              transport,
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		BatchSize:              cfg.BatchSize,
		BatchTimeout:           cfg.BatchTimeout,
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: false,
	}}
}

// Produce writes msgs and waits for their acknowledgement.
func (p *Producer) Produce(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("cannot produce %d messages to %s: %w", len(msgs), p.w.Topic, err)
	}
	return nil
}

// Topic is the topic the producer writes to.
func (p *Producer) Topic() string { return p.w.Topic }

// Close flushes and closes the producer.
func (p *Producer) Close() error {
	err := p.w.Close()
	// Our own transport, so closing its pool leaves no connection goroutines behind.
	p.transport.CloseIdleConnections()
	return err
}
