package detector

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// BenchmarkObserve measures the detector's per-event hot path (Observe, without the bus) with
// 100,000 agents tracked, each making about one request a minute in sessions of 20 calls over
// three tools: the rate model counts it, the sequence model steps it, first_seen_tool looks it
// up, and once a minute of event time the sweep finishes every agent's bucket (amortised here
// over the 100,000 events of that minute). Besides ns/op (all of it) it reports the two parts:
// sweep-ns/op, the minute sweep's share (the calls that cross a minute, timed on their own:
// one agent's bucket per event at this rate of one request an agent a minute), and
// event-ns/op, the rest. It reports the heap taken per agent, in a session (heapB/agent) and
// between sessions (idle-heapB/agent). Building the agents takes a while: run it once with a
// fixed count,
//
//	go test -run '^$' -bench BenchmarkObserve -benchtime 300000x ./detector/
func BenchmarkObserve(b *testing.B) {
	const agents = 100_000
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}
	cfg.SetDefaults()
	d, err := New(cfg, nil, []string{"127.0.0.1:1"}, testBusConfig(), pipeline.Settings{Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	tools := []string{"read_file", "list_dir", "search"}
	sessions := []string{"s0", "s1"}
	evs := make([]schemas.Event, agents)
	for i := range evs {
		evs[i] = schemas.Event{
			ID: evID(i + 1), AgentID: fmt.Sprintf("agent-%06d", i), ServerID: "fs", SessionID: sessions[0],
			Direction: schemas.ClientToServer, Kind: schemas.KindRequest, Method: "tools/call",
			RequestBytes: 300, ResponseBytes: 4000,
		}
	}
	start := week0
	wallClock := start.Add(365 * 24 * time.Hour)
	step := time.Minute / agents // every agent once a minute
	var n int64
	var sweeps time.Duration // time in the calls that cross a minute (and so sweep)
	observe := func() {
		i := int(n % agents)
		round := n / agents
		ev := &evs[i]
		ev.ObservedAt = start.Add(time.Duration(n) * step)
		ev.Target = tools[(round+int64(i))%3]
		ev.SessionID = sessions[round/20%2]
		if i == 0 { // the first event of a minute
			t0 := time.Now()
			d.Observe(ev, wallClock)
			sweeps += time.Since(t0)
		} else {
			d.Observe(ev, wallClock)
		}
		n++
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Half an hour of history for every agent (the rate model scores after ten buckets).
	for range 30 * agents {
		observe()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportAllocs()
	sweeps = 0
	b.ResetTimer()
	for range b.N {
		observe()
	}
	b.StopTimer()
	sweep := float64(sweeps.Nanoseconds()) / float64(b.N)
	b.ReportMetric(sweep, "sweep-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)-sweep, "event-ns/op")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/agents, "heapB/agent")
	// The same agents between sessions: their baselines alone (the ended sessions go to the
	// pool, which keeps at most maxPooledSessions).
	d.mu.Lock()
	for _, st := range d.agentList {
		d.endSessions(nil, st, d.clock, wallClock)
	}
	d.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/agents, "idle-heapB/agent")
	runtime.KeepAlive(d)
}

// TestObserveDoesNotAllocate holds the hot path to under one allocation per event on average
// (testing.AllocsPerRun truncates), session changes and bucket sweeps included, once agents
// are known: the per-event path allocates nothing; the hourly population prior rebuild does.
func TestObserveDoesNotAllocate(t *testing.T) {
	const agents = 100
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}
	cfg.SetDefaults()
	d, err := New(cfg, nil, []string{"127.0.0.1:1"}, testBusConfig(), pipeline.Settings{Logger: discard})
	require.NoError(t, err)
	tools := []string{"read_file", "list_dir", "search"}
	sessions := []string{"s0", "s1"}
	evs := make([]schemas.Event, agents)
	for i := range evs {
		evs[i] = schemas.Event{
			ID: evID(i + 1), AgentID: fmt.Sprintf("agent-%03d", i), ServerID: "fs",
			Direction: schemas.ClientToServer, Kind: schemas.KindRequest, Method: "tools/call",
			RequestBytes: 300, ResponseBytes: 4000,
		}
	}
	wall := week0.Add(365 * 24 * time.Hour)
	var n int64
	var raised int
	observe := func() {
		i := int(n % agents)
		round := n / agents
		ev := &evs[i]
		ev.ObservedAt = week0.Add(time.Duration(n) * time.Minute / agents)
		ev.Target = tools[round%3]
		ev.SessionID = sessions[round/20%2]
		raised += len(d.Observe(ev, wall))
		n++
	}
	for range 200 * agents {
		observe()
	}
	raised = 0
	allocs := testing.AllocsPerRun(100*agents, observe)
	require.Zero(t, raised, "a steady stream raises nothing")
	require.Zero(t, allocs)
}
