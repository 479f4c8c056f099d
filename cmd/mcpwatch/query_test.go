package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

var qt0 = time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)

func qev(id, session, agent, server string, sec int, method, target string, status schemas.Status) schemas.Event {
	return schemas.Event{
		ID: id, SchemaVersion: schemas.EventSchemaVersion, ObservedAt: qt0.Add(time.Duration(sec)*time.Second + 250*time.Millisecond),
		CollectorID: "test", Source: schemas.SourceHTTPTap, Transport: "streamable_http", ProtocolVersion: "2025-11-25",
		AgentID: agent, AgentSource: "header", ClientName: "claude-code", ServerID: server, SessionID: session,
		JSONRPCID: id, Direction: schemas.ClientToServer, Kind: schemas.KindRequest, Method: method, Target: target,
		Status: status, LatencyMicros: 12_345, RequestBytes: 120, ResponseBytes: 2048,
	}
}

func queryFixture() ([]schemas.Event, []schemas.Anomaly) {
	events := []schemas.Event{
		qev("e1", "s1", "agent-1", "fs", 0, "initialize", "", schemas.StatusOK),
		qev("e2", "s1", "agent-1", "fs", 60, "tools/call", "read_file", schemas.StatusOK),
		qev("e3", "s1", "agent-1", "fs", 120, "tools/call", "write_file", schemas.StatusError),
		qev("e4", "s2", "agent-2", "git", 600, "tools/call", "git_log", schemas.StatusOK),
	}
	events[2].ErrorCode = -32603
	events[2].LatencyMicros = 1_500_000
	note := qev("e5", "s1", "agent-1", "fs", 121, "notifications/progress", "", schemas.StatusOK)
	note.Kind, note.Direction, note.LatencyMicros, note.ResponseBytes = schemas.KindNotification, schemas.ServerToClient, 0, 0
	note.Flags = []schemas.Flag{{Type: "hidden_unicode", Severity: schemas.SeverityMedium}}
	events = append(events, note)

	anomalies := []schemas.Anomaly{{
		ID: "an1", SchemaVersion: 1, Time: qt0.Add(2 * time.Minute), AgentID: "agent-1", SessionID: "s1",
		Kind: "new_tool", Subject: "write_file", Score: 75, Severity: schemas.SeverityHigh,
		Title: "agent-1 called write_file for the first time", EvidenceEventIDs: []string{"e3"},
		FirstSeen: qt0.Add(2 * time.Minute), LastSeen: qt0.Add(2 * time.Minute), Count: 1,
		Explanation: schemas.Explanation{Summary: "first call", Model: "first_seen_tool"},
	}, {
		ID: "an2", SchemaVersion: 1, Time: qt0.Add(20 * time.Minute), AgentID: "agent-2", SessionID: "s2",
		Kind: "rate_spike", Score: 25.4, Severity: schemas.SeverityLow, Title: "agent-2 call rate above its band",
		EvidenceEventIDs: []string{}, FirstSeen: qt0.Add(10 * time.Minute), LastSeen: qt0.Add(20 * time.Minute),
		Count: 3, Learning: true, Explanation: schemas.Explanation{Summary: "busy", Model: "rate"},
	}}
	return events, anomalies
}

// newQueryAPI serves the real API over a real store holding the fixture.
func newQueryAPI(t *testing.T, tokens ...string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "mcpwatch.db"), 3650, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	require.NoError(t, st.Migrate(ctx))
	events, anomalies := queryFixture()
	require.NoError(t, st.InsertEvents(ctx, events))
	require.NoError(t, st.UpsertAnomalies(ctx, anomalies))

	srv, err := api.New(api.Config{Tokens: tokens}, st, nil, nil, pipeline.Settings{})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

type queryResult struct {
	code           int
	stdout, stderr string
}

func runQuery(t *testing.T, fn func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int, args ...string) queryResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := fn(context.Background(), args, &stdout, &stderr)
	return queryResult{code, stdout.String(), stderr.String()}
}

func sessionsCmd(ctx context.Context, args []string, o, e *bytes.Buffer) int {
	return runSessions(ctx, args, o, e)
}

func anomaliesCmd(ctx context.Context, args []string, o, e *bytes.Buffer) int {
	return runAnomalies(ctx, args, o, e)
}

func TestSessionsList(t *testing.T) {
	t.Setenv("MCPWATCH_API", "")
	t.Setenv("MCPWATCH_TOKEN", "")
	url := newQueryAPI(t)

	r := runQuery(t, sessionsCmd, "list", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"SESSION  AGENT    SERVER  CLIENT       FIRST SEEN            LAST SEEN             EVENTS  ERRORS  TOOLS\n"+
		"s2       agent-2  git     claude-code  2026-11-03T02:10:00Z  2026-11-03T02:10:00Z  1       0       git_log\n"+
		"s1       agent-1  fs      claude-code  2026-11-03T02:00:00Z  2026-11-03T02:02:01Z  4       1       read_file,write_file\n",
		r.stdout)
	require.Empty(t, r.stderr)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "agent-2", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got api.SessionsResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got.Sessions, 1)
	require.Equal(t, "s2", got.Sessions[0].ID)
	require.Contains(t, r.stdout, "\n  \"sessions\": [", "the API's shape, indented")

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--server", "fs", "--since", "2026-11-03T02:01:00Z", "--until", "2026-11-03T03:00:00Z", "--limit", "5", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got.Sessions, 1)
	require.Equal(t, "s1", got.Sessions[0].ID)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--limit", "1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 2, strings.Count(r.stdout, "\n"), "header and one row")

	// Relative times count back from the local clock.
	r = runQuery(t, sessionsCmd, "list", "--api", url, "--since", "3650d", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got.Sessions, 2)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "nobody")
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stdout)
	require.Equal(t, "No sessions found.\n", r.stderr)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "nobody", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.JSONEq(t, `{"sessions":[]}`, r.stdout)

	t.Setenv("MCPWATCH_API", url)
	r = runQuery(t, sessionsCmd, "list", "--agent", "agent-1")
	require.Equal(t, 0, r.code, "MCPWATCH_API is the default --api: %s", r.stderr)
	require.Contains(t, r.stdout, "s1 ")
}

func TestSessionsShow(t *testing.T) {
	url := newQueryAPI(t)

	r := runQuery(t, sessionsCmd, "show", "s1", "--api", url) // flags after the ID work too
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"Session:    s1\n"+
		"Agent:      agent-1\n"+
		"Server:     fs\n"+
		"Client:     claude-code\n"+
		"Protocol:   2025-11-25\n"+
		"First seen: 2026-11-03T02:00:00Z\n"+
		"Last seen:  2026-11-03T02:02:01Z\n"+
		"Events:     4 (1 errors)\n"+
		"Tools:      read_file, write_file\n"+
		"\n"+
		"TIME                  DIR  METHOD                  TARGET      STATUS        LATENCY (ms)  REQ BYTES  RESP BYTES  FLAGS\n"+
		"2026-11-03T02:00:00Z  c2s  initialize              -           ok            12.3          120        2048        -\n"+
		"2026-11-03T02:01:00Z  c2s  tools/call              read_file   ok            12.3          120        2048        -\n"+
		"2026-11-03T02:02:00Z  c2s  tools/call              write_file  error -32603  1500.0        120        2048        -\n"+
		"2026-11-03T02:02:01Z  s2c  notifications/progress  -           ok            -             120        0           hidden_unicode(medium)\n",
		r.stdout)

	r = runQuery(t, sessionsCmd, "show", "--api", url, "--limit", "2", "s1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "tools/call  read_file  ok")
	require.NotContains(t, r.stdout, "write_file  error")
	require.NotContains(t, r.stdout, "02:02:00Z")
	require.Contains(t, r.stdout, "Showing the first 2 of 4 events; use --limit to see more.")

	r = runQuery(t, sessionsCmd, "show", "s1", "--api", url, "-o", "json", "--limit", "3")
	require.Equal(t, 0, r.code, r.stderr)
	var got struct {
		Session store.Session   `json:"session"`
		Events  []schemas.Event `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, "s1", got.Session.ID)
	require.Equal(t, 4, got.Session.Events)
	events, _ := queryFixture()
	require.Equal(t, events[:3], got.Events)

	r = runQuery(t, sessionsCmd, "show", "nope", "--api", url)
	require.Equal(t, 1, r.code)
	require.Empty(t, r.stdout)
	require.Equal(t, "mcpwatch sessions show: mcpwatch API answered 404 Not Found: session \"nope\" not found\n", r.stderr)
}

func TestAnomaliesList(t *testing.T) {
	url := newQueryAPI(t)

	r := runQuery(t, anomaliesCmd, "list", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"LAST SEEN             SEVERITY        SCORE  AGENT    SESSION  KIND        SUBJECT     COUNT  TITLE\n"+
		"2026-11-03T02:20:00Z  low (learning)  25     agent-2  s2       rate_spike  -           3      agent-2 call rate above its band\n"+
		"2026-11-03T02:02:00Z  high            75     agent-1  s1       new_tool    write_file  1      agent-1 called write_file for the first time\n",
		r.stdout)

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "--min-severity", "medium", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got api.AnomaliesResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	_, want := queryFixture()
	require.Equal(t, want[:1], got.Anomalies)

	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--kind", "rate_spike"}, []string{"an2"}},
		{[]string{"--agent", "agent-1"}, []string{"an1"}},
		{[]string{"--since", "2026-11-03T02:15:00Z"}, []string{"an2"}},  // last seen at or after
		{[]string{"--until", "2026-11-03T02:05:00Z"}, []string{"an1"}},  // first seen before
		{[]string{"--since", "3650d", "--limit", "1"}, []string{"an2"}}, // newest first
	} {
		r = runQuery(t, anomaliesCmd, append([]string{"list", "--api", url, "-o", "json"}, tt.args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		ids := []string{}
		for _, a := range got.Anomalies {
			ids = append(ids, a.ID)
		}
		require.Equal(t, tt.want, ids, "%v", tt.args)
	}

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "--kind", "nothing")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "No anomalies found.\n", r.stderr)
}

func TestQueryUsage(t *testing.T) {
	tests := []struct {
		name   string
		fn     func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"sessions help", sessionsCmd, []string{"--help"}, 0, "mcpwatch sessions show ID", ""},
		{"sessions list help", sessionsCmd, []string{"list", "--help"}, 0, "-since T", ""},
		{"sessions list -h", sessionsCmd, []string{"list", "-h"}, 0, "-agent id", ""},
		{"sessions show help", sessionsCmd, []string{"show", "--help"}, 0, "at most N events", ""},
		{"anomalies list help", anomaliesCmd, []string{"list", "--help"}, 0, "-min-severity severe", ""},
		{"anomalies help", anomaliesCmd, []string{"help"}, 0, "mcpwatch anomalies list", ""},
		{"no command", sessionsCmd, nil, 2, "", "mcpwatch sessions: missing command"},
		{"unknown command", anomaliesCmd, []string{"show"}, 2, "", `mcpwatch anomalies: unknown command "show"`},
		{"unknown flag", sessionsCmd, []string{"list", "--agnet", "a"}, 2, "", "flag provided but not defined: -agnet"},
		{"bad limit", sessionsCmd, []string{"list", "--limit", "-1"}, 2, "", "--limit: must be from 1 to 10000"},
		{"limit too big", anomaliesCmd, []string{"list", "--limit", "10001"}, 2, "", "--limit"},
		{"limit not a number", sessionsCmd, []string{"show", "x", "--limit", "many"}, 2, "", `invalid value "many" for flag -limit`},
		{"bad since", sessionsCmd, []string{"list", "--since", "yesterday"}, 2, "", `--since: "yesterday" is neither`},
		{"until before since", anomaliesCmd, []string{"list", "--since", "1h", "--until", "2h"}, 2, "", "--until: must be after --since"},
		{"bad severity", anomaliesCmd, []string{"list", "--min-severity", "severe"}, 2, "", "--min-severity: must be one of"},
		{"bad output", sessionsCmd, []string{"list", "-o", "yaml"}, 2, "", `-o: must be table or json, got "yaml"`},
		{"show without id", sessionsCmd, []string{"show"}, 2, "", "want exactly one session ID"},
		{"show with two ids", sessionsCmd, []string{"show", "a", "b"}, 2, "", "want exactly one session ID, got 2"},
		{"list with argument", sessionsCmd, []string{"list", "agent-1"}, 2, "", `unexpected argument "agent-1"`},
		{"bad api url", anomaliesCmd, []string{"list", "--api", "127.0.0.1:7410"}, 2, "", "--api: api URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runQuery(t, tt.fn, tt.args...)
			require.Equal(t, tt.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stdout, tt.stdout)
			require.Contains(t, r.stderr, tt.stderr)
			if tt.code == 0 {
				require.Empty(t, r.stderr)
			} else {
				require.Empty(t, r.stdout)
			}
		})
	}
}

func TestQueryUnreachableAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	for _, c := range []struct {
		fn   func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int
		args []string
	}{
		{sessionsCmd, []string{"list", "--api", url}},
		{sessionsCmd, []string{"show", "s1", "--api", url}},
		{anomaliesCmd, []string{"list", "--api", url}},
	} {
		r := runQuery(t, c.fn, c.args...)
		require.Equal(t, 1, r.code)
		require.Empty(t, r.stdout)
		require.Contains(t, r.stderr, "cannot reach mcpwatch API at "+url+": is `mcpwatch run` running?")
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	}
}

func TestQueryAuth(t *testing.T) {
	t.Setenv("MCPWATCH_TOKEN", "")
	url := newQueryAPI(t, "s3cret")

	r := runQuery(t, anomaliesCmd, "list", "--api", url)
	require.Equal(t, 1, r.code)
	require.Equal(t, "mcpwatch anomalies list: mcpwatch API answered 401 Unauthorized: missing or invalid bearer token (pass --token or set MCPWATCH_TOKEN)\n", r.stderr)

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "--token", "wrong")
	require.Equal(t, 1, r.code)

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "--token", "s3cret")
	require.Equal(t, 0, r.code, r.stderr)

	t.Setenv("MCPWATCH_TOKEN", "s3cret")
	r = runQuery(t, sessionsCmd, "show", "s2", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)

	r = runQuery(t, sessionsCmd, "list", "--help")
	require.NotContains(t, r.stdout, "s3cret", "usage never shows the token from the environment")
}

func TestQueryOutputSanitises(t *testing.T) {
	require.Equal(t, "-", tableCell(""))
	require.Equal(t, "read_file", tableCell("read_file"))
	require.Equal(t, "héllo wörld", tableCell("héllo wörld"))
	require.Equal(t, `evil\x1b]0;pwned\atool`, tableCell("evil\x1b]0;pwned\atool"))
	require.Equal(t, `a\tb\nc`, tableCell("a\tb\nc"))
	require.Equal(t, `abc\u202edcba`, tableCell("abc\u202edcba"), "bidi override")
	require.Equal(t, `bad\xffutf8`, tableCell("bad\xffutf8"))
}
