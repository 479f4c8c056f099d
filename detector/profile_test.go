package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// profiledDetector runs two days of a steady agent "a" (5 requests a minute in sessions that
// start with tools/list) and a short-lived agent "b" through a detector, saves its baselines
// and returns it with its store.
func profiledDetector(t *testing.T) (*Detector, store.Store) {
	t.Helper()
	var s stream
	normalAgent(&s, "a", week0, week0.Add(2*24*time.Hour), 5, 1)
	for i := range s.evs {
		s.evs[i].RequestBytes = 200
		s.evs[i].ResponseBytes = 1000 + 100*(i%50) // 1000–5900 bytes, evenly
	}
	s.req(week0.Add(2*24*time.Hour), "b", "b-s0", "tools/call", "echo")
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	t.Cleanup(func() { st.Close() })
	d := newDetector(t, Config{}, st, []string{"127.0.0.1:1"}, nil)
	d.now = func() time.Time { return week0.Add(2*24*time.Hour + time.Minute) }
	run(d, s.evs)
	d.mu.Lock()
	defer d.mu.Unlock()
	require.NoError(t, d.snapshot(context.Background()))
	return d, st
}

func TestProfile(t *testing.T) {
	ctx := context.Background()
	d, st := profiledDetector(t)
	p, err := NewProfiler(Config{}, nil)
	require.NoError(t, err)

	pr, err := p.Profile(ctx, st, "a")
	require.NoError(t, err)
	require.Equal(t, "a", pr.AgentID)
	require.Equal(t, week0.Add(2*24*time.Hour+time.Minute), pr.UpdatedAt)
	require.False(t, pr.Learning, "two days and thousands of requests: warmed up")
	require.Equal(t, week0, pr.FirstSeen.Truncate(time.Minute))
	require.Greater(t, pr.Requests, int64(10000))

	// The rate band is the live model's prediction, decoded from its snapshot.
	require.Equal(t, "calls/min", pr.Rate.Unit)
	require.Len(t, pr.Rate.Band, 168)
	d.mu.Lock()
	live, ok := d.agents["a"].rate.WeekBands()
	liveSeq := d.agents["a"].seq.Calls()
	d.mu.Unlock()
	require.True(t, ok)
	for h, b := range pr.Rate.Band {
		require.Equal(t, h, b.HourOfWeek)
		require.Equal(t, HourBand{h, live[h].Expected, live[h].Low, live[h].High}, b)
		require.LessOrEqual(t, b.Lower, b.Expected)
		require.LessOrEqual(t, b.Expected, b.Upper)
	}
	monday10 := pr.Rate.Band[10]
	require.InDelta(t, 5, monday10.Expected, 2, "about 5 calls a minute")

	// Tools: three, called about equally, shares summing to one.
	require.Len(t, pr.TopTools, 3)
	var share float64
	var calls int
	for _, tu := range pr.TopTools {
		require.Contains(t, []string{"read_file", "list_dir", "search"}, tu.Tool)
		require.InDelta(t, 1.0/3, tu.Share, 0.05, tu.Tool)
		require.Greater(t, tu.Sessions, 100)
		share += tu.Share
		calls += tu.Calls
	}
	require.InDelta(t, 1, share, 1e-9)
	require.GreaterOrEqual(t, pr.TopTools[0].Calls, pr.TopTools[1].Calls, "most calls first")
	var liveCalls int
	for _, c := range liveSeq {
		if c.Call != 0 {
			liveCalls += c.Count
		}
	}
	require.Equal(t, liveCalls, calls+countOf(t, pr, "(start)", "tools/list"), "tool calls plus one tools/list per session")

	// Every session starts with tools/list; the model is all but sure of it.
	var start Transition
	for _, tr := range pr.TopTransitions {
		if tr.From == "(start)" {
			start = tr
		}
		require.Greater(t, tr.Probability, 0.0)
		require.LessOrEqual(t, tr.Probability, 1.0)
	}
	require.Equal(t, "tools/list", start.To)
	require.Greater(t, start.Probability, 0.99)
	require.LessOrEqual(t, len(pr.TopTransitions), profileTopTransitions)
	for i := 1; i < len(pr.TopTransitions); i++ {
		require.GreaterOrEqual(t, pr.TopTransitions[i-1].Count, pr.TopTransitions[i].Count)
	}

	// Sizes: requests are always 200 bytes; responses spread evenly over 1000–5900.
	require.NotNil(t, pr.Sizes)
	require.InEpsilon(t, 200, pr.Sizes.RequestBytes.P50, 0.01)
	require.InEpsilon(t, 200*math.Exp2(1.2816*0.25), pr.Sizes.RequestBytes.P90, 0.01, "a constant size has the minimum spread")
	r := pr.Sizes.ResponseBytes
	require.InDelta(t, 3000, r.P50, 800)
	require.Less(t, r.P50, r.P90)
	require.Less(t, r.P90, r.P99)

	require.Equal(t, []string{"list_dir", "read_file", "search"}, pr.KnownTools)

	// The JSON the API serves.
	b, err := json.Marshal(pr)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"agent_id", "updated_at", "learning", "first_seen", "requests", "rate", "top_tools", "top_transitions", "sizes", "known_tools"} {
		require.Contains(t, m, k)
	}
	require.Contains(t, string(b), `"band":[{"hour_of_week":0,"expected":`)
	require.Contains(t, string(b), `"sizes":{"request_bytes":{"p50":200,`)

	// b: one request, still learning; one call is not a session yet.
	pb, err := p.Profile(ctx, st, "b")
	require.NoError(t, err)
	require.True(t, pb.Learning)
	require.Equal(t, int64(1), pb.Requests)
	require.Nil(t, pb.TopTools, "no session learnt yet")
	require.Nil(t, pb.Sizes, "no sizes")
	require.NotNil(t, pb.Rate, "a cold agent starts from the population's rate")
	require.Equal(t, []string{"echo"}, pb.KnownTools)

	_, err = p.Profile(ctx, st, "nobody")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func countOf(t *testing.T, pr Profile, from, to string) int {
	t.Helper()
	for _, tr := range pr.TopTransitions {
		if tr.From == from && tr.To == to {
			return tr.Count
		}
	}
	t.Fatalf("no transition %s → %s", from, to)
	return 0
}

func TestProfileSkipsUnreadableBaselines(t *testing.T) {
	ctx := context.Background()
	_, st := profiledDetector(t)
	later := week0.Add(3 * 24 * time.Hour) // replaces the detector's snapshots
	require.NoError(t, st.SaveBaselines(ctx, []store.Baseline{
		{Model: ModelRequestRate, Key: "b", UpdatedAt: later, State: []byte("garbage")},
		{Model: ModelToolSequence, Key: "b", UpdatedAt: later, State: []byte("garbage")},
		{Model: ModelContextSize, Key: "b", UpdatedAt: later, State: []byte("garbage")},
		{Model: ModelFirstSeenTool, Key: "b", UpdatedAt: later, State: []byte("{")},
		{Model: ModelAgent, Key: "b", UpdatedAt: later, State: []byte("[")},
	}))
	var logs bytes.Buffer
	p, err := NewProfiler(Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	pr, err := p.Profile(ctx, st, "b")
	require.NoError(t, err, "unreadable snapshots are left out, not fatal")
	require.Equal(t, Profile{AgentID: "b", UpdatedAt: later, Learning: true}, pr)
	for _, model := range []string{ModelRequestRate, ModelToolSequence, ModelContextSize, ModelFirstSeenTool, ModelAgent} {
		require.Contains(t, logs.String(), "model="+model)
	}

	// Snapshots taken under other model parameters cannot be read either.
	var cfg Config
	cfg.Rate.Model = rate.Config{HourSlots: 6}
	other, err := NewProfiler(cfg, nil)
	require.NoError(t, err)
	pr, err = other.Profile(ctx, st, "a")
	require.NoError(t, err)
	require.Nil(t, pr.Rate)
	require.NotNil(t, pr.TopTools)

	// A disabled model's section is left out.
	cfg = Config{}
	cfg.Size.Disabled = true
	noSizes, err := NewProfiler(cfg, nil)
	require.NoError(t, err)
	pr, err = noSizes.Profile(ctx, st, "a")
	require.NoError(t, err)
	require.Nil(t, pr.Sizes)

	cfg = Config{}
	cfg.Rate.Model.Bucket = time.Millisecond
	_, err = NewProfiler(cfg, nil)
	require.ErrorContains(t, err, "detector.rate.bucket")
}
