package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/bus"
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
		ID: "an1", SchemaVersion: 1, Time: qt0.Add(2 * time.Minute), AgentID: "agent-1", SessionID: "s1", ServerID: "fs",
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

var (
	queryBaselinesOnce  sync.Once
	queryBaselinesSaved []store.Baseline
)

// queryBaselines are the snapshots a real detector saved after two days of agent-1's history
// before qt0: sessions of tools/list, four read_file and two write_file calls, two calls a
// minute, requests of 150 bytes and responses of 1–3 KB.
func queryBaselines(t *testing.T) []store.Baseline {
	t.Helper()
	queryBaselinesOnce.Do(func() {
		ctx := context.Background()
		st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "detector.db"), 3650, pipeline.Settings{})
		require.NoError(t, err)
		defer st.Close()
		require.NoError(t, st.Migrate(ctx))
		var cfg detector.Config
		cfg.SetDefaults()
		var busCfg bus.Config
		busCfg.SetDefaults()
		d, err := detector.New(cfg, st, []string{"127.0.0.1:1"}, busCfg, pipeline.Settings{})
		require.NoError(t, err)
		calls := []string{"", "read_file", "read_file", "write_file", "read_file", "read_file", "write_file"}
		n := 0
		for ts := qt0.Add(-48 * time.Hour); ts.Before(qt0); ts = ts.Add(30 * time.Second) {
			method, tool := "tools/call", calls[n%len(calls)]
			if tool == "" {
				method = "tools/list"
			}
			e := qev(fmt.Sprintf("00000000-0000-7000-8000-%012d", n), fmt.Sprintf("hist-%d", n/len(calls)), "agent-1", "fs", 0, method, tool, schemas.StatusOK)
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
				b.UpdatedAt = qt0
				queryBaselinesSaved = append(queryBaselinesSaved, b)
			}
		}
	})
	require.NotEmpty(t, queryBaselinesSaved)
	return queryBaselinesSaved
}

// fixQueryClock sets the query commands' clock to qt0+1h for the test.
func fixQueryClock(t *testing.T) {
	t.Helper()
	queryNow = func() time.Time { return qt0.Add(time.Hour) }
	t.Cleanup(func() { queryNow = time.Now })
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
	require.NoError(t, st.SaveBaselines(ctx, queryBaselines(t)))

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

func agentsCmd(ctx context.Context, args []string, o, e *bytes.Buffer) int {
	return runAgents(ctx, args, o, e)
}

func TestSessionsList(t *testing.T) {
	t.Setenv("MCPWATCH_API", "")
	t.Setenv("MCPWATCH_TOKEN", "")
	fixQueryClock(t)
	url := newQueryAPI(t)

	r := runQuery(t, sessionsCmd, "list", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"SESSION  AGENT    SERVER  CLIENT       FIRST SEEN            LAST SEEN             EVENTS  ERRORS  ANOMALIES   TOOLS\n"+
		"s2       agent-2  git     claude-code  2026-11-03T02:10:00Z  2026-11-03T02:10:00Z  1       0       1 (max 25)  git_log\n"+
		"s1       agent-1  fs      claude-code  2026-11-03T02:00:00Z  2026-11-03T02:02:01Z  4       1       1 (max 75)  read_file,write_file\n",
		r.stdout)
	require.Empty(t, r.stderr)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "agent-2", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got api.SessionsResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got.Sessions, 1)
	require.Equal(t, "s2", got.Sessions[0].ID)
	require.Contains(t, r.stdout, "\n  \"sessions\": [", "the API's shape, indented")

	ids := func(args ...string) []string {
		t.Helper()
		r := runQuery(t, sessionsCmd, append([]string{"list", "--api", url, "-o", "json"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		var got api.SessionsResponse
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		out := []string{}
		for _, s := range got.Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	require.Equal(t, []string{"s1"}, ids("--server", "fs", "--since", "2026-11-03T02:01:00Z", "--until", "2026-11-03T03:00:00Z", "--limit", "5"))
	require.Equal(t, []string{"s1"}, ids("--tool", "write_file"))
	require.Equal(t, []string{}, ids("--tool", "write_file", "--agent", "agent-2"))
	require.Equal(t, []string{"s1"}, ids("--min-score", "50"))
	require.Equal(t, []string{"s2", "s1"}, ids("--since", "2h"), "relative to the clock: since 01:00")
	require.Equal(t, []string{"s1"}, ids("--since", "1h", "--until", "55m"), "02:00–02:05")

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--limit", "1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 2, strings.Count(r.stdout, "\n"), "header and one row")
	require.Equal(t, "More sessions match: use --all to fetch them all, or a larger --limit.\n", r.stderr)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "nobody")
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stdout)
	require.Equal(t, "No sessions found.\n", r.stderr)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "nobody", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.JSONEq(t, `{"sessions":[]}`, r.stdout)

	r = runQuery(t, sessionsCmd, "list", "--api", url, "-o", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"session_id,agent_id,server_id,client_name,protocol_version,first_seen,last_seen,events,errors,anomalies,max_score,tools\n"+
		"s2,agent-2,git,claude-code,2025-11-25,2026-11-03T02:10:00.25Z,2026-11-03T02:10:00.25Z,1,0,1,25.4,git_log\n"+
		"s1,agent-1,fs,claude-code,2025-11-25,2026-11-03T02:00:00.25Z,2026-11-03T02:02:01.25Z,4,1,1,75,read_file;write_file\n",
		r.stdout)
	r = runQuery(t, sessionsCmd, "list", "--api", url, "--agent", "nobody", "-o", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "session_id,agent_id,server_id,client_name,protocol_version,first_seen,last_seen,events,errors,anomalies,max_score,tools\n", r.stdout, "a header even when empty")

	t.Setenv("MCPWATCH_API", url)
	r = runQuery(t, sessionsCmd, "list", "--agent", "agent-1")
	require.Equal(t, 0, r.code, "MCPWATCH_API is the default --api: %s", r.stderr)
	require.Contains(t, r.stdout, "s1 ")
}

func TestQueryAll(t *testing.T) {
	url := newQueryAPI(t)
	r := runQuery(t, sessionsCmd, "list", "--api", url, "--all", "--limit", "1", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.JSONEq(t, "["+`"s2","s1"`+"]", mustJSON(t, sessionIDsOf(t, r.stdout)))
	require.NotContains(t, r.stdout, "next_cursor", "one list, no cursor")
	require.Equal(t, ""+
		"mcpwatch sessions list: fetched 1 sessions, more to come…\n"+
		"mcpwatch sessions list: fetched 2 sessions.\n", r.stderr, "progress on stderr")

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "--all", "--limit", "1", "-o", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 3, strings.Count(r.stdout, "\n"), "header and both anomalies: %s", r.stdout)
	require.Contains(t, r.stderr, "fetched 2 anomalies.")

	r = runQuery(t, sessionsCmd, "list", "--api", url, "--all")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 3, strings.Count(r.stdout, "\n"))
	require.Equal(t, "mcpwatch sessions list: fetched 2 sessions.\n", r.stderr, "one page of 1000")
}

func sessionIDsOf(t *testing.T, body string) []string {
	t.Helper()
	var got api.SessionsResponse
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	ids := []string{}
	for _, s := range got.Sessions {
		ids = append(ids, s.ID)
	}
	return ids
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
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
		"Last seen:  2026-11-03T02:02:01Z (2m1s later)\n"+
		"Events:     4 (1 error)\n"+
		"Tools:      read_file, write_file\n"+
		"Anomalies:  1 (max score 75)\n"+
		"\n"+
		"OFFSET      TIME (UTC)    DIR  METHOD                  TARGET      STATUS        LATENCY (ms)  REQ    RESP    FLAGS\n"+
		"+00:00.000  02:00:00.250  c2s  initialize              -           ok            12.3          120 B  2.0 KB  -\n"+
		"+01:00.000  02:01:00.250  c2s  tools/call              read_file   ok            12.3          120 B  2.0 KB  -\n"+
		"+02:00.000  02:02:00.250  c2s  tools/call              write_file  error -32603  1500.0        120 B  2.0 KB  -\n"+
		"   >> high 75 new_tool: agent-1 called write_file for the first time [an1]\n"+
		"+02:01.000  02:02:01.250  s2c  notifications/progress  -           ok            -             120 B  0 B     hidden_unicode(medium)\n",
		r.stdout)

	r = runQuery(t, sessionsCmd, "show", "--api", url, "--limit", "2", "s1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "tools/call  read_file  ok")
	require.NotContains(t, r.stdout, "02:02:00.250")
	require.Contains(t, r.stdout, "Showing the first 2 of 4 events; use --limit to see more.\n\n"+
		"Anomalies after the events shown:\n"+
		"   >> high 75 new_tool: agent-1 called write_file for the first time [an1]\n")

	r = runQuery(t, sessionsCmd, "show", "s1", "--api", url, "-o", "json", "--limit", "3")
	require.Equal(t, 0, r.code, r.stderr)
	var got sessionShowJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, "s1", got.Session.ID)
	require.Equal(t, 4, got.Session.Events)
	events, anomalies := queryFixture()
	require.Equal(t, events[:3], got.Events)
	require.Equal(t, anomalies[:1], got.Anomalies)

	r = runQuery(t, sessionsCmd, "show", "s1", "--api", url, "-o", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"event_id,observed_at,offset_seconds,direction,kind,method,target,status,error_code,latency_ms,request_bytes,response_bytes,flags,anomaly_ids\n"+
		"e1,2026-11-03T02:00:00.25Z,0,c2s,request,initialize,,ok,,12.345,120,2048,,\n"+
		"e2,2026-11-03T02:01:00.25Z,60,c2s,request,tools/call,read_file,ok,,12.345,120,2048,,\n"+
		"e3,2026-11-03T02:02:00.25Z,120,c2s,request,tools/call,write_file,error,-32603,1500,120,2048,,an1\n"+
		"e5,2026-11-03T02:02:01.25Z,121,s2c,notification,notifications/progress,,ok,,0,120,0,hidden_unicode(medium),\n",
		r.stdout)

	r = runQuery(t, sessionsCmd, "show", "s2", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Last seen:  2026-11-03T02:10:00Z\n", "one event: no duration")
	require.Contains(t, r.stdout, "   >> low (learning) 25 rate_spike: agent-2 call rate above its band [an2]\n",
		"an anomaly without evidence is marked after the last event before it was first seen")

	r = runQuery(t, sessionsCmd, "show", "nope", "--api", url)
	require.Equal(t, 4, r.code, "not found")
	require.Empty(t, r.stdout)
	require.Equal(t, "mcpwatch sessions show: mcpwatch API answered 404 Not Found: session \"nope\" not found\n", r.stderr)
}

func TestPlaceAnomalies(t *testing.T) {
	events, _ := queryFixture()
	events = events[:3] // e1 02:00:00.25, e2 02:01:00.25, e3 02:02:00.25
	an := func(id string, first time.Time, evidence ...string) schemas.Anomaly {
		return schemas.Anomaly{ID: id, FirstSeen: first, EvidenceEventIDs: evidence}
	}
	ids := func(as []schemas.Anomaly) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	anomalies := []schemas.Anomaly{
		an("late", qt0.Add(time.Hour)),
		an("evidence", qt0.Add(time.Hour), "e2", "e9"), // e9 is not shown: after e2
		an("early", qt0.Add(-time.Minute)),
		an("between", qt0.Add(90*time.Second)),
		an("same-time", qt0.Add(time.Minute+250*time.Millisecond)),
	}
	before, after, beyond := placeAnomalies(events, anomalies, false)
	require.Equal(t, []string{"early"}, ids(before))
	require.Equal(t, []string{"same-time", "between", "evidence"}, ids(after[1]), "in order of first sighting")
	require.Equal(t, []string{"late"}, ids(after[2]))
	require.Empty(t, beyond)

	_, after, beyond = placeAnomalies(events, anomalies, true)
	require.Equal(t, []string{"late"}, ids(beyond), "truncated: later anomalies are not pinned to the last event shown")
	require.Empty(t, after[2])
}

func TestAnomaliesList(t *testing.T) {
	fixQueryClock(t)
	url := newQueryAPI(t)

	r := runQuery(t, anomaliesCmd, "list", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"LAST SEEN             SEVERITY        SCORE  AGENT    SESSION  KIND        SUBJECT     COUNT  ID   TITLE\n"+
		"2026-11-03T02:20:00Z  low (learning)  25     agent-2  s2       rate_spike  -           3      an2  agent-2 call rate above its band\n"+
		"2026-11-03T02:02:00Z  high            75     agent-1  s1       new_tool    write_file  1      an1  agent-1 called write_file for the first time\n",
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
		{[]string{"--server", "fs"}, []string{"an1"}},
		{[]string{"--session", "s2"}, []string{"an2"}},
		{[]string{"--min-score", "25.4"}, []string{"an2", "an1"}},
		{[]string{"--min-score", "26"}, []string{"an1"}},
		{[]string{"--since", "2026-11-03T02:15:00Z"}, []string{"an2"}}, // last seen at or after
		{[]string{"--until", "2026-11-03T02:05:00Z"}, []string{"an1"}}, // first seen before
		{[]string{"--since", "50m"}, []string{"an2"}},                  // since 02:10 by the clock
		{[]string{"--limit", "1"}, []string{"an2"}},                    // newest first
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

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "-o", "csv", "--agent", "agent-1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"anomaly_id,first_seen,last_seen,severity,score,learning,agent_id,session_id,server_id,kind,subject,count,title,summary,evidence_event_ids\n"+
		"an1,2026-11-03T02:02:00Z,2026-11-03T02:02:00Z,high,75,false,agent-1,s1,fs,new_tool,write_file,1,agent-1 called write_file for the first time,first call,e3\n",
		r.stdout)

	r = runQuery(t, anomaliesCmd, "list", "--api", url, "--kind", "nothing")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "No anomalies found.\n", r.stderr)
}

func TestAnomaliesShow(t *testing.T) {
	url := newQueryAPI(t)
	r := runQuery(t, anomaliesCmd, "show", "an1", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"Anomaly:    an1\n"+
		"Title:      agent-1 called write_file for the first time\n"+
		"Severity:   high (score 75)\n"+
		"Kind:       new_tool\n"+
		"Subject:    write_file\n"+
		"Agent:      agent-1\n"+
		"Server:     fs\n"+
		"Session:    s1\n"+
		"First seen: 2026-11-03T02:02:00Z\n"+
		"Last seen:  2026-11-03T02:02:00Z (seen 1 time)\n"+
		"Learning:   no\n"+
		"Summary:    first call\n"+
		"Model:      first_seen_tool\n"+
		"Evidence:   e3\n"+
		"\n"+
		"Timeline: mcpwatch anomalies show an1 --timeline (or mcpwatch sessions show s1)\n",
		r.stdout)

	r = runQuery(t, anomaliesCmd, "show", "an1", "--timeline", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Evidence:   e3\n\nSession:    s1\n")
	require.Contains(t, r.stdout, "write_file  error -32603  1500.0        120 B  2.0 KB  -\n   >> high 75 new_tool: agent-1")
	require.NotContains(t, r.stdout, "Timeline:")

	r = runQuery(t, anomaliesCmd, "show", "an2", "--timeline", "--api", url, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got anomalyShowJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, "an2", got.Anomaly.ID)
	require.Equal(t, "s2", got.Session.Session.ID)
	require.Len(t, got.Session.Events, 1)

	r = runQuery(t, anomaliesCmd, "show", "an2", "--api", url, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var one schemas.Anomaly
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &one))
	_, want := queryFixture()
	require.Equal(t, want[1], one)

	r = runQuery(t, anomaliesCmd, "show", "an1", "--timeline", "--api", url, "-o", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "e3,2026-11-03T02:02:00.25Z,120,c2s,request,tools/call,write_file,error,-32603,1500,120,2048,,an1\n")

	r = runQuery(t, anomaliesCmd, "show", "nope", "--api", url)
	require.Equal(t, 4, r.code)
	require.Equal(t, "mcpwatch anomalies show: mcpwatch API answered 404 Not Found: anomaly \"nope\" not found\n", r.stderr)
}

func TestAgentsCommands(t *testing.T) {
	fixQueryClock(t) // 2026-11-03T03:00Z, a Tuesday
	url := newQueryAPI(t)

	r := runQuery(t, agentsCmd, "list", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"AGENT    RISK  ANOMALIES   EVENTS  ERRORS  SESSIONS  LAST SEEN             SERVERS  TOOLS\n"+
		"agent-1  75.0  1 (max 75)  4       1       1         2026-11-03T02:02:01Z  fs       read_file,write_file\n"+
		"agent-2  0.0   -           1       0       1         2026-11-03T02:10:00Z  git      git_log\n",
		r.stdout, "the last 24 hours by the clock, riskiest first (an2 is learning: no risk)")

	r = runQuery(t, agentsCmd, "list", "--api", url, "--since", "2026-11-03T02:05:00Z", "-o", "csv")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, ""+
		"agent_id,risk,anomalies,max_score,events,errors,sessions,first_seen,last_seen,servers,tools\n"+
		"agent-2,0,0,0,1,0,1,2026-11-03T02:10:00.25Z,2026-11-03T02:10:00.25Z,git,git_log\n",
		r.stdout)

	r = runQuery(t, agentsCmd, "list", "--api", url, "--until", "2026-11-02T00:00:00Z")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "No agents found.\n", r.stderr)

	r = runQuery(t, agentsCmd, "show", "agent-1", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	out := r.stdout
	for _, want := range []string{
		"Agent:      agent-1\n",
		"Risk:       75.0 (1 anomaly, max score 75)\n",
		"Events:     4 (1 error) in 1 session\n",
		"Baseline (saved 2026-11-03T02:00:00Z; warmed up, 5760 requests since 2026-11-01T02:00:00Z)\n",
		"Rate band:   Tuesday 03:00–04:00 UTC: ",
		"Last hour:   0.05 calls/min (3 calls since 02:00): below the band\n",
		"Sizes:       requests p50 150 B, ",
		"Known tools: read_file, write_file\n",
		"TOP TOOLS   CALLS  SHARE  SESSIONS\n",
		"read_file   3288   66.7%  822\n",
		"(start) → tools/list",
		"Latest anomalies:\n",
		"an1  agent-1 called write_file for the first time\n",
	} {
		require.Contains(t, out, want)
	}

	r = runQuery(t, agentsCmd, "show", "agent-1", "--api", url, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got agentShowJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, "agent-1", got.Agent.ID)
	require.Len(t, got.Profile.Rate.Band, 168)
	require.Equal(t, 3, got.RecentRate.Calls)
	require.Equal(t, 24+3, got.RecentRate.HourOfWeek, "Tuesday 03:00")
	require.Equal(t, got.Profile.Rate.Band[27].Upper, got.RecentRate.Upper)
	require.Len(t, got.Anomalies, 1)

	// agent-2 has no baseline: the rest is shown all the same.
	r = runQuery(t, agentsCmd, "show", "agent-2", "--api", url)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Baseline: none saved yet")
	require.Contains(t, r.stdout, "rate_spike")
	r = runQuery(t, agentsCmd, "show", "agent-2", "--api", url, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, `"profile": null`)

	r = runQuery(t, agentsCmd, "show", "agent-2", "--api", url, "--since", "2026-11-03T02:30:00Z")
	require.Equal(t, 4, r.code, "no events in range")
	require.Contains(t, r.stderr, `agent "agent-2" has no events from 2026-11-03T02:30:00Z to now`)
	r = runQuery(t, agentsCmd, "show", "nobody", "--api", url)
	require.Equal(t, 4, r.code)

	r = runQuery(t, agentsCmd, "show", "agent-1", "--api", url, "-o", "csv")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "-o csv: agents show prints a summary and a profile; use -o json, or agents list -o csv")
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
		{"sessions list help has exit codes", sessionsCmd, []string{"list", "--help"}, 0, "4 the session, anomaly or agent does not exist", ""},
		{"sessions list help has --tool", sessionsCmd, []string{"list", "--help"}, 0, "-tool tool", ""},
		{"sessions show help", sessionsCmd, []string{"show", "--help"}, 0, "at most N events", ""},
		{"sessions show help explains markers", sessionsCmd, []string{"show", "--help"}, 0, "Lines\nstarting with >> mark the session's anomalies", ""},
		{"anomalies list help", anomaliesCmd, []string{"list", "--help"}, 0, "-min-severity severe", ""},
		{"anomalies show help", anomaliesCmd, []string{"show", "--help"}, 0, "-timeline", ""},
		{"anomalies help", anomaliesCmd, []string{"help"}, 0, "mcpwatch anomalies list", ""},
		{"agents help", agentsCmd, []string{"--help"}, 0, "mcpwatch agents show ID", ""},
		{"agents list help", agentsCmd, []string{"list", "--help"}, 0, "riskiest first", ""},
		{"agents show help", agentsCmd, []string{"show", "-h"}, 0, "top tools and transitions", ""},
		{"no command", sessionsCmd, nil, 2, "", "mcpwatch sessions: missing command"},
		{"unknown command", anomaliesCmd, []string{"delete"}, 2, "", `mcpwatch anomalies: unknown command "delete"`},
		{"unknown agents command", agentsCmd, []string{"rank"}, 2, "", `mcpwatch agents: unknown command "rank"`},
		{"unknown flag", sessionsCmd, []string{"list", "--agnet", "a"}, 2, "", "flag provided but not defined: -agnet"},
		{"bad limit", sessionsCmd, []string{"list", "--limit", "-1"}, 2, "", "--limit: must be from 1 to 10000"},
		{"limit too big", anomaliesCmd, []string{"list", "--limit", "10001"}, 2, "", "--limit"},
		{"agents limit too big", agentsCmd, []string{"list", "--limit", "10001"}, 2, "", "--limit"},
		{"limit not a number", sessionsCmd, []string{"show", "x", "--limit", "many"}, 2, "", `invalid value "many" for flag -limit`},
		{"bad since", sessionsCmd, []string{"list", "--since", "yesterday"}, 2, "", `--since: "yesterday" is neither`},
		{"agents bad until", agentsCmd, []string{"show", "a", "--until", "soon"}, 2, "", `--until: "soon" is neither`},
		{"until before since", anomaliesCmd, []string{"list", "--since", "1h", "--until", "2h"}, 2, "", "--until: must be after --since"},
		{"bad severity", anomaliesCmd, []string{"list", "--min-severity", "severe"}, 2, "", "--min-severity: must be one of"},
		{"bad score", sessionsCmd, []string{"list", "--min-score", "101"}, 2, "", "--min-score: must be from 0 to 100, got 101"},
		{"score not a number", anomaliesCmd, []string{"list", "--min-score", "high"}, 2, "", `invalid value "high" for flag -min-score`},
		{"bad output", sessionsCmd, []string{"list", "-o", "yaml"}, 2, "", `-o: must be table, json or csv, got "yaml"`},
		{"show without id", sessionsCmd, []string{"show"}, 2, "", "want exactly one session ID"},
		{"show with two ids", sessionsCmd, []string{"show", "a", "b"}, 2, "", "want exactly one session ID, got 2"},
		{"anomaly show without id", anomaliesCmd, []string{"show"}, 2, "", "want exactly one anomaly ID"},
		{"agent show without id", agentsCmd, []string{"show", "--since", "1h"}, 2, "", "want exactly one agent ID"},
		{"list with argument", sessionsCmd, []string{"list", "agent-1"}, 2, "", `unexpected argument "agent-1"`},
		{"agents list with argument", agentsCmd, []string{"list", "agent-1"}, 2, "", `unexpected argument "agent-1"`},
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
		{anomaliesCmd, []string{"show", "an1", "--api", url}},
		{agentsCmd, []string{"list", "--api", url}},
		{agentsCmd, []string{"show", "a", "--api", url}},
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
	r = runQuery(t, agentsCmd, "list", "--api", url, "--since", "2026-11-01")
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

	// Free lines of a table (timeline markers) are sanitised too.
	var b bytes.Buffer
	tt := newTextTable(&b, "A", "B")
	tt.row("x", "y")
	tt.line("   >> \x1b[31mred")
	require.NoError(t, tt.flush())
	require.Equal(t, "A  B\nx  y\n   >> \\x1b[31mred\n", b.String())

	// CSV cells a spreadsheet would evaluate are defused.
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://evil\")": "'=HYPERLINK(\"http://evil\")",
		"+1":                          "'+1",
		"-2+3":                        "'-2+3",
		"@SUM(A1)":                    "'@SUM(A1)",
		"read_file":                   "read_file",
		"":                            "",
	} {
		require.Equal(t, want, csvText(in), in)
	}
	b.Reset()
	require.NoError(t, csvSessions(&b, []store.Session{{ID: "=cmd|' /C calc'!A0", Tools: []string{"@x", "ok"}, Events: 1}}))
	require.Contains(t, b.String(), "\n'=cmd|' /C calc'!A0,")
	require.Contains(t, b.String(), "'@x;ok")
}

func TestFormatHelpers(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "+00:00.000",
		1500 * time.Millisecond:             "+00:01.500",
		61*time.Second + 7*time.Millisecond: "+01:01.007",
		2*time.Hour + 3*time.Minute + time.Second: "+2:03:01.000",
		-time.Second: "-00:01.000",
	} {
		require.Equal(t, want, fmtOffset(d), d)
	}
	for n, want := range map[float64]string{0: "0 B", 999: "999 B", 2048: "2.0 KB", 52_000_000: "52 MB"} {
		require.Equal(t, want, fmtBytes(n))
	}
	require.Equal(t, "1 anomaly", plural(1, "anomaly"))
	require.Equal(t, "3 anomalies", plural(3, "anomaly"))
	require.Equal(t, "0 errors", plural(0, "error"))
	require.Equal(t, 0, hourOfWeek(time.Date(2026, 11, 2, 0, 30, 0, 0, time.UTC)), "Monday 00:30")
	require.Equal(t, 167, hourOfWeek(time.Date(2026, 11, 8, 23, 59, 0, 0, time.UTC)), "Sunday 23:59")
	require.Equal(t, 27, hourOfWeek(time.Date(2026, 11, 3, 4, 0, 0, 0, time.FixedZone("CET", 3600))), "in UTC")
	require.Equal(t, "s1", shellQuote("s1"))
	require.Equal(t, `'it'\''s here'`, shellQuote("it's here"))
}
