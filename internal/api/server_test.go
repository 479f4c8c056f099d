package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string // substring; empty means valid
	}{
		{"zero value binds loopback", Config{}, ""},
		{"default", DefaultConfig(), ""},
		{"ipv6 loopback", Config{Listen: "[::1]:7410"}, ""},
		{"localhost", Config{Listen: "localhost:0"}, ""},
		{"public with token", Config{Listen: "0.0.0.0:7410", Tokens: []string{"s3cret"}}, ""},
		{"public, explicitly open", Config{Listen: "0.0.0.0:7410", AllowUnauthenticated: true}, ""},
		{"public without token", Config{Listen: "0.0.0.0:7410"}, "api.tokens: required when api.listen (0.0.0.0:7410) is not a loopback address"},
		{"all interfaces without token", Config{Listen: ":7410"}, "api.tokens: required"},
		{"lan address without token", Config{Listen: "10.1.2.3:7410"}, "api.tokens: required"},
		{"no port", Config{Listen: "127.0.0.1"}, "api.listen: must be host:port"},
		{"bad port", Config{Listen: "127.0.0.1:99999"}, "api.listen: port \"99999\""},
		{"empty token", Config{Tokens: []string{"ok", ""}}, "api.tokens[1]: must be non-empty"},
		{"token with space", Config{Tokens: []string{"a b"}}, "api.tokens[0]"},
		{"cert without key", Config{TLS: TLSConfig{CertFile: "c.pem"}}, "api.tls.key_file: required"},
		{"key without cert", Config{TLS: TLSConfig{KeyFile: "k.pem"}}, "api.tls.cert_file: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestConfigSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	require.Equal(t, DefaultConfig(), c)
	c = Config{Listen: "127.0.0.1:9999"}
	c.SetDefaults()
	require.Equal(t, "127.0.0.1:9999", c.Listen, "set values are kept")
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "2026-11-03T02:15:00Z", want: time.Date(2026, 11, 3, 2, 15, 0, 0, time.UTC)},
		{in: "2026-11-03T03:15:00.5+01:00", want: time.Date(2026, 11, 3, 2, 15, 0, 5e8, time.UTC)},
		{in: "2026-11-01", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{in: "15m", want: now.Add(-15 * time.Minute)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "0s", want: now},
		{in: "-2h", err: true},
		{in: "yesterday", err: true},
		{in: "1.5d", err: true},
		{in: "d", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, now)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "got %v want %v", got, tt.want)
		})
	}
}

func sessionIDs(ss []store.Session) []string {
	ids := []string{}
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

func TestListSessions(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil) // clock: t0+60m
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"s/3", "s2", "s1"}},
		{"agent=a1", []string{"s/3", "s1"}},
		{"server=git", []string{"s/3", "s2"}},
		{"agent=a1&server=git", []string{"s/3"}},
		{"agent=nobody", []string{}},
		{"limit=2", []string{"s/3", "s2"}},
		{"since=" + url.QueryEscape(at(11).Format(time.RFC3339)), []string{"s/3", "s2"}}, // active at or after
		{"until=" + url.QueryEscape(at(10).Format(time.RFC3339)), []string{"s1"}},        // started before
		{"since=50m", []string{"s/3", "s2"}},                                             // t0+10m onwards
		{"since=50m&until=30m", []string{"s2"}},
		{"since=2026-11-03&until=2026-11-04", []string{"s/3", "s2", "s1"}},
		{"tool=read_file", []string{"s1"}},
		{"tool=git_push&agent=a1", []string{"s/3"}},
		{"tool=git_push&agent=a2", []string{}},
		{"min_score=25", []string{"s/3", "s2", "s1"}},
		{"min_score=25.5", []string{"s/3", "s1"}},
		{"min_score=95", []string{"s/3"}},
		{"min_score=100", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, h, body := s.do(t, "/api/v1/sessions?"+tt.query)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			require.Equal(t, "application/json", h.Get("Content-Type"))
			got := decode[SessionsResponse](t, body)
			require.Equal(t, tt.want, sessionIDs(got.Sessions))
		})
	}

	t.Run("summary fields", func(t *testing.T) {
		_, _, body := s.do(t, "/api/v1/sessions?agent=a1&server=fs")
		got := decode[SessionsResponse](t, body).Sessions
		require.Len(t, got, 1)
		require.Equal(t, store.Session{
			ID: "s1", AgentID: "a1", ServerID: "fs", ClientName: "claude-code", ProtocolVersion: "2025-11-25",
			FirstSeen: at(0), LastSeen: at(2), Events: 3, Errors: 1, Tools: []string{"read_file", "write_file"},
			MaxScore: 75, Anomalies: 1,
		}, got[0])
	})
	t.Run("empty lists are [] not null", func(t *testing.T) {
		_, _, body := s.do(t, "/api/v1/sessions?agent=nobody")
		require.JSONEq(t, `{"sessions":[]}`, string(body))
		_, _, body = s.do(t, "/api/v1/anomalies?agent=nobody")
		require.JSONEq(t, `{"anomalies":[]}`, string(body))
	})
}

func TestSessionWithoutToolsHasEmptyList(t *testing.T) {
	st := newTestStore(t)
	require.NoError(t, st.InsertEvents(context.Background(), []schemas.Event{
		ev(eid(9), "s9", "a9", "fs", 50, "initialize", "", schemas.StatusOK),
	}))
	s := newTestServer(t, Config{}, st, nil)
	_, _, body := s.do(t, "/api/v1/sessions?agent=a9")
	require.Contains(t, string(body), `"tools":[]`)
	_, _, body = s.do(t, "/api/v1/sessions/s9")
	require.Contains(t, string(body), `"tools":[]`)
}

func TestBadParameters(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	tests := []struct {
		target string
		param  string // the error must start with it
	}{
		{"/api/v1/sessions?limit=0", "limit"},
		{"/api/v1/sessions?limit=-5", "limit"},
		{"/api/v1/sessions?limit=ten", "limit"},
		{"/api/v1/sessions?limit=10001", "limit"},
		{"/api/v1/sessions?since=yesterday", "since"},
		{"/api/v1/sessions?until=-3h", "until"},
		{"/api/v1/sessions?since=1h&until=2h", "until"},
		{"/api/v1/sessions?agnet=a1", "agnet"},
		{"/api/v1/sessions?agent=a1&agent=a2", "agent"},
		{"/api/v1/sessions/s1?verbose=1", "verbose"},
		{"/api/v1/sessions/s1/events?limit=many", "limit"},
		{"/api/v1/sessions/s1/events?since=1h", "since"},
		{"/api/v1/anomalies?min_severity=severe", "min_severity"},
		{"/api/v1/anomalies?since=2026-13-01", "since"},
		{"/api/v1/anomalies?limit=1e3", "limit"},
		{"/api/v1/anomalies?tool=x", "tool"},
		{"/api/v1/anomalies?min_score=101", "min_score"},
		{"/api/v1/anomalies?min_score=-1", "min_score"},
		{"/api/v1/anomalies?min_score=NaN", "min_score"},
		{"/api/v1/sessions?min_score=high", "min_score"},
		{"/api/v1/sessions?cursor=abc", "cursor"},
		{"/api/v1/anomalies?cursor=%%%", "cursor"},
		{"/api/v1/anomalies/an1?limit=1", "limit"},
		{"/api/v1/agents?agent=a1", "agent"},
		{"/api/v1/agents?since=never", "since"},
		{"/api/v1/agents?limit=0", "limit"},
		{"/api/v1/agents/a1?limit=5", "limit"},
		{"/api/v1/agents/a1?until=yesterday", "until"},
		{"/api/v1/agents/a1/profile?since=1h", "since"},
		{"/api/v1/timeseries", "metric"},
		{"/api/v1/timeseries?metric=bytes", "metric"},
		{"/api/v1/timeseries?metric=calls&by=kind", "by"},
		{"/api/v1/timeseries?metric=anomalies&by=tool", "by"},
		{"/api/v1/timeseries?metric=deliveries&by=server", "by"},
		{"/api/v1/timeseries?metric=anomalies&tool=x", "tool"},
		{"/api/v1/timeseries?metric=deliveries&server=x", "server"},
		{"/api/v1/timeseries?metric=calls&step=500ms", "step"},
		{"/api/v1/timeseries?metric=calls&step=1.5us", "step"},
		{"/api/v1/timeseries?metric=calls&step=minute", "step"},
		{"/api/v1/timeseries?metric=calls&step=1s&since=3h", "step"}, // 10,800 buckets
		{"/api/v1/timeseries?metric=calls&since=2h&until=3h", "until"},
		{"/api/v1/timeseries?metric=calls&kind=x", "kind"},
		{"/api/v1/values/agents?kind=x", "kind"},
		{"/api/v1/values/tools?since=x", "since"},
		{"/api/v1/definitions?kind=function", "kind"},
		{"/api/v1/definitions?agent=a1", "agent"},
		{"/api/v1/deliveries?status=lost", "status"},
		{"/api/v1/deliveries?limit=99999", "limit"},
		{"/api/v1/openapi.json?v=2", "v"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			code, h, body := s.do(t, tt.target)
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, "application/json", h.Get("Content-Type"))
			msg := decode[ErrorResponse](t, body).Error
			require.True(t, strings.HasPrefix(msg, tt.param+": "), "error %q should name %q", msg, tt.param)
		})
	}
}

func TestGetSession(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)

	code, _, body := s.do(t, "/api/v1/sessions/s2")
	require.Equal(t, http.StatusOK, code)
	got := decode[store.Session](t, body)
	require.Equal(t, "a2", got.AgentID)
	require.Equal(t, []string{"git_log"}, got.Tools)

	code, _, body = s.do(t, "/api/v1/sessions/s%2F3") // an id containing a slash
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	require.Equal(t, "s/3", decode[store.Session](t, body).ID)

	code, h, body := s.do(t, "/api/v1/sessions/nope")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, `session "nope" not found`, decode[ErrorResponse](t, body).Error)
}

func TestSessionEvents(t *testing.T) {
	st := newTestStore(t)
	// Inserted out of order: the API must return observed order.
	require.NoError(t, st.InsertEvents(context.Background(), []schemas.Event{
		ev(eid(0), "s1", "a1", "fs", -1, "ping", "", schemas.StatusOK),
	}))
	s := newTestServer(t, Config{}, st, nil)

	eventIDs := func(es []schemas.Event) []string {
		ids := []string{}
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		return ids
	}
	code, _, body := s.do(t, "/api/v1/sessions/s1/events")
	require.Equal(t, http.StatusOK, code)
	got := decode[EventsResponse](t, body)
	require.Equal(t, "s1", got.SessionID)
	require.Equal(t, []string{eid(0), eid(1), eid(2), eid(3)}, eventIDs(got.Events))
	require.Equal(t, fixtureEvents[2], got.Events[3], "events round-trip through JSON unchanged")

	_, _, body = s.do(t, "/api/v1/sessions/s1/events?limit=2")
	require.Equal(t, []string{eid(0), eid(1)}, eventIDs(decode[EventsResponse](t, body).Events))

	_, _, body = s.do(t, "/api/v1/sessions/s%2F3/events")
	require.Equal(t, []string{eid(6), eid(7)}, eventIDs(decode[EventsResponse](t, body).Events))

	code, _, body = s.do(t, "/api/v1/sessions/nope/events")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, decode[ErrorResponse](t, body).Error, `"nope" not found`)
}

func TestListAnomalies(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil) // clock: t0+60m
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"an3", "an2", "an1"}},
		{"agent=a1", []string{"an3", "an1"}},
		{"kind=rate_spike", []string{"an3", "an2"}},
		{"agent=a2&kind=new_tool", []string{}},
		{"server=fs", []string{"an1"}},
		{"session=s%2F3", []string{"an3"}},
		{"session=s2&agent=a2", []string{"an2"}},
		{"min_score=75", []string{"an3", "an1"}},
		{"min_score=75.5", []string{"an3"}},
		{"min_severity=info", []string{"an3", "an2", "an1"}},
		{"min_severity=medium", []string{"an3", "an1"}},
		{"min_severity=critical", []string{"an3"}},
		{"limit=1", []string{"an3"}},
		{"since=41m", []string{"an3", "an2"}}, // last seen at or after t0+19m
		{"until=" + url.QueryEscape(at(10).Format(time.RFC3339)), []string{"an1"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, h, body := s.do(t, "/api/v1/anomalies?"+tt.query)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			require.Equal(t, "application/json", h.Get("Content-Type"))
			ids := []string{}
			for _, a := range decode[AnomaliesResponse](t, body).Anomalies {
				ids = append(ids, a.ID)
			}
			require.Equal(t, tt.want, ids)
		})
	}
	_, _, body := s.do(t, "/api/v1/anomalies?kind=new_tool")
	got := decode[AnomaliesResponse](t, body).Anomalies
	require.Len(t, got, 1)
	require.Equal(t, fixtureAnomalies[0], got[0])
}

func TestStoreFailure(t *testing.T) {
	var logs bytes.Buffer
	settings := pipeline.Settings{Logger: slogTo(&logs)}
	s, err := New(Config{}, failingStore{newEmptyStore(t)}, nil, nil, settings)
	require.NoError(t, err)
	ts := testServer{Server: s}
	for _, target := range []string{
		"/api/v1/sessions", "/api/v1/sessions/s1", "/api/v1/sessions/s1/events", "/api/v1/anomalies",
		"/api/v1/anomalies/an1", "/api/v1/agents", "/api/v1/agents/a1", "/api/v1/agents/a1/profile",
		"/api/v1/timeseries?metric=calls", "/api/v1/values/agents", "/api/v1/definitions", "/api/v1/deliveries",
	} {
		t.Run(target, func(t *testing.T) {
			code, h, body := ts.do(t, target)
			require.Equal(t, http.StatusInternalServerError, code)
			require.Equal(t, "application/json", h.Get("Content-Type"))
			msg := decode[ErrorResponse](t, body).Error
			require.Contains(t, msg, "internal error")
			require.NotContains(t, msg, "/secret/path", "store details must not reach clients")
		})
	}
	require.Contains(t, logs.String(), "disk I/O error", "the detail is logged")
}

func TestAuth(t *testing.T) {
	s := newTestServer(t, Config{Tokens: []string{"first-token", "second-token"}}, newTestStore(t), nil)
	tests := []struct {
		name   string
		target string
		header []string
		want   int
	}{
		{"no header", "/api/v1/sessions", nil, http.StatusUnauthorized},
		{"wrong token", "/api/v1/sessions", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"prefix of a token", "/api/v1/sessions", []string{"Authorization", "Bearer first"}, http.StatusUnauthorized},
		{"empty bearer", "/api/v1/anomalies", []string{"Authorization", "Bearer "}, http.StatusUnauthorized},
		{"basic scheme", "/api/v1/sessions", []string{"Authorization", "Basic Zmlyc3QtdG9rZW4="}, http.StatusUnauthorized},
		{"token without scheme", "/api/v1/sessions", []string{"Authorization", "first-token"}, http.StatusUnauthorized},
		{"first token", "/api/v1/sessions", []string{"Authorization", "Bearer first-token"}, http.StatusOK},
		{"second token", "/api/v1/anomalies", []string{"Authorization", "Bearer second-token"}, http.StatusOK},
		{"scheme is case-insensitive", "/api/v1/sessions/s1", []string{"Authorization", "bearer first-token"}, http.StatusOK},
		{"events need a token", "/api/v1/sessions/s1/events", nil, http.StatusUnauthorized},
		{"missing session needs a token before 404", "/api/v1/sessions/nope", nil, http.StatusUnauthorized},
		{"unknown API path needs a token before 404", "/api/v1/nothing", nil, http.StatusUnauthorized},
		{"unknown API path with a token", "/api/v1/nothing", []string{"Authorization", "Bearer first-token"}, http.StatusNotFound},
		{"openapi needs a token", "/api/v1/openapi.json", nil, http.StatusUnauthorized},
		{"agents need a token", "/api/v1/agents", nil, http.StatusUnauthorized},
		{"profile needs a token", "/api/v1/agents/a1/profile", nil, http.StatusUnauthorized},
		{"timeseries need a token", "/api/v1/timeseries?metric=calls", nil, http.StatusUnauthorized},
		{"values need a token", "/api/v1/values/agents", nil, http.StatusUnauthorized},
		{"definitions need a token", "/api/v1/definitions", nil, http.StatusUnauthorized},
		{"deliveries need a token", "/api/v1/deliveries", nil, http.StatusUnauthorized},
		{"anomaly needs a token", "/api/v1/anomalies/an1", nil, http.StatusUnauthorized},
		{"with a token", "/api/v1/deliveries", []string{"Authorization", "Bearer second-token"}, http.StatusOK},
		{"healthz is open", "/healthz", nil, http.StatusOK},
		{"readyz is open", "/readyz", nil, http.StatusOK},
		{"metrics are open", "/metrics", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := s.do(t, tt.target, tt.header...)
			require.Equal(t, tt.want, code, "body: %s", body)
			if code == http.StatusUnauthorized {
				require.Equal(t, `Bearer realm="mcpwatch"`, h.Get("WWW-Authenticate"))
				require.Equal(t, "missing or invalid bearer token", decode[ErrorResponse](t, body).Error)
			}
		})
	}

	open := newTestServer(t, Config{}, newTestStore(t), nil)
	code, _, _ := open.do(t, "/api/v1/sessions")
	require.Equal(t, http.StatusOK, code, "no tokens configured: no auth")
}

func TestHealthAndReadiness(t *testing.T) {
	var notReady error = errors.New("store migration pending")
	s := newTestServer(t, Config{}, newTestStore(t), func() error { return notReady })

	code, _, body := s.do(t, "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", string(body))

	code, _, body = s.do(t, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, string(body), "store migration pending")

	notReady = nil
	code, _, _ = s.do(t, "/readyz")
	require.Equal(t, http.StatusOK, code)
}

func TestMetrics(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	s.do(t, "/api/v1/sessions")
	s.do(t, "/api/v1/sessions")
	s.do(t, "/api/v1/sessions/nope")
	s.do(t, "/api/v1/sessions?limit=x")
	s.do(t, "/no/such/route")

	code, h, body := s.do(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, h.Get("Content-Type"), "text/plain")
	text := string(body)
	for _, want := range []string{
		`mcpwatch_api_requests_total{code="200",route="/api/v1/sessions"} 2`,
		`mcpwatch_api_requests_total{code="400",route="/api/v1/sessions"} 1`,
		`mcpwatch_api_requests_total{code="404",route="/api/v1/sessions/{id}"} 1`,
		`mcpwatch_api_requests_total{code="404",route="unmatched"} 1`,
		`mcpwatch_api_request_duration_seconds_count{route="/api/v1/sessions"} 3`,
		"# TYPE mcpwatch_api_request_duration_seconds histogram",
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "/no/such/route", "raw paths never become labels")

	// Registering twice on one registry is a configuration bug New must report.
	_, err := New(Config{}, newEmptyStore(t), nil, nil, pipeline.Settings{Registry: s.reg})
	require.ErrorContains(t, err, "cannot register api metrics")
}

func TestMethodNotAllowed(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/sessions", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

func TestNewRejects(t *testing.T) {
	_, err := New(Config{Listen: "0.0.0.0:1"}, newEmptyStore(t), nil, nil, pipeline.Settings{})
	require.ErrorContains(t, err, "api.tokens")
	_, err = New(Config{}, nil, nil, nil, pipeline.Settings{})
	require.ErrorContains(t, err, "store is nil")
	_, err = New(Config{TLS: TLSConfig{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}}, newEmptyStore(t), nil, nil, pipeline.Settings{})
	require.ErrorContains(t, err, "cannot load api.tls certificate")
}
