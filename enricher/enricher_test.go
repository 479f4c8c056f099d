package enricher_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/enricher"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newEnricher(t *testing.T, cfg enricher.Config) *enricher.Enricher {
	t.Helper()
	cfg.SetDefaults()
	var busCfg bus.Config
	busCfg.SetDefaults()
	e, err := enricher.New(cfg, []string{"127.0.0.1:1"}, busCfg, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e
}

func TestEnrich(t *testing.T) {
	for _, tc := range []struct {
		name       string
		labels     map[string]string
		in         schemas.Event
		wantAgent  string
		wantSource string
		wantLabels map[string]string
	}{
		{
			name:       "the collector's mtls attribution is kept",
			in:         schemas.Event{AgentID: "spiffe://corp/agent/a", AgentSource: "mtls", DeclaredAgent: "billing-bot", ClientName: "claude-code"},
			wantAgent:  "spiffe://corp/agent/a",
			wantSource: "mtls",
		},
		{
			name:       "the collector's jwt attribution is kept",
			in:         schemas.Event{AgentID: "svc-1", AgentSource: "jwt", DeclaredAgent: "billing-bot"},
			wantAgent:  "svc-1",
			wantSource: "jwt",
		},
		{
			name:       "an unverified jwt stays marked",
			in:         schemas.Event{AgentID: "svc-1", AgentSource: "jwt_unverified", ClientName: "claude-code"},
			wantAgent:  "svc-1",
			wantSource: "jwt_unverified",
		},
		{
			name:       "the collector's baggage attribution is kept",
			in:         schemas.Event{AgentID: "ops", AgentSource: "baggage", DeclaredAgent: "billing-bot"},
			wantAgent:  "ops",
			wantSource: "baggage",
		},
		{
			name:       "the collector's client_info attribution is kept (its precedence decided)",
			in:         schemas.Event{AgentID: "claude-code", AgentSource: "client_info", DeclaredAgent: "billing-bot", ClientName: "claude-code"},
			wantAgent:  "claude-code",
			wantSource: "client_info",
		},
		{
			name:       "the collector's unknown is kept",
			in:         schemas.Event{AgentID: "unknown", AgentSource: "unknown"},
			wantAgent:  enricher.UnknownAgent,
			wantSource: enricher.IdentityUnknown,
		},
		{
			name:       "no attribution: the header first",
			in:         schemas.Event{AgentID: "collector-guess", DeclaredAgent: "billing-bot", ClientName: "claude-code"},
			wantAgent:  "billing-bot",
			wantSource: enricher.IdentityHeader,
		},
		{
			name:       "no attribution: client_info when no header",
			in:         schemas.Event{ClientName: "claude-code"},
			wantAgent:  "claude-code",
			wantSource: enricher.IdentityClientInfo,
		},
		{
			name:       "no attribution and no identity at all",
			in:         schemas.Event{AgentID: "collector-guess"},
			wantAgent:  enricher.UnknownAgent,
			wantSource: enricher.IdentityUnknown,
		},
		{
			name:       "labels are added to an event without labels",
			labels:     map[string]string{"env": "prod", "region": "eu1"},
			in:         schemas.Event{ClientName: "c"},
			wantAgent:  "c",
			wantSource: enricher.IdentityClientInfo,
			wantLabels: map[string]string{"env": "prod", "region": "eu1"},
		},
		{
			name:       "an event's own labels win",
			labels:     map[string]string{"env": "prod", "region": "eu1"},
			in:         schemas.Event{ClientName: "c", Labels: map[string]string{"env": "staging", "team": "payments"}},
			wantAgent:  "c",
			wantSource: enricher.IdentityClientInfo,
			wantLabels: map[string]string{"env": "staging", "region": "eu1", "team": "payments"},
		},
		{
			name:       "no configured labels leave labels nil",
			in:         schemas.Event{ClientName: "c"},
			wantAgent:  "c",
			wantSource: enricher.IdentityClientInfo,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnricher(t, enricher.Config{Labels: tc.labels})
			ev := tc.in
			e.Enrich(&ev)
			require.Equal(t, tc.wantAgent, ev.AgentID)
			require.Equal(t, tc.wantSource, ev.AgentSource)
			require.Equal(t, tc.wantLabels, ev.Labels)
			require.Equal(t, tc.in.DeclaredAgent, ev.DeclaredAgent, "the raw identities are kept")
			require.Equal(t, tc.in.ClientName, ev.ClientName)
		})
	}
}

// Content travels on mcp.events for inspection; only captured content goes on.
func TestEnrichDropsContentNotCaptured(t *testing.T) {
	e := newEnricher(t, enricher.Config{})
	inspected := schemas.Event{AgentID: "a", AgentSource: "header", Content: &schemas.Content{Arguments: `{"q":"secret plan"}`, Result: `{"x":1}`}}
	e.Enrich(&inspected)
	require.Nil(t, inspected.Content)

	captured := schemas.Event{AgentID: "a", AgentSource: "header", Content: &schemas.Content{Arguments: `{"q":"hi"}`, Truncated: true, Captured: true}}
	e.Enrich(&captured)
	require.Equal(t, &schemas.Content{Arguments: `{"q":"hi"}`, Truncated: true, Captured: true}, captured.Content)
}

func TestEnrichDoesNotShareLabelMaps(t *testing.T) {
	e := newEnricher(t, enricher.Config{Labels: map[string]string{"env": "prod"}})
	a, b := schemas.Event{}, schemas.Event{}
	e.Enrich(&a)
	e.Enrich(&b)
	a.Labels["env"] = "changed"
	require.Equal(t, "prod", b.Labels["env"], "each event gets its own labels map")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  enricher.Config
		want []string // substrings of the error; none means valid
	}{
		{name: "defaults", cfg: enricher.Config{}},
		{name: "labels", cfg: enricher.Config{Labels: map[string]string{"env": "prod"}}},
		{
			name: "empty label name",
			cfg:  enricher.Config{Labels: map[string]string{"": "x"}},
			want: []string{"enricher.labels: label names must not be empty"},
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
			_, nerr := enricher.New(cfg, nil, bus.Config{}, pipeline.Settings{})
			require.Error(t, nerr, "New refuses an invalid config")
		})
	}
}

// broker starts an embedded broker with mcpwatch's topics (one partition each, so order is
// observable) and returns its addresses and the bus config to use with it.
func broker(t *testing.T) ([]string, bus.Config) {
	t.Helper()
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Partitions = 1
	b, err := bus.StartEmbedded(0, t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(context.Background(), b.Brokers(), cfg))
	return b.Brokers(), cfg
}

func produce(t *testing.T, brokers []string, cfg bus.Config, topic string, msgs ...kafka.Message) {
	t.Helper()
	p := bus.NewProducer(brokers, topic, cfg)
	defer p.Close()
	require.NoError(t, p.Produce(context.Background(), msgs...))
}

// readTopic reads partition 0 of topic from the start until it has n messages.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "read %d of %d messages from %s", len(out), n, topic)
		out = append(out, m)
	}
	return out
}

func eventMessage(t *testing.T, ev schemas.Event) kafka.Message {
	v, err := json.Marshal(ev)
	require.NoError(t, err)
	return kafka.Message{Key: []byte(ev.AgentID), Value: v}
}

func TestEnricherStage(t *testing.T) {
	brokers, busCfg := broker(t)
	reg := prometheus.NewRegistry()
	cfg := enricher.Config{Labels: map[string]string{"env": "prod"}}
	cfg.SetDefaults()
	e, err := enricher.New(cfg, brokers, busCfg, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, e.Start(ctx))
	defer func() { require.NoError(t, e.Shutdown(ctx)) }()

	in := []schemas.Event{
		{ID: "e1", AgentID: "", DeclaredAgent: "billing-bot", ClientName: "claude-code", Method: "tools/call",
			Content: &schemas.Content{Arguments: `{"q":"inspect me"}`}},
		{ID: "e2", ClientName: "cursor", Method: "tools/list"},
		{ID: "e3", Method: "ping"},
		{ID: "e4", AgentID: "spiffe://corp/a", AgentSource: "mtls", DeclaredAgent: "x", Method: "tools/call",
			Content: &schemas.Content{Arguments: `{"q":"kept"}`, Captured: true}},
	}
	produce(t, brokers, busCfg, bus.TopicEvents,
		eventMessage(t, in[0]),
		kafka.Message{Key: []byte("x"), Value: []byte(`{"event_id": "broken`)},
		eventMessage(t, in[1]),
		eventMessage(t, in[2]),
		eventMessage(t, in[3]),
	)

	out := readTopic(t, brokers, bus.TopicEventsEnriched, 4)
	want := []struct {
		id, agent, source string
		content           *schemas.Content
	}{
		{"e1", "billing-bot", enricher.IdentityHeader, nil},
		{"e2", "cursor", enricher.IdentityClientInfo, nil},
		{"e3", enricher.UnknownAgent, enricher.IdentityUnknown, nil},
		{"e4", "spiffe://corp/a", "mtls", &schemas.Content{Arguments: `{"q":"kept"}`, Captured: true}},
	}
	for i, m := range out {
		var ev schemas.Event
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		require.Equal(t, want[i].id, ev.ID, "order is kept and the undecodable message is skipped")
		require.Equal(t, want[i].agent, string(m.Key), "keyed by the resolved agent")
		require.Equal(t, want[i].agent, ev.AgentID)
		require.Equal(t, want[i].source, ev.AgentSource)
		require.Equal(t, map[string]string{"env": "prod"}, ev.Labels)
		require.Equal(t, want[i].content, ev.Content)
	}
	require.NotContains(t, string(out[0].Value), "inspect me", "content not captured never reaches mcp.events.enriched")

	require.Equal(t, 1.0, metric(t, reg, "mcpwatch_enricher_undecodable_total"))
	require.Equal(t, 4.0, metric(t, reg, "mcpwatch_enricher_events_total"))
	// The bad message did not stall the partition: everything, it included, gets committed.
	lag := bus.NewLagCollector(brokers, map[string][]string{enricher.Group: {bus.TopicEvents}}, slog.New(slog.DiscardHandler))
	defer lag.Close()
	require.Eventually(t, func() bool { return testutil.ToFloat64(lag) == 0 }, 10*time.Second, 20*time.Millisecond)
}

// metric returns the value of a counter without labels (or the sum over its series).
func metric(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

func TestLifecycle(t *testing.T) {
	brokers, busCfg := broker(t)
	var cfg enricher.Config
	cfg.SetDefaults()
	ctx := context.Background()

	e, err := enricher.New(cfg, brokers, busCfg, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	produce(t, brokers, busCfg, bus.TopicEvents, eventMessage(t, schemas.Event{ID: "x", ClientName: "a"}))
	readTopic(t, brokers, bus.TopicEventsEnriched, 1)
	require.NoError(t, e.Shutdown(ctx))
	require.NoError(t, e.Shutdown(ctx), "a second Shutdown is a no-op")

	// Shutdown without Start.
	e2, err := enricher.New(cfg, brokers, busCfg, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, e2.Shutdown(ctx))
	require.NoError(t, e2.Shutdown(ctx))
}
