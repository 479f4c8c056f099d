package detector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.DiscardHandler)

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, path, 30, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, st.Migrate(ctx))
	return st
}

func testBusConfig() bus.Config {
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Partitions = 1
	return cfg
}

// startBroker starts an embedded broker on port (0: any) with mcpwatch's topics.
func startBroker(t *testing.T, port int) []string {
	t.Helper()
	b, err := bus.StartEmbedded(port, t.TempDir(), discard)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(context.Background(), b.Brokers(), testBusConfig()))
	return b.Brokers()
}

func produce(t *testing.T, brokers []string, topic string, msgs ...kafka.Message) {
	t.Helper()
	p := bus.NewProducer(brokers, topic, testBusConfig())
	defer p.Close()
	require.NoError(t, p.Produce(context.Background(), msgs...))
}

func eventMessages(t *testing.T, evs ...schemas.Event) []kafka.Message {
	var out []kafka.Message
	for _, ev := range evs {
		v, err := json.Marshal(ev)
		require.NoError(t, err)
		out = append(out, kafka.Message{Key: []byte(ev.AgentID), Value: v})
	}
	return out
}

// readAnomalies reads partition 0 of mcp.anomalies from the start until it has n anomalies.
func readAnomalies(t *testing.T, brokers []string, n int) []schemas.Anomaly {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: bus.TopicAnomalies, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []schemas.Anomaly
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "read %d of %d anomalies", len(out), n)
		require.NoError(t, schemas.ValidateAnomalyJSON(m.Value))
		var a schemas.Anomaly
		require.NoError(t, json.Unmarshal(m.Value, &a))
		require.Equal(t, a.AgentID, string(m.Key), "keyed by agent")
		out = append(out, a)
	}
	return out
}

func counter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func newDetector(t *testing.T, cfg Config, st store.Store, brokers []string, reg prometheus.Registerer) *Detector {
	t.Helper()
	cfg.SetDefaults()
	d, err := New(cfg, st, brokers, testBusConfig(), pipeline.Settings{Logger: discard, Registry: reg})
	require.NoError(t, err)
	return d
}

func TestObserve(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	now := time.Now().UTC()
	steps := []struct {
		ev   schemas.Event
		want string // subject of the anomaly raised, "" for none
	}{
		{toolCall(1, "a", "fs", "read_file"), "read_file"},
		{toolCall(2, "a", "fs", "read_file"), ""},
		{toolCall(3, "b", "fs", "read_file"), "read_file"}, // baselines are per agent
		{toolCall(4, "a", "fs", "write_file"), "write_file"},
		{toolCall(5, "b", "fs", "read_file"), ""},
		{schemas.Event{ID: evID(6), AgentID: "c", Method: "initialize", Kind: schemas.KindRequest, Direction: schemas.ClientToServer}, ""},
	}

	d := newDetector(t, Config{}, st, []string{"127.0.0.1:1"}, nil)
	ids := map[string]bool{}
	for i, s := range steps {
		got := d.Observe(&s.ev, now)
		if s.want == "" {
			require.Empty(t, got, "step %d", i)
			continue
		}
		require.Len(t, got, 1, "step %d", i)
		require.Equal(t, s.want, got[0].Subject)
		require.Equal(t, s.ev.AgentID, got[0].AgentID)
		require.Equal(t, []string{s.ev.ID}, got[0].EvidenceEventIDs)
		require.False(t, ids[got[0].ID], "a different agent or tool gets a different anomaly id")
		ids[got[0].ID] = true
	}
	toolsDirty := map[string]bool{}
	for name := range d.dirty {
		toolsDirty[name] = true
	}
	for _, st := range d.dirtyAgents {
		if st.toolsDirty {
			toolsDirty[st.name] = true
		}
	}
	require.Equal(t, map[string]bool{"a": true, "b": true}, toolsDirty, "only agents that learnt a tool save their tools")
	require.NoError(t, d.Shutdown(context.Background()))

	disabled := newDetector(t, Config{NewTool: NewToolConfig{Disabled: true}}, st, []string{"127.0.0.1:1"}, nil)
	for _, s := range steps {
		require.Empty(t, disabled.Observe(&s.ev, now), "a disabled model raises nothing")
	}
	require.Empty(t, disabled.dirty)
	require.NoError(t, disabled.Shutdown(context.Background()))
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "defaults"},
		{name: "disabled", cfg: Config{NewTool: NewToolConfig{Disabled: true}}},
		{name: "top score", cfg: Config{NewTool: NewToolConfig{Score: 100}}},
		{name: "negative score", cfg: Config{NewTool: NewToolConfig{Score: -1}}, want: []string{"detector.new_tool.score: must be between 0 and 100, got -1"}},
		{name: "score above 100", cfg: Config{NewTool: NewToolConfig{Score: 101}}, want: []string{"detector.new_tool.score"}},
		{name: "negative interval", cfg: Config{SnapshotInterval: -time.Second}, want: []string{"detector.snapshot_interval: must be positive"}},
		{
			name: "every problem is reported",
			cfg:  Config{NewTool: NewToolConfig{Score: 200}, SnapshotInterval: -1},
			want: []string{"detector.new_tool.score", "detector.snapshot_interval"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			err := cfg.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			_, err = New(cfg, nil, nil, testBusConfig(), pipeline.Settings{})
			require.Error(t, err, "New refuses an invalid config")
		})
	}
	var d Config
	d.SetDefaults()
	require.Equal(t, 50.0, d.NewTool.Score)
	require.Equal(t, 30*time.Second, d.SnapshotInterval)
}

// TestBaselinesSurviveRestart runs a detector on a real broker and SQLite file, stops it, and
// starts a new one on the same file: what the first learnt is not raised again.
func TestBaselinesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, 0)
	dbPath := filepath.Join(t.TempDir(), "mcpwatch.db")
	st := openStore(t, dbPath)
	reg := prometheus.NewRegistry()

	d1 := newDetector(t, Config{}, st, brokers, reg)
	require.NoError(t, d1.Start(ctx))
	msgs := eventMessages(t,
		toolCall(1, "a", "fs", "echo"),
		toolCall(2, "a", "fs", "echo"),
		schemas.Event{ID: evID(3), AgentID: "a", Method: "tools/list", Kind: schemas.KindRequest, Direction: schemas.ClientToServer},
	)
	msgs = append(msgs, kafka.Message{Key: []byte("a"), Value: []byte("{not json")})
	msgs = append(msgs, eventMessages(t, toolCall(4, "b", "fs", "echo"))...)
	produce(t, brokers, bus.TopicEventsEnriched, msgs...)

	got := readAnomalies(t, brokers, 2)
	require.Equal(t, []string{"a", "b"}, []string{got[0].AgentID, got[1].AgentID}, "a's second echo raised nothing")
	require.Equal(t, []string{evID(1)}, got[0].EvidenceEventIDs)
	require.Equal(t, []string{evID(4)}, got[1].EvidenceEventIDs)
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_detector_undecodable_total"))
	require.Equal(t, 2.0, counter(t, reg, "mcpwatch_detector_anomalies_total"))

	snaps, err := st.LoadBaselines(ctx, ModelFirstSeenTool)
	require.NoError(t, err)
	require.Empty(t, snaps, "nothing saved before the snapshot interval")
	require.NoError(t, d1.Shutdown(ctx))
	require.NoError(t, d1.Shutdown(ctx))
	snaps, err = st.LoadBaselines(ctx, ModelFirstSeenTool)
	require.NoError(t, err)
	require.Len(t, snaps, 2, "Shutdown saves the baselines")
	for _, s := range snaps {
		require.JSONEq(t, `{"tools":["echo"]}`, string(s.State), s.Key)
	}
	for _, model := range []string{ModelRequestRate, ModelToolSequence, ModelContextSize, ModelAgent} {
		snaps, err := st.LoadBaselines(ctx, model)
		require.NoError(t, err)
		require.Len(t, snaps, 2, "Shutdown saves the %s baselines of both agents", model)
	}
	agents, err := st.LoadBaselines(ctx, ModelAgent)
	require.NoError(t, err)
	for _, s := range agents {
		if s.Key == "a" {
			require.Contains(t, string(s.State), `"events":3`, "a sent three requests")
		}
	}
	require.NoError(t, st.Close())

	// A new detector on the same database file.
	st2 := openStore(t, dbPath)
	defer st2.Close()
	d2 := newDetector(t, Config{}, st2, brokers, nil)
	require.NoError(t, d2.Start(ctx))
	defer func() { require.NoError(t, d2.Shutdown(ctx)) }()
	produce(t, brokers, bus.TopicEventsEnriched, eventMessages(t,
		toolCall(5, "a", "fs", "echo"),
		toolCall(6, "b", "fs", "echo"),
		toolCall(7, "a", "fs", "delete_all"),
	)...)
	got = readAnomalies(t, brokers, 3)
	third := got[2]
	d2.mu.Lock()
	require.EqualValues(t, 5, d2.agents["a"].events, "the warm-up record was restored and counts on")
	d2.mu.Unlock()
	require.Equal(t, "a", third.AgentID, "known tools raised nothing after the restart")
	require.Equal(t, "delete_all", third.Subject)
	require.Equal(t, []string{evID(7)}, third.EvidenceEventIDs)
	require.Equal(t, "1 known tools: echo", third.Explanation.Typical)
}

func TestPeriodicSnapshot(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, 0)
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	d := newDetector(t, Config{SnapshotInterval: time.Millisecond}, st, brokers, nil)
	require.NoError(t, d.Start(ctx))
	defer func() { require.NoError(t, d.Shutdown(ctx)) }()
	produce(t, brokers, bus.TopicEventsEnriched, eventMessages(t, toolCall(1, "a", "fs", "echo"))...)
	readAnomalies(t, brokers, 1)
	// The first batch after the interval saves the baselines, without waiting for Shutdown.
	produce(t, brokers, bus.TopicEventsEnriched, eventMessages(t, toolCall(2, "a", "fs", "echo"))...)
	require.Eventually(t, func() bool {
		snaps, err := st.LoadBaselines(ctx, ModelFirstSeenTool)
		return err == nil && len(snaps) == 1 && string(snaps[0].State) == `{"tools":["echo"]}`
	}, 10*time.Second, 20*time.Millisecond)
}

// TestFailedProduceKeepsTheAnomaly checks that when a batch's anomalies could not be produced,
// the consumer's retry of the batch sends them, and the models learn the batch once.
func TestFailedProduceKeepsTheAnomaly(t *testing.T) {
	ctx := context.Background()
	port := freePort(t)
	brokers := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	reg := prometheus.NewRegistry()
	d := newDetector(t, Config{}, st, brokers, reg)
	defer func() { require.NoError(t, d.Shutdown(ctx)) }()
	batch := eventMessages(t, toolCall(1, "a", "fs", "echo"), toolCall(2, "a", "fs", "echo"))

	// The broker is down.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	require.Error(t, d.handle(short, batch))
	require.Error(t, d.handle(short, batch), "a retry while the broker is still down")
	require.Contains(t, d.toolsOf("a", nil, false).Tools, "echo")
	require.EqualValues(t, 2, d.agents["a"].events, "the batch is observed once")
	require.Equal(t, 0.0, counter(t, reg, "mcpwatch_detector_anomalies_total"))

	// The broker is back: the consumer offers the same batch again.
	startBroker(t, port)
	require.Eventually(t, func() bool { return d.handle(ctx, batch) == nil }, 20*time.Second, 100*time.Millisecond)
	got := readAnomalies(t, brokers, 1)
	require.Equal(t, "echo", got[0].Subject)
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_detector_anomalies_total"))
	require.EqualValues(t, 2, d.agents["a"].events, "the retries did not observe the batch again")
	require.Nil(t, d.unsent)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, 0)
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()

	d := newDetector(t, Config{}, st, brokers, nil)
	require.NoError(t, d.Start(ctx))
	produce(t, brokers, bus.TopicEventsEnriched, eventMessages(t, toolCall(1, "a", "fs", "echo"))...)
	readAnomalies(t, brokers, 1)
	require.NoError(t, d.Shutdown(ctx))
	require.NoError(t, d.Shutdown(ctx), "a second Shutdown is a no-op")

	never := newDetector(t, Config{}, st, brokers, nil)
	require.NoError(t, never.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, never.Shutdown(ctx))

	// A store that cannot be read fails Start, and nothing is left running.
	closed := openStore(t, filepath.Join(t.TempDir(), "closed.db"))
	require.NoError(t, closed.Close())
	broken := newDetector(t, Config{}, closed, brokers, nil)
	require.ErrorContains(t, broken.Start(ctx), "cannot restore detector baselines")
	require.NoError(t, broken.Shutdown(ctx))
}

// TestIdleSnapshot: what one batch taught is saved within the snapshot interval even when no
// further batch arrives.
func TestIdleSnapshot(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, 0)
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	d := newDetector(t, Config{SnapshotInterval: 200 * time.Millisecond}, st, brokers, nil)
	require.NoError(t, d.Start(ctx))
	defer func() { require.NoError(t, d.Shutdown(ctx)) }()
	produce(t, brokers, bus.TopicEventsEnriched, eventMessages(t, toolCall(1, "a", "fs", "echo"))...)
	readAnomalies(t, brokers, 1)
	require.Eventually(t, func() bool {
		snaps, err := st.LoadBaselines(ctx, ModelFirstSeenTool)
		return err == nil && len(snaps) == 1 && string(snaps[0].State) == `{"tools":["echo"]}`
	}, 10*time.Second, 20*time.Millisecond)
}

// TestQuietAgentIsNotResaved: an agent is saved when its requests change it, not every
// snapshot while it is quiet; restoring its last snapshot replays the silence since, so a
// detector restarted from the store scores it as one that never stopped.
func TestQuietAgentIsNotResaved(t *testing.T) {
	ctx := context.Background()
	var s stream
	normalAgent(&s, "a", week0, week0.Add(6*time.Hour), 5, 1)
	normalAgent(&s, "b", week0, week0.Add(9*time.Hour), 5, 2) // the clock moves on while a is quiet
	slices.SortStableFunc(s.evs, func(x, y schemas.Event) int { return x.ObservedAt.Compare(y.ObservedAt) })
	back := s.req(week0.Add(9*time.Hour+time.Minute), "a", "a-back", "tools/call", "read_file")
	// An hour into the quiet, a's last session has ended (and been learnt and saved).
	quiet := slices.IndexFunc(s.evs, func(ev schemas.Event) bool { return ev.ObservedAt.After(week0.Add(7 * time.Hour)) })

	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}
	d := liveDetector(t, cfg)
	wall := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return wall }
	d.mu.Lock()
	defer d.mu.Unlock()
	saved := func(agent string) time.Time {
		snaps, err := d.st.LoadBaselinesOf(ctx, ModelRequestRate, []string{agent})
		require.NoError(t, err)
		require.Len(t, snaps, 1)
		return snaps[0].UpdatedAt
	}
	run(d, s.evs[:quiet])
	require.NoError(t, d.snapshot(ctx))
	aSaved, bSaved := saved("a"), saved("b")
	wall = wall.Add(time.Hour)
	run(d, s.evs[quiet:len(s.evs)-1]) // two more hours of b alone
	require.NoError(t, d.snapshot(ctx))
	require.Equal(t, aSaved, saved("a"), "a made no request: not saved again")
	require.True(t, saved("b").After(bSaved), "b is")

	d2 := newDetector(t, cfg, d.st, []string{"127.0.0.1:1"}, nil)
	_, _, err := d2.restoreSince(ctx, time.Time{})
	require.NoError(t, err)
	run(d, []schemas.Event{back})
	run(d2, []schemas.Event{back})
	at := back.ObservedAt.Add(time.Hour)
	want, _ := d.agents["a"].rate.Band(at)
	got, _ := d2.agents["a"].rate.Band(at)
	require.InDelta(t, want.Expected, got.Expected, 1e-6*want.Expected)
	require.InDelta(t, want.High, got.High, 1e-6*want.High)
}
