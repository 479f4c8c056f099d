package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// ReplayOptions select what ReplayDLQ re-sends.
type ReplayOptions struct {
	// Sink limits the replay to one sink's dead letters; "" replays every configured sink's.
	Sink string
	// DryRun lists what would be re-sent, and sends, records and commits nothing.
	DryRun bool
}

// Replay outcomes.
const (
	ReplayReplayed    = "replayed"     // re-sent and accepted
	ReplayWouldReplay = "would_replay" // dry run
	ReplayFailed      = "failed"       // not accepted; it stays on the queue for the next replay
	ReplayInvalid     = "invalid"      // not Anomaly v1 any more: passed over
)

// ReplayResult is what happened to one dead letter.
type ReplayResult struct {
	Sink       string `json:"sink"`
	Partition  int    `json:"partition"`
	Offset     int64  `json:"offset"`
	DeliveryID string `json:"delivery_id"`
	AnomalyID  string `json:"anomaly_id,omitempty"`
	AgentID    string `json:"agent_id,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Status     string `json:"status"`
	Attempts   int    `json:"attempts,omitempty"`
	Error      string `json:"error,omitempty"`
}

// ReplayGroup is the consumer group that keeps a sink's position on mcp.alerts.dlq: each sink
// has its own, so replaying one sink neither skips nor repeats another's dead letters.
func ReplayGroup(sink string) string { return "mcpwatch-alerts-replay-" + sink }

// ReplayDLQ re-sends dead letters from mcp.alerts.dlq to the sinks they were meant for, with
// their original delivery ids, from each sink's last replay position up to the end of the
// queue as it is when the replay starts. Each one accepted is recorded in st as replayed, and
// only then is the sink's position committed past it. A dead letter the sink still does not
// accept within the retry budget (an unavailable sink counts against it here) stops that
// partition's replay for that sink, so the next replay starts again from it. Noise control
// does not apply: every dead letter is re-sent.
func ReplayDLQ(ctx context.Context, cfg Config, st DeliveryStore, brokers []string, opts ReplayOptions, set pipeline.Settings) ([]ReplayResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil && !opts.DryRun {
		return nil, errors.New("replay needs a store to record deliveries")
	}
	set = set.WithComponent("alerting-replay")
	sinks, err := buildSinks(cfg, set)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range sinks {
			_ = s.sink.Close()
		}
	}()
	if opts.Sink != "" {
		sinks = slices.DeleteFunc(sinks, func(s *routedSink) bool { return s.sink.Name() != opts.Sink })
		if len(sinks) == 0 {
			return nil, fmt.Errorf("sink %q is not configured", opts.Sink)
		}
	}
	rcfg := cfg
	rcfg.Retry.DeadLetterWhenUnavailable = true // a replay ends; it does not wait for an outage
	a := &Alerting{cfg: rcfg, st: st, logger: set.Logger, now: time.Now, m: newMetrics(set.Registry)}

	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport}
	parts, err := dlqPartitions(ctx, client)
	if err != nil {
		return nil, err
	}
	var results []ReplayResult
	for _, s := range sinks {
		for _, p := range parts {
			rs, err := a.replayPartition(ctx, client, brokers, s, p, opts.DryRun)
			results = append(results, rs...)
			if err != nil {
				return results, err
			}
		}
	}
	return results, nil
}

func dlqPartitions(ctx context.Context, client *kafka.Client) ([]int, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{bus.TopicAlertsDLQ}})
	if err != nil {
		return nil, fmt.Errorf("cannot read %s metadata: %w", bus.TopicAlertsDLQ, err)
	}
	var parts []int
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("cannot read %s metadata: %w", bus.TopicAlertsDLQ, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	slices.Sort(parts)
	return parts, nil
}

// replayPartition replays one partition for one sink, from the sink's committed position to
// the partition's end as it is now.
func (a *Alerting) replayPartition(ctx context.Context, client *kafka.Client, brokers []string, s *routedSink, part int, dryRun bool) ([]ReplayResult, error) {
	name := s.sink.Name()
	group := ReplayGroup(name)
	topic := bus.TopicAlertsDLQ
	fetched, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {part}}})
	if err != nil {
		return nil, fmt.Errorf("cannot read the replay position of %s: %w", name, err)
	}
	start := int64(-1)
	for _, p := range fetched.Topics[topic] {
		if p.Partition == part {
			start = p.CommittedOffset
		}
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.FirstOffsetOf(part), kafka.LastOffsetOf(part)}}})
	if err != nil {
		return nil, fmt.Errorf("cannot read %s offsets: %w", topic, err)
	}
	var first, end int64
	for _, o := range lo.Topics[topic] {
		if o.Error != nil {
			return nil, fmt.Errorf("cannot read %s offsets: %w", topic, o.Error)
		}
		first, end = o.FirstOffset, o.LastOffset
	}
	start = max(start, first) // nothing committed yet, or retention dropped some
	if start >= end {
		return nil, nil
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return nil, fmt.Errorf("cannot seek %s/%d: %w", topic, part, err)
	}
	var results []ReplayResult
	commit := func(next int64) error {
		if dryRun {
			return nil
		}
		_, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
			GroupID: group, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: part, Offset: next}}},
		})
		if err != nil {
			return fmt.Errorf("cannot commit the replay position of %s: %w", name, err)
		}
		return nil
	}
	for next := start; next < end; {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return results, fmt.Errorf("cannot read %s/%d at %d: %w", topic, part, next, err)
		}
		next = m.Offset + 1
		if dlqHeader(m, DLQHeaderSink) != name {
			if next == end {
				return results, commit(next)
			}
			continue
		}
		res := ReplayResult{Sink: name, Partition: part, Offset: m.Offset, DeliveryID: dlqHeader(m, DLQHeaderDeliveryID)}
		an, err := decode(m.Value)
		if err != nil {
			res.Status, res.Error = ReplayInvalid, errorText(err)
			results = append(results, res)
			if err := commit(next); err != nil {
				return results, err
			}
			continue
		}
		al := Alert{Anomaly: an, JSON: m.Value, DeliveryID: DeliveryID(an, name)}
		res.DeliveryID, res.AnomalyID, res.AgentID, res.Kind = al.DeliveryID, an.ID, an.AgentID, an.Kind
		if dryRun {
			res.Status = ReplayWouldReplay
			results = append(results, res)
			continue
		}
		o, err := a.deliver(ctx, s, al)
		if err != nil {
			return results, err
		}
		res.Attempts = o.attempts
		if o.status != StatusDelivered {
			// Stop here: the position stays before this one, so the next replay tries it again.
			res.Status, res.Error = ReplayFailed, errorText(o.err)
			return append(results, res), nil
		}
		o.status = StatusReplayed
		if err := a.st.RecordDeliveries(ctx, []store.Delivery{deliveryRecord(al, name, o)}); err != nil {
			return results, fmt.Errorf("cannot record the replayed delivery: %w", err)
		}
		res.Status = ReplayReplayed
		results = append(results, res)
		if err := commit(next); err != nil {
			return results, err
		}
	}
	return results, nil
}

func dlqHeader(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
