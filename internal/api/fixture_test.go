package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// t0 anchors the fixture; the test server's clock reads t0+1h.
var t0 = time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// eid is the id of fixture event n: a UUID, as Event v1 requires.
func eid(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", n) }

func ev(id, session, agent, server string, minute int, method, target string, status schemas.Status) schemas.Event {
	return schemas.Event{
		ID: id, SchemaVersion: schemas.EventSchemaVersion, ObservedAt: at(minute),
		CollectorID: "test", Source: schemas.SourceHTTPTap, Transport: "streamable_http",
		ProtocolVersion: "2025-11-25", AgentID: agent, AgentSource: "header", ClientName: "claude-code",
		ServerID: server, SessionID: session, JSONRPCID: id, Direction: schemas.ClientToServer,
		Kind: schemas.KindRequest, Method: method, Target: target, Status: status,
		LatencyMicros: 12_345, RequestBytes: 120, ResponseBytes: 2048,
	}
}

// Sessions: s1 (a1@fs, minutes 0–2), s2 (a2@git, 10–11), "s/3" (a1@git, 30–31).
var fixtureEvents = []schemas.Event{
	ev(eid(1), "s1", "a1", "fs", 0, "initialize", "", schemas.StatusOK),
	ev(eid(2), "s1", "a1", "fs", 1, "tools/call", "read_file", schemas.StatusOK),
	ev(eid(3), "s1", "a1", "fs", 2, "tools/call", "write_file", schemas.StatusToolError),
	ev(eid(4), "s2", "a2", "git", 10, "initialize", "", schemas.StatusOK),
	ev(eid(5), "s2", "a2", "git", 11, "tools/call", "git_log", schemas.StatusOK),
	ev(eid(6), "s/3", "a1", "git", 30, "initialize", "", schemas.StatusOK),
	ev(eid(7), "s/3", "a1", "git", 31, "tools/call", "git_push", schemas.StatusError),
}

func anomaly(id, agent, session, kind, subject string, score float64, first, last, count int) schemas.Anomaly {
	return schemas.Anomaly{
		ID: id, SchemaVersion: schemas.AnomalySchemaVersion, Time: at(last), AgentID: agent,
		SessionID: session, Kind: kind, Subject: subject, Score: score,
		Severity: schemas.SeverityForScore(score), Title: agent + " did " + kind,
		Explanation:      schemas.Explanation{Summary: "unusual", Model: "test"},
		EvidenceEventIDs: []string{}, FirstSeen: at(first), LastSeen: at(last), Count: count,
	}
}

func withServer(a schemas.Anomaly, server string) schemas.Anomaly { a.ServerID = server; return a }

var fixtureAnomalies = []schemas.Anomaly{
	withServer(anomaly("an1", "a1", "s1", "new_tool", "write_file", 75, 2, 2, 1), "fs"), // high
	anomaly("an2", "a2", "s2", "rate_spike", "", 25, 10, 20, 3),                         // low
	anomaly("an3", "a1", "s/3", "rate_spike", "git_push", 95, 30, 40, 2),                // critical
}

var fixtureDefinitions = []store.Definition{
	{ServerID: "fs", Kind: "tool", Name: "read_file", Fingerprint: strings.Repeat("a", 64), Definition: `{"name":"read_file"}`, FirstSeen: at(0), LastSeen: at(5)},
	{ServerID: "fs", Kind: "tool", Name: "read_file", Fingerprint: strings.Repeat("b", 64), Definition: `{"description":"now reads secrets too","name":"read_file"}`, FirstSeen: at(20), LastSeen: at(25)},
	{ServerID: "git", Kind: "prompt", Name: "summarise", Fingerprint: strings.Repeat("c", 64), Definition: `{"name":"summarise"}`, FirstSeen: at(10), LastSeen: at(10)},
}

var fixtureDeliveries = []store.Delivery{
	{ID: "d1", AnomalyID: "an1", AgentID: "a1", Kind: "new_tool", Severity: "high", Sink: "soc", Status: "delivered", Attempts: 1, Time: at(3)},
	{ID: "d3", AnomalyID: "an3", AgentID: "a1", Kind: "rate_spike", Severity: "critical", Sink: "soc", Status: "delivered", Attempts: 2, Time: at(31)},
	{ID: "d4", AnomalyID: "an3", AgentID: "a1", Kind: "rate_spike", Severity: "critical", Sink: "syslog", Status: "dead_lettered", Attempts: 5, Error: "connection refused", Time: at(35)},
}

// newEmptyStore returns a migrated SQLite store in a temporary directory, closed after the test.
func newEmptyStore(t testing.TB) store.Store {
	t.Helper()
	ctx := context.Background()
	// Retention is irrelevant: nothing calls DropExpired here.
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "mcpwatch.db"), 3650, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	require.NoError(t, st.Migrate(ctx))
	return st
}

// newTestStore returns a SQLite store holding the fixture.
func newTestStore(t *testing.T) store.Store {
	t.Helper()
	st := newEmptyStore(t)
	seed(t, st)
	return st
}

// seed writes the fixture: events, anomalies, definitions, deliveries and the baselines a
// real detector learnt.
func seed(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, st.InsertEvents(ctx, fixtureEvents))
	require.NoError(t, st.UpsertAnomalies(ctx, fixtureAnomalies))
	require.NoError(t, st.SaveDefinitions(ctx, fixtureDefinitions))
	require.NoError(t, st.RecordDeliveries(ctx, fixtureDeliveries))
	require.NoError(t, st.SaveBaselines(ctx, fixtureBaselines(t)))
}

var (
	baselinesOnce sync.Once
	baselines     []store.Baseline
)

// fixtureBaselines are the snapshots a real detector saved after two days of a1's history
// before t0 (sessions of tools/list, six read_file and three write_file calls, two calls a
// minute). They are learnt once and written to every test store, so every backend holds the
// same bytes.
func fixtureBaselines(t testing.TB) []store.Baseline {
	t.Helper()
	baselinesOnce.Do(func() {
		ctx := context.Background()
		st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "detector.db"), 3650, pipeline.Settings{})
		require.NoError(t, err)
		defer st.Close()
		require.NoError(t, st.Migrate(ctx))
		var busCfg bus.Config
		busCfg.SetDefaults()
		var cfg detector.Config
		cfg.SetDefaults()
		d, err := detector.New(cfg, st, []string{"127.0.0.1:1"}, busCfg, pipeline.Settings{})
		require.NoError(t, err)
		calls := []string{"", "read_file", "read_file", "read_file", "write_file", "read_file", "read_file", "write_file", "read_file", "write_file"}
		n := 0
		for ts := t0.Add(-48 * time.Hour); ts.Before(t0); ts = ts.Add(30 * time.Second) {
			method, tool := "tools/call", calls[n%len(calls)]
			if tool == "" {
				method = "tools/list"
			}
			e := ev(eid(1000+n), fmt.Sprintf("hist-%d", n/len(calls)), "a1", "fs", 0, method, tool, schemas.StatusOK)
			e.ObservedAt = ts
			e.RequestBytes, e.ResponseBytes = 150, 1000+40*(n%50)
			d.Observe(&e, ts)
			n++
		}
		require.NoError(t, d.Shutdown(ctx)) // saves the baselines
		for _, model := range []string{detector.ModelAgent, detector.ModelRequestRate, detector.ModelToolSequence, detector.ModelContextSize, detector.ModelFirstSeenTool} {
			bs, err := st.LoadBaselines(ctx, model)
			require.NoError(t, err)
			for _, b := range bs {
				b.UpdatedAt = t0 // the snapshot's wall-clock time, fixed for comparisons
				baselines = append(baselines, b)
			}
		}
	})
	require.NotEmpty(t, baselines)
	return baselines
}

// failingStore fails every query, as a broken database would.
type failingStore struct{ store.Store }

var errDiskOnFire = errors.New("sqlite: disk I/O error at /secret/path/mcpwatch.db")

func (failingStore) Sessions(context.Context, store.SessionQuery) ([]store.Session, error) {
	return nil, errDiskOnFire
}
func (failingStore) Session(context.Context, string) (store.Session, error) {
	return store.Session{}, errDiskOnFire
}
func (failingStore) SessionEvents(context.Context, string, int) ([]schemas.Event, error) {
	return nil, errDiskOnFire
}
func (failingStore) Anomalies(context.Context, store.AnomalyQuery) ([]schemas.Anomaly, error) {
	return nil, errDiskOnFire
}
func (failingStore) Anomaly(context.Context, string) (schemas.Anomaly, error) {
	return schemas.Anomaly{}, errDiskOnFire
}
func (failingStore) Agents(context.Context, store.AgentQuery) ([]store.Agent, error) {
	return nil, errDiskOnFire
}
func (failingStore) Agent(context.Context, string, store.AgentQuery) (store.Agent, error) {
	return store.Agent{}, errDiskOnFire
}
func (failingStore) TimeSeries(context.Context, store.SeriesQuery) ([]store.Series, error) {
	return nil, errDiskOnFire
}
func (failingStore) Values(context.Context, string, store.ValuesQuery) ([]string, error) {
	return nil, errDiskOnFire
}
func (failingStore) Definitions(context.Context, store.DefinitionQuery) ([]store.Definition, error) {
	return nil, errDiskOnFire
}
func (failingStore) Deliveries(context.Context, store.DeliveryQuery) ([]store.Delivery, error) {
	return nil, errDiskOnFire
}
func (failingStore) LoadBaselines(context.Context, string) ([]store.Baseline, error) {
	return nil, errDiskOnFire
}
func (failingStore) LoadBaselinesOf(context.Context, string, []string) ([]store.Baseline, error) {
	return nil, errDiskOnFire
}

type testServer struct {
	*Server
	reg *prometheus.Registry
}

func newTestServer(t *testing.T, cfg Config, st store.Store, ready func() error) testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, st, reg, ready, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	s.now = func() time.Time { return at(60) }
	return testServer{Server: s, reg: reg}
}

// do serves one request in-process and returns status, headers and body.
func (s testServer) do(t *testing.T, target string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, rec.Result().Header, body
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(body, &v), "body: %s", body)
	return v
}
