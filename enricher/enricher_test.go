package enricher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
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
	e, err := enricher.New(cfg, nil, []string{"127.0.0.1:1"}, busCfg, pipeline.Settings{})
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
			_, nerr := enricher.New(cfg, nil, nil, bus.Config{}, pipeline.Settings{})
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
	e, err := enricher.New(cfg, nil, brokers, busCfg, pipeline.Settings{Registry: reg})
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
		// decodes, but json.Marshal refuses the time: skipped rather than stopping the stage
		kafka.Message{Key: []byte("x"), Value: []byte(`{"event_id":"e24","observed_at":"2026-01-01T00:00:00+24:00"}`)},
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

	require.Equal(t, 2.0, metric(t, reg, "mcpwatch_enricher_undecodable_total"))
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

	e, err := enricher.New(cfg, nil, brokers, busCfg, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	produce(t, brokers, busCfg, bus.TopicEvents, eventMessage(t, schemas.Event{ID: "x", ClientName: "a"}))
	readTopic(t, brokers, bus.TopicEventsEnriched, 1)
	require.NoError(t, e.Shutdown(ctx))
	require.NoError(t, e.Shutdown(ctx), "a second Shutdown is a no-op")

	// Shutdown without Start.
	e2, err := enricher.New(cfg, nil, brokers, busCfg, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, e2.Shutdown(ctx))
	require.NoError(t, e2.Shutdown(ctx))
}

func TestSuspiciousContent(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC)
	flag := func(typ string, sev schemas.Severity, path string) schemas.Flag {
		return schemas.Flag{Type: typ, Severity: sev, Path: path, Evidence: "offset 3, length 12"}
	}
	ev := func(id, agent, server string, at time.Time, flags ...schemas.Flag) schemas.Event {
		return schemas.Event{ID: eventID(id), AgentID: agent, AgentSource: "mtls", ServerID: server, Method: "tools/call", Target: "search", ObservedAt: at, Flags: flags}
	}
	type want struct {
		kind     string
		subject  string
		severity schemas.Severity
		count    int
	}
	for _, tc := range []struct {
		name   string
		events []schemas.Event
		want   [][]want // per event
		sameID [][2]int // pairs of (event index) whose first anomaly shares an id
		diffID [][2]int
	}{
		{
			name:   "flags below high raise nothing",
			events: []schemas.Event{ev("e1", "a", "s", t0, flag("pii_email", schemas.SeverityMedium, "result"), flag("url", schemas.SeverityLow, "result"))},
			want:   [][]want{nil},
		},
		{
			name: "one event, two flags of one type and one of another: one anomaly per type",
			events: []schemas.Event{ev("e1", "a", "s", t0,
				flag("injection_phrase", schemas.SeverityHigh, "params.arguments.q"),
				flag("secret", schemas.SeverityCritical, "result.content[0].text"),
				flag("injection_phrase", schemas.SeverityCritical, "result.content[1].text"))},
			want: [][]want{{
				{kind: enricher.KindSuspiciousContent, subject: "injection_phrase", severity: schemas.SeverityCritical, count: 1},
				{kind: enricher.KindSuspiciousContent, subject: "secret", severity: schemas.SeverityCritical, count: 1},
			}},
		},
		{
			name: "the same agent, server and type within the hour grows one anomaly",
			events: []schemas.Event{
				ev("e1", "a", "s", t0, flag("injection_phrase", schemas.SeverityHigh, "p")),
				ev("e2", "a", "s", t0.Add(30*time.Minute), flag("injection_phrase", schemas.SeverityCritical, "p")),
				ev("e3", "a", "s", t0.Add(40*time.Minute), flag("injection_phrase", schemas.SeverityHigh, "p")),
			},
			want: [][]want{
				{{subject: "injection_phrase", severity: schemas.SeverityHigh, count: 1, kind: enricher.KindSuspiciousContent}},
				{{subject: "injection_phrase", severity: schemas.SeverityCritical, count: 2, kind: enricher.KindSuspiciousContent}},
				{{subject: "injection_phrase", severity: schemas.SeverityCritical, count: 3, kind: enricher.KindSuspiciousContent}},
			},
			sameID: [][2]int{{0, 1}, {1, 2}},
		},
		{
			name: "the next hour, another server or another agent is another anomaly",
			events: []schemas.Event{
				ev("e1", "a", "s", t0, flag("secret", schemas.SeverityHigh, "p")),
				ev("e2", "a", "s", t0.Add(time.Hour), flag("secret", schemas.SeverityHigh, "p")),
				ev("e3", "a", "s2", t0, flag("secret", schemas.SeverityHigh, "p")),
				ev("e4", "b", "s", t0, flag("secret", schemas.SeverityHigh, "p")),
			},
			want: [][]want{
				{{subject: "secret", severity: schemas.SeverityHigh, count: 1, kind: enricher.KindSuspiciousContent}},
				{{subject: "secret", severity: schemas.SeverityHigh, count: 1, kind: enricher.KindSuspiciousContent}},
				{{subject: "secret", severity: schemas.SeverityHigh, count: 1, kind: enricher.KindSuspiciousContent}},
				{{subject: "secret", severity: schemas.SeverityHigh, count: 1, kind: enricher.KindSuspiciousContent}},
			},
			diffID: [][2]int{{0, 1}, {0, 2}, {0, 3}, {2, 3}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnricher(t, enricher.Config{})
			var firstIDs []string
			for i := range tc.events {
				got := e.Enrich(&tc.events[i])
				require.Len(t, got, len(tc.want[i]), "event %d", i)
				for j, w := range tc.want[i] {
					a := got[j]
					require.Equal(t, w.kind, a.Kind)
					require.Equal(t, w.subject, a.Subject)
					require.Equal(t, w.severity, a.Severity)
					require.Equal(t, w.count, a.Count)
					require.Equal(t, tc.events[i].AgentID, a.AgentID)
					require.Equal(t, tc.events[i].ServerID, a.ServerID)
					require.Equal(t, enricher.ScoreForSeverity(w.severity), a.Score)
					require.Equal(t, schemas.SeverityForScore(a.Score), a.Severity, "score and severity agree")
					require.Contains(t, a.EvidenceEventIDs, tc.events[i].ID)
					require.LessOrEqual(t, a.FirstSeen, a.LastSeen)
					require.NotContains(t, a.Explanation.Summary, "offset 3", "the summary names paths, not evidence")
					require.NoError(t, schemas.ValidateAnomalyJSON(mustJSON(t, a)), "a valid Anomaly v1")
				}
				if len(got) > 0 {
					firstIDs = append(firstIDs, got[0].ID)
				} else {
					firstIDs = append(firstIDs, "")
				}
			}
			for _, p := range tc.sameID {
				require.Equal(t, firstIDs[p[0]], firstIDs[p[1]])
			}
			for _, p := range tc.diffID {
				require.NotEqual(t, firstIDs[p[0]], firstIDs[p[1]])
			}
		})
	}
}

// The id of a suspicious_content anomaly depends only on the finding, so another enricher
// (a restart) gives the same one.
func TestSuspiciousContentIDIsDeterministic(t *testing.T) {
	ev := func() *schemas.Event {
		return &schemas.Event{ID: "e1", AgentID: "a", AgentSource: "mtls", ServerID: "s", ObservedAt: time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC),
			Flags: []schemas.Flag{{Type: "secret", Severity: schemas.SeverityHigh}}}
	}
	a := newEnricher(t, enricher.Config{}).Enrich(ev())
	b := newEnricher(t, enricher.Config{}).Enrich(ev())
	require.Len(t, a, 1)
	require.Len(t, b, 1)
	require.Equal(t, a[0].ID, b[0].ID)
	require.Equal(t, enricher.AnomalyID("a", enricher.KindSuspiciousContent, "s", "secret", "2026-11-03T10:00:00Z"), a[0].ID)
}

// eventID is a valid event id (a UUID) named by s.
func eventID(s string) string { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(s)).String() }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// Flagged events raise suspicious_content anomalies on mcp.anomalies, keyed by agent; a batch
// produces each anomaly once, as its latest version.
func TestEnricherStageProducesAnomalies(t *testing.T) {
	brokers, busCfg := broker(t)
	reg := prometheus.NewRegistry()
	var cfg enricher.Config
	cfg.SetDefaults()
	e, err := enricher.New(cfg, nil, brokers, busCfg, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	ctx := context.Background()

	t0 := time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC)
	high := []schemas.Flag{{Type: "injection_phrase", Severity: schemas.SeverityHigh, Path: "params.arguments.q"}}
	var msgs []kafka.Message
	for i, agent := range []string{"a", "a", "b", "a"} {
		msgs = append(msgs, eventMessage(t, schemas.Event{ID: fmt.Sprintf("e%d", i), AgentID: agent, AgentSource: "mtls", ServerID: "s",
			Method: "tools/call", Target: "search", ObservedAt: t0.Add(time.Duration(i) * time.Minute), Flags: high}))
	}
	msgs = append(msgs, eventMessage(t, schemas.Event{ID: "quiet", AgentID: "a", AgentSource: "mtls", ServerID: "s", ObservedAt: t0}))
	// Produced before Start, so the enricher reads them as one batch.
	produce(t, brokers, busCfg, bus.TopicEvents, msgs...)
	require.NoError(t, e.Start(ctx))
	defer func() { require.NoError(t, e.Shutdown(ctx)) }()

	readTopic(t, brokers, bus.TopicEventsEnriched, 5)
	out := readTopic(t, brokers, bus.TopicAnomalies, 2)
	byAgent := map[string]schemas.Anomaly{}
	for _, m := range out {
		var a schemas.Anomaly
		require.NoError(t, json.Unmarshal(m.Value, &a))
		require.Equal(t, a.AgentID, string(m.Key), "keyed by agent")
		byAgent[a.AgentID] = a
	}
	require.Equal(t, 3, byAgent["a"].Count, "agent a's three flagged calls: one anomaly, latest version")
	require.Equal(t, []string{"e0", "e1", "e3"}, byAgent["a"].EvidenceEventIDs)
	require.Equal(t, 1, byAgent["b"].Count)
	require.Equal(t, 2.0, metric(t, reg, "mcpwatch_enricher_anomalies_total"))
}

// A batch is committed only once its anomalies were acknowledged: with mcp.anomalies missing,
// the enricher keeps the batch uncommitted (its events are produced once), and finishes once
// the topic exists.
func TestEnricherCommitsAfterAnomaliesAcknowledged(t *testing.T) {
	var busCfg bus.Config
	busCfg.SetDefaults()
	busCfg.Partitions = 1
	b, err := bus.StartEmbedded(0, t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(b.Close)
	brokers := b.Brokers()
	createTopics(t, brokers, bus.TopicEvents, bus.TopicEventsEnriched)

	reg := prometheus.NewRegistry()
	var cfg enricher.Config
	cfg.SetDefaults()
	e, err := enricher.New(cfg, nil, brokers, busCfg, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, e.Start(ctx))
	defer func() { require.NoError(t, e.Shutdown(ctx)) }()

	produce(t, brokers, busCfg, bus.TopicEvents, eventMessage(t, schemas.Event{ID: "e1", AgentID: "a", AgentSource: "mtls", ServerID: "s",
		ObservedAt: time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC), Flags: []schemas.Flag{{Type: "secret", Severity: schemas.SeverityCritical}}}))
	readTopic(t, brokers, bus.TopicEventsEnriched, 1)
	require.Eventually(t, func() bool {
		return metric(t, reg, "mcpwatch_bus_handler_failures_total") >= 1
	}, 20*time.Second, 20*time.Millisecond, "producing the anomaly fails")
	lag := bus.NewLagCollector(brokers, map[string][]string{enricher.Group: {bus.TopicEvents}}, slog.New(slog.DiscardHandler))
	defer lag.Close()
	require.Equal(t, 1.0, testutil.ToFloat64(lag), "the batch is not committed")

	createTopics(t, brokers, bus.TopicAnomalies)
	out := readTopic(t, brokers, bus.TopicAnomalies, 1)
	var a schemas.Anomaly
	require.NoError(t, json.Unmarshal(out[0].Value, &a))
	require.Equal(t, 1, a.Count, "the retry resumes; it does not count the event twice")
	require.Eventually(t, func() bool { return testutil.ToFloat64(lag) == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, metric(t, reg, "mcpwatch_enricher_events_total"), "events were produced once")
	readTopic(t, brokers, bus.TopicEventsEnriched, 1)
}

func createTopics(t *testing.T, brokers []string, topics ...string) {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport}
	req := &kafka.CreateTopicsRequest{}
	for _, topic := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1})
	}
	resp, err := client.CreateTopics(context.Background(), req)
	require.NoError(t, err)
	for topic, terr := range resp.Errors {
		require.NoError(t, terr, topic)
	}
}

// The enricher's anomalies carry the event's tags (inventory and policy tool tags), for alert
// routing.
func TestAnomaliesCarryTags(t *testing.T) {
	ev := &schemas.Event{ID: "e1", AgentID: "a", AgentSource: "mtls", ServerID: "s", ObservedAt: time.Date(2026, 11, 3, 10, 15, 0, 0, time.UTC),
		Labels: map[string]string{schemas.LabelTags: "prod,pii"},
		Flags:  []schemas.Flag{{Type: "secret", Severity: schemas.SeverityHigh}}}
	got := newEnricher(t, enricher.Config{}).Enrich(ev)
	require.Len(t, got, 1)
	require.Equal(t, []string{"pii", "prod"}, got[0].Tags)
}
