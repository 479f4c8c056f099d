package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

var discard = slog.New(slog.DiscardHandler)

func writerBus(t *testing.T) ([]string, bus.Config) {
	t.Helper()
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Partitions = 1
	b, err := bus.StartEmbedded(0, t.TempDir(), discard)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(context.Background(), b.Brokers(), cfg))
	return b.Brokers(), cfg
}

func migrated(t *testing.T) *store.SQLite {
	t.Helper()
	s := openSQLite(t)
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

func produceTo(t *testing.T, brokers []string, cfg bus.Config, topic string, values ...any) {
	t.Helper()
	var msgs []kafka.Message
	for _, v := range values {
		b, ok := v.([]byte)
		if !ok {
			var err error
			b, err = json.Marshal(v)
			require.NoError(t, err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte("agent"), Value: b})
	}
	p := bus.NewProducer(brokers, topic, cfg)
	defer p.Close()
	require.NoError(t, p.Produce(context.Background(), msgs...))
}

func startWriter(t *testing.T, st store.Store, brokers []string, busCfg bus.Config, reg prometheus.Registerer) *store.Writer {
	t.Helper()
	cfg := store.WriterConfig{FlushInterval: 10 * time.Millisecond}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	w := store.NewWriter(cfg, st, brokers, busCfg, pipeline.Settings{Logger: discard, Registry: reg})
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, w.Shutdown(context.Background())) })
	return w
}

// writerLag is the writer group's uncommitted messages over both topics, or -1 when the broker
// could not say.
func writerLag(t *testing.T, brokers []string) float64 {
	l := bus.NewLagCollector(brokers, map[string][]string{store.WriterGroup: {bus.TopicEventsEnriched, bus.TopicAnomalies}}, discard)
	defer l.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 2 {
		return -1
	}
	return gathered(t, reg, "mcpwatch_bus_consumer_lag_messages")
}

// gathered returns the value of a counter or gauge (summed over its series with the given label
// values, or over all series when none are given).
func gathered(t *testing.T, g prometheus.Gatherer, name string, labelValues ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i, lv := range labelValues {
				if i >= len(m.GetLabel()) || m.GetLabel()[i].GetValue() != lv {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func writerAnomaly(n, count int) schemas.Anomaly {
	ts := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC).Add(time.Duration(count) * time.Minute)
	return schemas.Anomaly{
		ID: fmt.Sprintf("7d2f1c7e-0b1a-8c3e-9f00-%012d", n), SchemaVersion: 1, Time: ts,
		AgentID: "bench-agent", Kind: "new_tool", Subject: fmt.Sprintf("tool-%d", n),
		Score: 50, Severity: schemas.SeverityMedium, Title: "t",
		Explanation: schemas.Explanation{Summary: "s", Observed: "o", Typical: "t", Model: "first_seen_tool"},
		FirstSeen:   ts.Add(-time.Duration(count) * time.Minute), LastSeen: ts, Count: count,
	}
}

func TestWriterStoresEventsAndAnomalies(t *testing.T) {
	ctx := context.Background()
	brokers, busCfg := writerBus(t)
	st := migrated(t)
	reg := prometheus.NewRegistry()
	startWriter(t, st, brokers, busCfg, reg)

	evs := benchEvents(5, 0) // one session, bench-0
	produceTo(t, brokers, busCfg, bus.TopicEventsEnriched,
		evs[0], evs[1], []byte("{broken"), evs[2], evs[1], evs[3], []byte("null"), evs[4], evs[0])
	produceTo(t, brokers, busCfg, bus.TopicAnomalies,
		writerAnomaly(1, 1), []byte(`"not an anomaly"`), writerAnomaly(1, 3), writerAnomaly(2, 1), writerAnomaly(1, 2))

	require.Eventually(t, func() bool { return writerLag(t, brokers) == 0 }, 10*time.Second, 20*time.Millisecond)
	got, err := st.SessionEvents(ctx, evs[0].SessionID, 0)
	require.NoError(t, err)
	require.Len(t, got, 5, "duplicates are stored once")
	for i := range got {
		require.Equal(t, evs[i].ID, got[i].ID)
		require.Equal(t, evs[i].Target, got[i].Target)
		require.Equal(t, evs[i].LatencyMicros, got[i].LatencyMicros)
	}
	as, err := st.Anomalies(ctx, store.AnomalyQuery{AgentID: "bench-agent"})
	require.NoError(t, err)
	require.Len(t, as, 2)
	byID := map[string]schemas.Anomaly{as[0].ID: as[0], as[1].ID: as[1]}
	require.Equal(t, 3, byID[writerAnomaly(1, 1).ID].Count, "the most advanced version is kept")
	require.Equal(t, 1, byID[writerAnomaly(2, 1).ID].Count)

	require.Equal(t, 3.0, gathered(t, reg, "mcpwatch_store_undecodable_total"), "broken JSON, null and a string are skipped")
	require.Equal(t, 7.0, gathered(t, reg, "mcpwatch_store_written_total", "event"), "duplicates are written (and ignored by the store)")
	require.Equal(t, 4.0, gathered(t, reg, "mcpwatch_store_written_total", "anomaly"))
}

// failingStore is the real store, except that its first failEvents event writes and first
// failAnomalies anomaly writes fail.
type failingStore struct {
	store.Store
	failEvents, failAnomalies int32
	eventCalls, anomalyCalls  atomic.Int32
}

var errStoreDown = errors.New("store down")

func (f *failingStore) InsertEvents(ctx context.Context, events []schemas.Event) error {
	if len(events) > 0 && f.eventCalls.Add(1) <= f.failEvents {
		return errStoreDown
	}
	return f.Store.InsertEvents(ctx, events)
}

func (f *failingStore) UpsertAnomalies(ctx context.Context, as []schemas.Anomaly) error {
	if len(as) > 0 && f.anomalyCalls.Add(1) <= f.failAnomalies {
		return errStoreDown
	}
	return f.Store.UpsertAnomalies(ctx, as)
}

func TestWriterRetriesStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		failEvents, failAnomalies int32
	}{
		{"events fail", 3, 0},
		{"anomalies fail after events were written", 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			brokers, busCfg := writerBus(t)
			st := &failingStore{Store: migrated(t), failEvents: tc.failEvents, failAnomalies: tc.failAnomalies}
			reg := prometheus.NewRegistry()
			// Both kinds in one batch (they are produced before the writer starts): when the
			// anomalies fail after the events were written, the retry writes the events again.
			evs := benchEvents(20, 100)
			var vals []any
			for _, e := range evs {
				vals = append(vals, e)
			}
			produceTo(t, brokers, busCfg, bus.TopicEventsEnriched, vals...)
			produceTo(t, brokers, busCfg, bus.TopicAnomalies, writerAnomaly(1, 1))
			startWriter(t, st, brokers, busCfg, reg)

			require.Eventually(t, func() bool { return writerLag(t, brokers) == 0 }, 20*time.Second, 20*time.Millisecond)
			require.GreaterOrEqual(t, gathered(t, reg, "mcpwatch_bus_handler_failures_total", store.WriterGroup), 3.0, "failed batches were retried")
			stored := 0
			for s := 100; s < 120; s += 10 {
				got, err := st.SessionEvents(ctx, fmt.Sprintf("bench-%d", s/10), 0)
				require.NoError(t, err)
				stored += len(got)
			}
			require.Equal(t, 20, stored, "nothing lost, nothing doubled")
			as, err := st.Anomalies(ctx, store.AnomalyQuery{AgentID: "bench-agent"})
			require.NoError(t, err)
			require.Len(t, as, 1)
			require.GreaterOrEqual(t, st.eventCalls.Load()+st.anomalyCalls.Load(), int32(3+2), "the failures happened")
		})
	}
}

// TestWriterStoreClosedUnderIt: a store that fails until it is replaced (here: closed, as at a
// crash) leaves the stream uncommitted; a new writer on a healthy store picks it all up.
func TestWriterStoreClosedUnderIt(t *testing.T) {
	ctx := context.Background()
	brokers, busCfg := writerBus(t)
	broken := migrated(t)
	require.NoError(t, broken.Close())
	reg := prometheus.NewRegistry()
	cfg := store.WriterConfig{FlushInterval: 10 * time.Millisecond}
	cfg.SetDefaults()
	w := store.NewWriter(cfg, broken, brokers, busCfg, pipeline.Settings{Logger: discard, Registry: reg})
	require.NoError(t, w.Start(ctx))
	evs := benchEvents(3, 0)
	produceTo(t, brokers, busCfg, bus.TopicEventsEnriched, evs[0], evs[1], evs[2])
	require.Eventually(t, func() bool {
		return gathered(t, reg, "mcpwatch_bus_handler_failures_total", store.WriterGroup) >= 2
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, w.Shutdown(ctx))
	require.Equal(t, 3.0, writerLag(t, brokers), "nothing committed while the store failed")

	healthy := migrated(t)
	startWriter(t, healthy, brokers, busCfg, nil)
	require.Eventually(t, func() bool {
		got, err := healthy.SessionEvents(ctx, "bench-0", 0)
		return err == nil && len(got) == 3
	}, 10*time.Second, 20*time.Millisecond)
}

func TestWriterConfigValidate(t *testing.T) {
	var d store.WriterConfig
	d.SetDefaults()
	require.NoError(t, d.Validate())
	require.Equal(t, store.WriterConfig{BatchSize: 5000, FlushInterval: 200 * time.Millisecond, RetentionInterval: time.Hour}, d)
	for field, c := range map[string]store.WriterConfig{
		"writer.batch_size":         {BatchSize: -1, FlushInterval: time.Second, RetentionInterval: time.Hour},
		"writer.flush_interval":     {BatchSize: 1, FlushInterval: -time.Second, RetentionInterval: time.Hour},
		"writer.retention_interval": {BatchSize: 1, FlushInterval: time.Second, RetentionInterval: -time.Hour},
	} {
		require.ErrorContains(t, c.Validate(), field+": must")
	}
}

func TestWriterLifecycle(t *testing.T) {
	ctx := context.Background()
	brokers, busCfg := writerBus(t)
	st := migrated(t)
	var cfg store.WriterConfig
	cfg.SetDefaults()

	w := store.NewWriter(cfg, st, brokers, busCfg, pipeline.Settings{})
	require.NoError(t, w.Start(ctx))
	produceTo(t, brokers, busCfg, bus.TopicEventsEnriched, benchEvents(1, 0)[0])
	require.Eventually(t, func() bool {
		got, err := st.SessionEvents(ctx, "bench-0", 0)
		return err == nil && len(got) == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, w.Shutdown(ctx))
	require.NoError(t, w.Shutdown(ctx), "a second Shutdown is a no-op")

	never := store.NewWriter(cfg, st, brokers, busCfg, pipeline.Settings{})
	require.NoError(t, never.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, never.Shutdown(ctx))
}

// TestWriterEnforcesRetention: data older than the store's retention is removed at start and
// then every RetentionInterval, recent data stays.
func TestWriterEnforcesRetention(t *testing.T) {
	ctx := context.Background()
	brokers, busCfg := writerBus(t)
	st := migrated(t) // 30 days of retention
	old := benchEvents(1, 0)[0]
	old.ObservedAt = time.Now().Add(-40 * 24 * time.Hour)
	require.NoError(t, st.InsertEvents(ctx, []schemas.Event{old}))

	cfg := store.WriterConfig{FlushInterval: 10 * time.Millisecond, RetentionInterval: 20 * time.Millisecond}
	cfg.SetDefaults()
	w := store.NewWriter(cfg, st, brokers, busCfg, pipeline.Settings{Logger: discard})
	require.NoError(t, w.Start(ctx))
	defer func() { require.NoError(t, w.Shutdown(ctx)) }()
	sessionEvents := func(id string) int {
		got, err := st.SessionEvents(ctx, id, 0)
		require.NoError(t, err)
		return len(got)
	}
	require.Eventually(t, func() bool { return sessionEvents("bench-0") == 0 }, 10*time.Second, 10*time.Millisecond, "expired at start")

	// Later, while running: an old event arrives beside a recent one.
	later := benchEvents(2, 10) // session bench-1
	later[0].ObservedAt = time.Now().Add(-31 * 24 * time.Hour)
	require.NoError(t, st.InsertEvents(ctx, later))
	require.Eventually(t, func() bool { return sessionEvents("bench-1") == 1 }, 10*time.Second, 10*time.Millisecond, "expired on the next tick")
}
