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
		precedence []string
		labels     map[string]string
		in         schemas.Event
		wantAgent  string
		wantSource string
		wantLabels map[string]string
	}{
		{
			name:       "header wins over client_info by default",
			in:         schemas.Event{AgentID: "collector-guess", DeclaredAgent: "billing-bot", ClientName: "claude-code"},
			wantAgent:  "billing-bot",
			wantSource: enricher.IdentityHeader,
		},
		{
			name:       "client_info when no header",
			in:         schemas.Event{ClientName: "claude-code"},
			wantAgent:  "claude-code",
			wantSource: enricher.IdentityClientInfo,
		},
		{
			name:       "reversed precedence: client_info wins",
			precedence: []string{enricher.IdentityClientInfo, enricher.IdentityHeader},
			in:         schemas.Event{DeclaredAgent: "billing-bot", ClientName: "claude-code"},
			wantAgent:  "claude-code",
			wantSource: enricher.IdentityClientInfo,
		},
		{
			name:       "reversed precedence falls back to the header",
			precedence: []string{enricher.IdentityClientInfo, enricher.IdentityHeader},
			in:         schemas.Event{DeclaredAgent: "billing-bot"},
			wantAgent:  "billing-bot",
			wantSource: enricher.IdentityHeader,
		},
		{
			name:       "a source left out of the precedence is ignored",
			precedence: []string{enricher.IdentityHeader},
			in:         schemas.Event{ClientName: "claude-code"},
			wantAgent:  enricher.UnknownAgent,
			wantSource: enricher.IdentityUnknown,
		},
		{
			name:       "no identity at all",
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
			e := newEnricher(t, enricher.Config{IdentityPrecedence: tc.precedence, Labels: tc.labels})
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
		{name: "one source", cfg: enricher.Config{IdentityPrecedence: []string{"client_info"}}},
		{name: "labels", cfg: enricher.Config{Labels: map[string]string{"env": "prod"}}},
		{
			name: "unknown source",
			cfg:  enricher.Config{IdentityPrecedence: []string{"header", "mtls"}},
			want: []string{`enricher.identity_precedence[1]: unknown identity source "mtls"`},
		},
		{
			name: "duplicate source",
			cfg:  enricher.Config{IdentityPrecedence: []string{"client_info", "header", "client_info"}},
			want: []string{`enricher.identity_precedence[2]: "client_info" is listed twice`},
		},
		{
			name: "every problem is reported",
			cfg:  enricher.Config{IdentityPrecedence: []string{"ip", "header", "header"}, Labels: map[string]string{"": "x"}},
			want: []string{"enricher.identity_precedence[0]: unknown", "enricher.identity_precedence[2]:", "enricher.labels: label names must not be empty"},
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
	require.ErrorContains(t, enricher.Config{}.Validate(), "enricher.identity_precedence: must list at least one source",
		"an explicitly empty precedence (no SetDefaults) is invalid")
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
		{ID: "e1", AgentID: "", DeclaredAgent: "billing-bot", ClientName: "claude-code", Method: "tools/call"},
		{ID: "e2", ClientName: "cursor", Method: "tools/list"},
		{ID: "e3", Method: "ping"},
	}
	produce(t, brokers, busCfg, bus.TopicEvents,
		eventMessage(t, in[0]),
		kafka.Message{Key: []byte("x"), Value: []byte(`{"event_id": "broken`)},
		eventMessage(t, in[1]),
		eventMessage(t, in[2]),
	)

	out := readTopic(t, brokers, bus.TopicEventsEnriched, 3)
	want := []struct{ id, agent, source string }{
		{"e1", "billing-bot", enricher.IdentityHeader},
		{"e2", "cursor", enricher.IdentityClientInfo},
		{"e3", enricher.UnknownAgent, enricher.IdentityUnknown},
	}
	for i, m := range out {
		var ev schemas.Event
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		require.Equal(t, want[i].id, ev.ID, "order is kept and the undecodable message is skipped")
		require.Equal(t, want[i].agent, string(m.Key), "keyed by the resolved agent")
		require.Equal(t, want[i].agent, ev.AgentID)
		require.Equal(t, want[i].source, ev.AgentSource)
		require.Equal(t, map[string]string{"env": "prod"}, ev.Labels)
	}

	require.Equal(t, 1.0, metric(t, reg, "mcpwatch_enricher_undecodable_total"))
	require.Equal(t, 3.0, metric(t, reg, "mcpwatch_enricher_events_total"))
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
