package bus

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func event(i int) schemas.Event {
	return schemas.Event{ID: fmt.Sprintf("ev-%04d", i), AgentID: fmt.Sprintf("agent-%d", i%5), Method: "tools/call"}
}

// consumeAll reads TopicEvents as a new group until it has seen want distinct values.
func consumeAll(t *testing.T, brokers []string, cfg Config, want int) map[string]int {
	t.Helper()
	got := &collector{seen: map[string]int{}}
	c := NewConsumer(brokers, cfg, ConsumerConfig{Group: "check-" + t.Name(), Topics: []string{TopicEvents}}, got.handle, pipeline.Settings{})
	require.NoError(t, c.Start(context.Background()))
	require.Eventually(t, func() bool { return got.count() >= want }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Shutdown(context.Background()))
	return got.seen
}

func TestSpooledEmitterSurvivesBrokerOutage(t *testing.T) {
	cfg := testConfig()
	ctx := context.Background()
	kafkaDir, spoolDir := t.TempDir(), t.TempDir()
	port := freePort(t)
	reg := prometheus.NewRegistry()
	set := pipeline.Settings{Registry: reg}.WithComponent("test")

	b, err := StartEmbedded(port, kafkaDir, set.Logger)
	require.NoError(t, err)
	require.NoError(t, EnsureTopics(ctx, b.Brokers(), cfg))
	em, err := NewSpooledEventEmitter(b.Brokers(), cfg, SpoolConfig{Dir: spoolDir}, set)
	require.NoError(t, err)
	require.NoError(t, em.Start(ctx))
	for i := range 100 {
		if i%2 == 0 {
			require.NoError(t, em.TryEmit(event(i)))
		} else {
			em.EmitNow(event(i)) // what the HTTP tap uses when its own queue is full
		}
	}
	require.Eventually(t, func() bool { return metricValue(t, reg, "mcpwatch_collector_events_produced_total") == 100 },
		20*time.Second, 10*time.Millisecond)

	// The broker goes away: events wait in the spool.
	b.Close()
	for i := 100; i < 300; i++ {
		require.NoError(t, em.TryEmit(event(i)))
	}
	time.Sleep(500 * time.Millisecond) // the producer tries and fails meanwhile
	require.Equal(t, 200, em.Queued())
	require.Equal(t, 200.0, metricValue(t, reg, "mcpwatch_spool_pending_records"))
	require.Equal(t, 100.0, metricValue(t, reg, "mcpwatch_collector_events_produced_total"))

	// It comes back on the same port: everything is produced, nothing dropped.
	b2, err := StartEmbedded(port, kafkaDir, set.Logger)
	require.NoError(t, err)
	defer b2.Close()
	require.Eventually(t, func() bool { return metricValue(t, reg, "mcpwatch_collector_events_produced_total") >= 300 },
		60*time.Second, 20*time.Millisecond)
	require.NoError(t, em.Shutdown(ctx))
	require.NoError(t, em.Shutdown(ctx), "second Shutdown is a no-op")
	require.Zero(t, metricValue(t, reg, "mcpwatch_collector_events_dropped_total"))
	require.Equal(t, 300.0, metricValue(t, reg, "mcpwatch_collector_events_emitted_total"))

	seen := consumeAll(t, b2.Brokers(), cfg, 300)
	require.Len(t, seen, 300)
}

func TestSpooledEmitterKeepsEventsForTheNextRun(t *testing.T) {
	cfg := testConfig()
	ctx := context.Background()
	spoolDir := t.TempDir()
	set := pipeline.Settings{}.WithComponent("test")

	// No broker at all: Shutdown gives up quickly and leaves the events on disk.
	em, err := NewSpooledEventEmitter([]string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, cfg, SpoolConfig{Dir: spoolDir}, set)
	require.NoError(t, err)
	require.NoError(t, em.Start(ctx))
	for i := range 50 {
		em.Emit(event(i))
	}
	shutdownCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	require.NoError(t, em.Shutdown(shutdownCtx))
	require.ErrorIs(t, em.TryEmit(event(99)), ErrEmitterClosed)

	b := startBroker(t, t.TempDir())
	defer b.Close()
	require.NoError(t, EnsureTopics(ctx, b.Brokers(), cfg))
	em2, err := NewSpooledEventEmitter(b.Brokers(), cfg, SpoolConfig{Dir: spoolDir}, set)
	require.NoError(t, err)
	require.Equal(t, 50, em2.Queued(), "the earlier run's events are pending")
	require.NoError(t, em2.Start(ctx))
	require.NoError(t, em2.Shutdown(ctx))
	require.Zero(t, em2.Queued())
	seen := consumeAll(t, b.Brokers(), cfg, 50)
	require.Len(t, seen, 50)
}

func TestSpooledEmitterCountsDropsWhenTheSpoolIsFull(t *testing.T) {
	cfg := testConfig()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	set := pipeline.Settings{Registry: reg}.WithComponent("test")
	em, err := NewSpooledEventEmitter([]string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, cfg,
		SpoolConfig{Dir: t.TempDir(), MaxBytes: 4096, EmitWait: time.Second}, set)
	require.NoError(t, err)
	require.NoError(t, em.Start(ctx))
	var full int
	for i := range 100 {
		if err := em.TryEmit(event(i)); err != nil {
			require.ErrorIs(t, err, ErrEmitterFull)
			full++
		}
	}
	require.Positive(t, full)
	require.Equal(t, float64(full), metricValue(t, reg, "mcpwatch_collector_events_dropped_total"))
	require.Equal(t, float64(100-full), metricValue(t, reg, "mcpwatch_collector_events_emitted_total"))
	shutdownCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	require.NoError(t, em.Shutdown(shutdownCtx))
}

func TestSpooledEmitterLifecycle(t *testing.T) {
	dir := t.TempDir()
	set := pipeline.Settings{}.WithComponent("test")
	ctx := context.Background()
	em, err := NewSpooledEventEmitter([]string{"127.0.0.1:1"}, testConfig(), SpoolConfig{Dir: dir}, set)
	require.NoError(t, err)
	_, err = NewSpooledEventEmitter([]string{"127.0.0.1:1"}, testConfig(), SpoolConfig{Dir: dir}, set)
	require.ErrorContains(t, err, "in use", "one emitter per spool directory")
	require.NoError(t, em.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, em.Shutdown(ctx))

	em, err = NewSpooledEventEmitter([]string{"127.0.0.1:1"}, testConfig(), SpoolConfig{Dir: dir}, set)
	require.NoError(t, err, "the directory is free again after Shutdown")
	require.NoError(t, em.Start(ctx))
	require.NoError(t, em.Start(ctx))
	require.NoError(t, em.Shutdown(ctx))

	mem, err := NewSpooledEventEmitter(nil, testConfig(), SpoolConfig{Disabled: true}, set)
	require.NoError(t, err)
	require.Nil(t, mem.spool, "disabled: a memory emitter")
	require.NoError(t, mem.Shutdown(ctx))
}

func TestSpoolConfig(t *testing.T) {
	var c SpoolConfig
	c.SetDefaults("/data")
	require.Equal(t, filepath.Join("/data", "spool", "events"), c.Dir)
	require.Equal(t, DefaultEmitWait, c.EmitWait)
	require.NoError(t, c.Validate())

	bad := SpoolConfig{MaxBytes: -1, Fsync: "sometimes", EmitWait: time.Hour}
	err := bad.Validate()
	for _, field := range []string{"collector.spool.dir", "collector.spool.max_bytes", "collector.spool.fsync", "collector.spool.emit_wait"} {
		require.ErrorContains(t, err, field)
	}
	require.NoError(t, SpoolConfig{Disabled: true}.Validate())
}

func TestEventRecordRoundTrip(t *testing.T) {
	for _, ev := range []schemas.Event{event(1), {ID: "x"}, {ID: "y", AgentID: "ünïcode agent"}} {
		m, ok := decodeEvent(encodeEvent(ev))
		require.True(t, ok)
		require.Equal(t, ev.AgentID, string(m.Key))
		require.Contains(t, string(m.Value), `"event_id":"`+ev.ID+`"`)
	}
	_, ok := decodeEvent([]byte{0x80})
	require.False(t, ok)
	_, ok = decodeEvent([]byte{5, 'a'})
	require.False(t, ok)
}
