package detector

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TestEvictedAgentComesBack: an agent idle for evict_after leaves memory, its baselines saved
// first, and is restored from the store when it comes back, before its events are observed.
// Its baselines then are those of a detector that kept it all along, and what it raises on its
// return is the same.
func TestEvictedAgentComesBack(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, 0)
	var s stream
	normalAgent(&s, "a", week0, week0.Add(24*time.Hour), 1, 1)
	normalAgent(&s, "b", week0, week0.Add(29*time.Hour), 1, 2) // the clock moves on while a is away
	back := week0.Add(27 * time.Hour)
	normalAgent(&s, "a", back, week0.Add(29*time.Hour), 1, 3)
	s.req(week0.Add(29*time.Hour), "a", "a-last", "tools/call", "delete_all")
	slices.SortStableFunc(s.evs, func(x, y schemas.Event) int { return x.ObservedAt.Compare(y.ObservedAt) })
	cut := slices.IndexFunc(s.evs, func(ev schemas.Event) bool { return ev.AgentID == "a" && !ev.ObservedAt.Before(back) })

	reg := prometheus.NewRegistry()
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}
	cfg.EvictAfter = 2 * time.Hour
	st1 := openStore(t, filepath.Join(t.TempDir(), "evicting.db"))
	st2 := openStore(t, filepath.Join(t.TempDir(), "keeping.db"))
	evicting := newDetector(t, cfg, st1, brokers, reg)
	cfg.EvictAfter = -1
	keeping := newDetector(t, cfg, st2, brokers, nil)
	defer func() {
		require.NoError(t, evicting.Shutdown(ctx))
		require.NoError(t, keeping.Shutdown(ctx))
		require.NoError(t, st1.Close())
		require.NoError(t, st2.Close())
	}()
	// Batches go through the handler (eviction follows its snapshots) …
	handle := func(d *Detector, evs []schemas.Event) {
		for len(evs) > 0 {
			batch := evs[:min(len(evs), 100)]
			evs = evs[len(batch):]
			require.NoError(t, d.handle(ctx, eventMessages(t, batch...)))
		}
	}
	// … or, to see what they raise, through its observation step.
	observe := func(d *Detector, evs []schemas.Event) []schemas.Anomaly {
		var raised []schemas.Anomaly
		d.mu.Lock()
		defer d.mu.Unlock()
		for len(evs) > 0 {
			batch := evs[:min(len(evs), 100)]
			evs = evs[len(batch):]
			as, err := d.observeMessages(ctx, eventMessages(t, batch...), time.Now())
			require.NoError(t, err)
			raised = append(raised, as...)
		}
		return raised
	}

	handle(evicting, s.evs[:cut])
	handle(keeping, s.evs[:cut])
	require.Nil(t, evicting.agents["a"], "a left memory")
	require.NotNil(t, evicting.agents["b"], "b is active")
	require.Len(t, evicting.agentList, 1)
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_detector_agents_evicted_total"))
	require.NotNil(t, keeping.agents["a"])

	// A restart on the evicting detector's store restores only the agents active lately.
	cfg.EvictAfter = 2 * time.Hour
	restarted := newDetector(t, cfg, st1, brokers, nil)
	defer func() { require.NoError(t, restarted.Shutdown(ctx)) }()
	require.NoError(t, restarted.restore(ctx))
	require.Nil(t, restarted.agents["a"], "a stays in the store until it comes back")
	require.NotNil(t, restarted.agents["b"])
	require.Nil(t, restarted.toolsOf("a", nil, false))

	gotRaised := observe(evicting, s.evs[cut:])
	wantRaised := observe(keeping, s.evs[cut:])
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_detector_agents_restored_total"))
	got, want := evicting.agents["a"], keeping.agents["a"]
	require.NotNil(t, got, "a came back")
	require.Equal(t, want.events, got.events)
	require.Equal(t, want.tools.Tools, got.tools.Tools)
	for _, m := range []func(*agentState) ([]byte, error){
		func(st *agentState) ([]byte, error) { return st.seq.MarshalBinary() },
		func(st *agentState) ([]byte, error) { return st.sizes.MarshalBinary() },
		func(st *agentState) ([]byte, error) { return size.MarshalStats(shapeKeys[:], st.shape[:]), nil },
	} {
		g, err := m(got)
		require.NoError(t, err)
		w, err := m(want)
		require.NoError(t, err)
		require.Equal(t, w, g)
	}
	at := week0.Add(29*time.Hour + 30*time.Minute)
	gb, _ := got.rate.Band(at)
	wb, _ := want.rate.Band(at)
	require.InDelta(t, wb.Expected, gb.Expected, 1e-6*wb.Expected)
	require.InDelta(t, wb.High, gb.High, 1e-6*wb.High)

	// What a raised since it came back: the same, and its new tool among it.
	summary := func(as []schemas.Anomaly) (out []string) {
		for _, a := range as {
			if a.AgentID == "a" {
				out = append(out, a.Kind+" "+a.Subject)
			}
		}
		return out
	}
	require.Contains(t, summary(wantRaised), "new_tool delete_all")
	require.Equal(t, summary(wantRaised), summary(gotRaised))
}
