package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// The fixture is two days of three agents' MCP traffic (Monday 2026-11-02 and Tuesday, UTC)
// in a real SQLite store behind a real mcpwatch API server. Baselines come from the real
// detector run over the events; anomalies and alert deliveries are written by hand so that
// their fields are known. On Tuesday at 22:30 research-agent turns: a burst of read_file calls
// with exfiltration-sized answers and a first call of exec_shell, in session "research-exfil".

// t0 is the start of the fixture's traffic, a Monday.
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// day2 is the time range most tests query: the fixture's second day.
var day2 = backend.TimeRange{From: t0.Add(24 * time.Hour), To: t0.Add(48 * time.Hour)}

const testToken = "grafana-test-token"

// fixtureAPI is the base URL of the API serving the fixture (set by TestMain).
var fixtureAPI string

// exfilStart is when research-agent's exfiltration session begins.
var exfilStart = t0.Add(46*time.Hour + 30*time.Minute)

func TestMain(m *testing.M) {
	code, err := runWithFixture(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixture:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runWithFixture(m *testing.M) (int, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mcpwatch-plugin-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	st, err := seedStore(ctx, filepath.Join(dir, "mcpwatch.db"))
	if err != nil {
		return 0, err
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []string{testToken}}, st, reg, nil,
		pipeline.Settings{Logger: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		return 0, err
	}
	if err := srv.Start(ctx); err != nil {
		return 0, err
	}
	defer srv.Shutdown(ctx) //nolint:errcheck // the process ends next
	fixtureAPI = "http://" + srv.Addr()
	return m.Run(), nil
}

// seedStore writes the fixture into a new SQLite store at path.
func seedStore(ctx context.Context, path string) (store.Store, error) {
	st, err := store.OpenSQLite(ctx, path, 36500, pipeline.Settings{})
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	events := fixtureEvents()
	if err := st.InsertEvents(ctx, events); err != nil {
		return nil, err
	}
	if err := learnBaselines(ctx, st, events); err != nil {
		return nil, err
	}
	if err := st.UpsertAnomalies(ctx, fixtureAnomalies()); err != nil {
		return nil, err
	}
	if err := st.RecordDeliveries(ctx, fixtureDeliveries()); err != nil {
		return nil, err
	}
	return st, nil
}

// learnBaselines runs the real detector over the events, in time order, and saves the
// baselines it learnt (its Shutdown snapshots them). The anomalies it raises are dropped: the
// fixture's anomalies are written by hand.
func learnBaselines(ctx context.Context, st store.Store, events []schemas.Event) error {
	var cfg detector.Config
	cfg.SetDefaults()
	// The detector never starts, so it never dials this broker.
	d, err := detector.New(cfg, st, []string{"127.0.0.1:1"}, bus.Config{}, pipeline.Settings{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	for i := range events {
		d.Observe(&events[i], events[i].ObservedAt)
	}
	return d.Shutdown(ctx)
}

type agentPlan struct {
	id, short, client string
	servers           []string
	every             time.Duration // a session starts about this often
	tools             []string      // weighted by repetition
	reqBytes          [2]int        // min, max
	respBytes         [2]int
}

var plans = []agentPlan{
	{id: "billing-bot", short: "billing", client: "claude-code", servers: []string{"crm"}, every: 15 * time.Minute,
		tools:    []string{"lookup_customer", "lookup_customer", "lookup_customer", "create_invoice", "create_invoice", "send_email"},
		reqBytes: [2]int{180, 420}, respBytes: [2]int{900, 3200}},
	{id: "support-bot", short: "support", client: "cursor", servers: []string{"kb", "crm"}, every: 20 * time.Minute,
		tools:    []string{"search_kb", "search_kb", "search_kb", "get_article", "get_article", "lookup_customer"},
		reqBytes: [2]int{150, 300}, respBytes: [2]int{2000, 8000}},
	{id: "research-agent", short: "research", client: "claude-code", servers: []string{"fs"}, every: 30 * time.Minute,
		tools:    []string{"list_files", "read_file", "read_file", "read_file"},
		reqBytes: [2]int{120, 260}, respBytes: [2]int{1500, 12000}},
}

// fixtureEvents returns the fixture's events in time order. They are deterministic: a seeded
// generator, UUIDs derived from a counter.
func fixtureEvents() []schemas.Event {
	rng := rand.New(rand.NewPCG(7, 11))
	var out []schemas.Event
	seq := 0
	newEvent := func(p agentPlan, server, session string, at time.Time, method, target string) schemas.Event {
		seq++
		e := schemas.Event{
			ID:            uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "mcpwatch-plugin-fixture-%d", seq)).String(),
			SchemaVersion: schemas.EventSchemaVersion, ObservedAt: at, CollectorID: "fixture",
			Source: schemas.SourceHTTPTap, Transport: "streamable_http", ProtocolVersion: "2025-11-25",
			AgentID: p.id, AgentSource: "header", ClientName: p.client, ServerID: server, SessionID: session,
			JSONRPCID: fmt.Sprint(seq), Direction: schemas.ClientToServer, Kind: schemas.KindRequest,
			Method: method, Target: target, Status: schemas.StatusOK,
			LatencyMicros: int64(2000 + rng.IntN(80_000)),
			RequestBytes:  p.reqBytes[0] + rng.IntN(p.reqBytes[1]-p.reqBytes[0]),
			ResponseBytes: p.respBytes[0] + rng.IntN(p.respBytes[1]-p.respBytes[0]),
		}
		if method == "tools/call" {
			e.ArgsShape = `{"path":"string"}`
			e.ArgsHash = fmt.Sprintf("%016x", rng.Uint64())
			e.ResultHash = fmt.Sprintf("%016x", rng.Uint64())
			if rng.IntN(25) == 0 {
				e.Status = schemas.StatusToolError
			}
		}
		return e
	}
	session := func(p agentPlan, server, id string, at time.Time, tools []string, gap time.Duration) []schemas.Event {
		evs := []schemas.Event{
			newEvent(p, server, id, at, "initialize", ""),
			newEvent(p, server, id, at.Add(time.Second), "tools/list", ""),
		}
		at = at.Add(2 * time.Second)
		for _, tool := range tools {
			at = at.Add(gap + time.Duration(rng.IntN(int(gap/time.Millisecond)))*time.Millisecond)
			evs = append(evs, newEvent(p, server, id, at, "tools/call", tool))
		}
		return evs
	}
	for _, p := range plans {
		n := 0
		for at := t0.Add(time.Duration(rng.IntN(300)) * time.Second); at.Before(t0.Add(48 * time.Hour)); at = at.Add(p.every + time.Duration(rng.IntN(120)-60)*time.Second) {
			if p.id == "research-agent" && !at.Before(exfilStart.Add(-30*time.Minute)) {
				break // its last half hour is the exfiltration below
			}
			n++
			tools := make([]string, 3+rng.IntN(5))
			for i := range tools {
				tools[i] = p.tools[rng.IntN(len(p.tools))]
			}
			server := p.servers[n%len(p.servers)]
			out = append(out, session(p, server, fmt.Sprintf("%s-%03d", p.short, n), at, tools, 5*time.Second)...)
		}
	}

	// The exfiltration: list everything, read 40 files in two minutes with huge answers, then
	// a first call of exec_shell.
	research := plans[2]
	tools := []string{"list_files"}
	for range 40 {
		tools = append(tools, "read_file")
	}
	exfil := session(research, "fs", "research-exfil", exfilStart, tools, 1500*time.Millisecond)
	for i := range exfil {
		if exfil[i].Target == "read_file" {
			exfil[i].ResponseBytes = 400_000 + rng.IntN(200_000)
		}
	}
	last := exfil[len(exfil)-1].ObservedAt
	shell := newEvent(research, "fs", "research-exfil", last.Add(4*time.Second), "tools/call", "exec_shell")
	shell.ArgsShape = `{"command":"string"}`
	shell.Flags = []schemas.Flag{{Type: "secret", Severity: schemas.SeverityHigh, Path: "result.content[0].text", Evidence: "aws_access_key_id at offset 112"}}
	exfil = append(exfil, shell)
	out = append(out, exfil...)

	slices.SortStableFunc(out, func(a, b schemas.Event) int { return a.ObservedAt.Compare(b.ObservedAt) })
	return out
}

func fixtureAnomaly(id, agent, server, session, kind, subject string, score float64, first, last time.Time, count int, learning bool) schemas.Anomaly {
	return schemas.Anomaly{
		ID: id, SchemaVersion: schemas.AnomalySchemaVersion, Time: last, AgentID: agent, ServerID: server,
		SessionID: session, Kind: kind, Subject: subject, Score: score, Severity: schemas.SeverityForScore(score),
		Title: fmt.Sprintf("%s: %s %s", agent, kind, subject),
		Explanation: schemas.Explanation{
			Summary: fmt.Sprintf("%s is unusual for %s", kind, agent), Observed: "observed " + kind, Typical: "typical " + kind,
			Model: kind,
		},
		EvidenceEventIDs: []string{}, FirstSeen: first, LastSeen: last, Count: count, Learning: learning,
	}
}

// fixtureAnomalies are written by hand: on day 2, research-agent's exfiltration raises a rate
// spike (critical), large responses (high) and a new tool (high); billing-bot's create_invoice
// definition drifted (medium); support-bot took a new transition (low). Day 1 holds two learning
// anomalies.
func fixtureAnomalies() []schemas.Anomaly {
	x := exfilStart
	return []schemas.Anomaly{
		fixtureAnomaly("an-rate", "research-agent", "fs", "research-exfil", "rate_spike", "", 93, x.Add(time.Minute), x.Add(3*time.Minute), 3, false),
		fixtureAnomaly("an-large", "research-agent", "fs", "research-exfil", "large_response", "read_file", 85, x.Add(40*time.Second), x.Add(80*time.Second), 12, false),
		fixtureAnomaly("an-shell", "research-agent", "fs", "research-exfil", "new_tool", "exec_shell", 78, x.Add(100*time.Second), x.Add(100*time.Second), 1, false),
		fixtureAnomaly("an-drift", "billing-bot", "crm", "billing-120", "tool_drift", "create_invoice", 55, t0.Add(30*time.Hour), t0.Add(30*time.Hour), 1, false),
		fixtureAnomaly("an-trans", "support-bot", "kb", "support-120", "new_transition", "search_kb→get_article", 30, t0.Add(40*time.Hour), t0.Add(41*time.Hour), 2, false),
		fixtureAnomaly("an-learn1", "support-bot", "crm", "", "rate_drop", "", 45, t0.Add(10*time.Hour), t0.Add(10*time.Hour), 1, true),
		fixtureAnomaly("an-learn2", "billing-bot", "crm", "billing-008", "new_tool", "send_email", 50, t0.Add(2*time.Hour), t0.Add(2*time.Hour), 1, false),
	}
}

// fixtureDeliveries: every day-2 anomaly reached the webhook; the syslog sink was down during
// the exfiltration, so the rate spike was dead-lettered and replayed later.
func fixtureDeliveries() []store.Delivery {
	var out []store.Delivery
	for _, a := range fixtureAnomalies() {
		if a.Learning {
			continue
		}
		for _, sink := range []string{"soc-webhook", "siem-syslog"} {
			d := store.Delivery{
				ID: a.ID + "/" + sink, AnomalyID: a.ID, AgentID: a.AgentID, Kind: a.Kind, Severity: string(a.Severity),
				Sink: sink, Status: "delivered", Attempts: 1, Time: a.LastSeen.Add(2 * time.Second),
			}
			if sink == "siem-syslog" && a.ID == "an-rate" {
				d.Status, d.Attempts, d.Error = "dead_lettered", 5, "dial tcp 10.0.0.9:6514: connect: connection refused"
				out = append(out, d)
				d.Status, d.Attempts, d.Error, d.Time = "replayed", 1, "", d.Time.Add(20*time.Minute)
			}
			out = append(out, d)
		}
	}
	return out
}

// newTestDatasource returns a Datasource for the fixture's API with the test token.
func newTestDatasource(t testing.TB) *Datasource {
	t.Helper()
	return newDatasourceFor(t, fixtureAPI, testToken)
}

func newDatasourceFor(t testing.TB, url, token string) *Datasource {
	t.Helper()
	inst, err := NewDatasource(t.Context(), backend.DataSourceInstanceSettings{
		UID: "mcpwatch-test", Name: "mcpwatch", Type: ID, URL: url, JSONData: []byte(`{}`),
		DecryptedSecureJSONData: map[string]string{TokenKey: token},
	})
	require.NoError(t, err)
	d := inst.(*Datasource)
	t.Cleanup(d.Dispose)
	return d
}
