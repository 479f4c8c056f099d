package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topics mcpwatch produces and consumes. Messages on all of them are keyed by agent id.
const (
	TopicEvents         = "mcp.events"          // Event v1 from collectors
	TopicEventsEnriched = "mcp.events.enriched" // Event v1 after the enricher
	TopicAnomalies      = "mcp.anomalies"       // Anomaly v1 from the detector
	TopicAlertsDLQ      = "mcp.alerts.dlq"      // alerts no sink accepted within the retry budget
)

// AllTopics lists every topic EnsureTopics creates.
var AllTopics = []string{TopicEvents, TopicEventsEnriched, TopicAnomalies, TopicAlertsDLQ}

// EnsureTopics creates mcpwatch's topics where missing; existing topics are left as they are.
// Auto-creation is never relied on.
func EnsureTopics(ctx context.Context, brokers []string, cfg Config) error {
	req := &kafka.CreateTopicsRequest{}
	for _, t := range AllTopics {
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             t,
			NumPartitions:     cfg.Partitions,
			ReplicationFactor: cfg.ReplicationFactor,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(cfg.Retention.Milliseconds(), 10)},
			},
		})
	}
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport}
	var resp *kafka.CreateTopicsResponse
	var err error
	// A broker that has just (re)started can refuse the first request; one retry is enough.
	for attempt := 0; attempt < 2; attempt++ {
		if resp, err = client.CreateTopics(ctx, req); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("cannot create topics on %v: %w", brokers, err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("cannot create topic %s: %w", topic, terr)
		}
	}
	return nil
}
