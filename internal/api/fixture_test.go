package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// t0 anchors the fixture; the test server's clock reads t0+1h.
var t0 = time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

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
	ev("e1", "s1", "a1", "fs", 0, "initialize", "", schemas.StatusOK),
	ev("e2", "s1", "a1", "fs", 1, "tools/call", "read_file", schemas.StatusOK),
	ev("e3", "s1", "a1", "fs", 2, "tools/call", "write_file", schemas.StatusToolError),
	ev("e4", "s2", "a2", "git", 10, "initialize", "", schemas.StatusOK),
	ev("e5", "s2", "a2", "git", 11, "tools/call", "git_log", schemas.StatusOK),
	ev("e6", "s/3", "a1", "git", 30, "initialize", "", schemas.StatusOK),
	ev("e7", "s/3", "a1", "git", 31, "tools/call", "git_push", schemas.StatusError),
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

var fixtureAnomalies = []schemas.Anomaly{
	anomaly("an1", "a1", "s1", "new_tool", "write_file", 75, 2, 2, 1),    // high
	anomaly("an2", "a2", "s2", "rate_spike", "", 25, 10, 20, 3),          // low
	anomaly("an3", "a1", "s/3", "rate_spike", "git_push", 95, 30, 40, 2), // critical
}

// newEmptyStore returns a migrated SQLite store in a temporary directory, closed after the test.
func newEmptyStore(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	// Retention is irrelevant: nothing calls DropExpired here.
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "mcpwatch.db"), 3650, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	require.NoError(t, st.Migrate(ctx))
	return st
}

// newTestStore returns a store holding the fixture.
func newTestStore(t *testing.T) store.Store {
	t.Helper()
	st := newEmptyStore(t)
	ctx := context.Background()
	require.NoError(t, st.InsertEvents(ctx, fixtureEvents))
	require.NoError(t, st.UpsertAnomalies(ctx, fixtureAnomalies))
	return st
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
