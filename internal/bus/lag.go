package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// LagCollector reports consumer-group lag (end offset minus committed offset, summed over
// partitions) for each group and topic, asking the broker at scrape time. A group that has
// committed nothing yet lags by the whole topic.
type LagCollector struct {
	client *kafka.Client
	groups map[string][]string // group → topics
	logger *slog.Logger
	desc   *prometheus.Desc
}

// NewLagCollector watches groups (group name → topics it reads) on brokers.
func NewLagCollector(brokers []string, groups map[string][]string, logger *slog.Logger) *LagCollector {
	return &LagCollector{
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 2 * time.Second, Transport: &kafka.Transport{}},
		groups: groups,
		logger: logger,
		desc: prometheus.NewDesc("mcpwatch_bus_consumer_lag_messages",
			"Messages not yet committed by a consumer group, per topic.", []string{"group", "topic"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (l *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for group, topics := range l.groups {
		lags, err := l.lag(ctx, group, topics)
		if err != nil {
			l.logger.Debug("cannot measure consumer lag", "group", group, "err", err)
			continue
		}
		for topic, lag := range lags {
			ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(lag), group, topic)
		}
	}
}

func (l *LagCollector) lag(ctx context.Context, group string, topics []string) (map[string]int64, error) {
	meta, err := l.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	parts := map[string][]int{}
	ends := map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	committed, err := l.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, err
	}
	last, err := l.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for topic, offsets := range last.Topics {
		done := map[int]int64{}
		for _, c := range committed.Topics[topic] {
			done[c.Partition] = max(c.CommittedOffset, 0) // -1: nothing committed yet
		}
		var lag int64
		for _, o := range offsets {
			if o.Error == nil {
				lag += max(o.LastOffset-done[o.Partition], 0)
			}
		}
		out[topic] = lag
	}
	return out, nil
}

// Close releases the collector's connections.
func (l *LagCollector) Close() {
	l.client.Transport.(*kafka.Transport).CloseIdleConnections()
}
