package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Run runs the conformance suite. open must return a new, empty, not yet migrated store on fresh
// storage each time it is called, with a retention between 1 and 89 days, and arrange (with
// t.Cleanup) to close and remove it; the suite never calls Close.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Migrate", testMigrate},
		{"EmptyBatches", testEmptyBatches},
		{"EventRoundTrip", testEventRoundTrip},
		{"DuplicateEvents", testDuplicateEvents},
		{"SessionEventsOrder", testSessionEventsOrder},
		{"SessionAggregation", testSessionAggregation},
		{"SessionNotFound", testSessionNotFound},
		{"SessionsFilters", testSessionsFilters},
		{"AnomalyRoundTrip", testAnomalyRoundTrip},
		{"AnomalyUpsert", testAnomalyUpsert},
		{"AnomalyFilters", testAnomalyFilters},
		{"Baselines", testBaselines},
		{"BaselinesOf", testBaselinesOf},
		{"DropExpired", testDropExpired},
		{"Concurrent", testConcurrent},
		{"EmptyV3", testEmptyV3},
		{"AnomalyByID", testAnomalyByID},
		{"AnomalyFiltersV3", testAnomalyFiltersV3},
		{"AnomalyPagination", testAnomalyPagination},
		{"SessionsV3", testSessionsV3},
		{"SessionPagination", testSessionPagination},
		{"Agents", testAgents},
		{"Risk", testRisk},
		{"TimeSeries", testTimeSeries},
		{"Values", testValues},
		{"Definitions", testDefinitions},
		{"Deliveries", testDeliveries},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if tc.name != "Migrate" {
				require.NoError(t, s.Migrate(t.Context()))
			}
			tc.fn(t, s)
		})
	}
}

// base is a recent instant, so that no backend's retention (e.g. a ClickHouse TTL) removes
// test data, at a whole second so that offsets below read clearly.
func base() time.Time {
	return time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Second)
}

// norm is what a store returns for a written time: UTC, microsecond precision.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ev builds an event with the fields the session queries look at.
func ev(id, session, agent, server string, at time.Time, method, target string, status schemas.Status) schemas.Event {
	kind := schemas.KindRequest
	if method == "notifications/initialized" {
		kind = schemas.KindNotification
	}
	return schemas.Event{
		ID: id, SchemaVersion: schemas.EventSchemaVersion, ObservedAt: at, CollectorID: "tap-1",
		Source: schemas.SourceHTTPTap, Transport: "streamable_http", AgentID: agent, AgentSource: "header",
		ServerID: server, SessionID: session, Direction: schemas.ClientToServer, Kind: kind, Method: method,
		Target: target, Status: status,
	}
}

// fullEvent sets every field of Event v1, with a non-UTC zone and sub-microsecond digits that the
// store must normalise.
func fullEvent(id, session string, at time.Time) schemas.Event {
	return schemas.Event{
		ID:              id,
		SchemaVersion:   schemas.EventSchemaVersion,
		ObservedAt:      at.In(time.FixedZone("CEST", 2*3600)).Add(123456789 * time.Nanosecond),
		CollectorID:     "tap-eu-1",
		Source:          schemas.SourceOTLP,
		Transport:       "streamable_http",
		ProtocolVersion: "2025-11-25",
		AgentID:         "agent-7",
		AgentSource:     "header",
		DeclaredAgent:   "agent-7-declared",
		ClientName:      "claude-code",
		ClientVersion:   "2.1.0",
		ServerID:        "github",
		SessionID:       session,
		JSONRPCID:       `"req-42"`,
		Direction:       schemas.ServerToClient,
		Kind:            schemas.KindRequest,
		Method:          "tools/call",
		Target:          "create_issue",
		Status:          schemas.StatusError,
		ErrorCode:       -32601,
		LatencyMicros:   1234567,
		RequestBytes:    2048,
		ResponseBytes:   65536,
		ArgsShape:       `{"body":"string","labels":["string"],"title":"string"}`,
		ArgsHash:        "9f86d081884c7d65",
		ResultHash:      "60303ae22b998861",
		TraceID:         "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:          "00f067aa0ba902b7",
		Labels:          map[string]string{"team": "payments", "env": "prod", "empty": ""},
		Flags: []schemas.Flag{
			{Type: "injection_phrase", Severity: schemas.SeverityHigh, Path: "params.arguments.body", Evidence: "offset=12 len=31"},
			{Type: "hidden_unicode", Severity: schemas.SeverityMedium, Path: "params.arguments.title", Evidence: "U+200B x3"},
		},
		// Captured content: JSON text with escapes, non-ASCII and a mask, and a result cut at the
		// cap (no longer valid JSON), which must come back byte for byte.
		Content: &schemas.Content{
			Arguments: `{"body":"naïve ✓ \"quoted\"\nline 2 \u003cb\u003e","labels":["p1"],"title":"Fix ` + "\u200b" + `bug","token":"***"}`,
			Result:    `{"content":[{"type":"text","text":"created #42 — see https://example.com/i/42?a=1&b=2`,
			Truncated: true,
			Captured:  true,
		},
	}
}

func normEvent(e schemas.Event) schemas.Event {
	e.ObservedAt = norm(e.ObservedAt)
	return e
}

func testMigrate(t *testing.T, s store.Store) {
	ctx := t.Context()
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, v, "schema version before Migrate")
	// No keys is answered without a query: it works before the tables exist; a key does not.
	bl, err := s.LoadBaselinesOf(ctx, "rate", nil)
	require.NoError(t, err)
	require.Nil(t, bl)
	_, err = s.LoadBaselinesOf(ctx, "rate", []string{"a1"})
	require.Error(t, err, "a query before Migrate")

	require.NoError(t, s.Migrate(ctx))
	v1, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, v1, "every migration applied")
	require.Equal(t, store.LatestSchemaVersion, v1)

	e := ev("e1", "s1", "a1", "srv", base(), "tools/list", "", schemas.StatusOK)
	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{e}))

	// A second Migrate is a no-op: same version, data intact.
	require.NoError(t, s.Migrate(ctx))
	v2, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, v1, v2)
	got, err := s.SessionEvents(ctx, "s1", 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

func testEmptyBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, s.InsertEvents(ctx, nil))
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{}))
	require.NoError(t, s.SaveBaselines(ctx, nil))
	sessions, err := s.Sessions(ctx, store.SessionQuery{})
	require.NoError(t, err)
	require.Empty(t, sessions)
	anomalies, err := s.Anomalies(ctx, store.AnomalyQuery{})
	require.NoError(t, err)
	require.Empty(t, anomalies)
	bl, err := s.LoadBaselines(ctx, "rate")
	require.NoError(t, err)
	require.Empty(t, bl)
}

func testEventRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	full := fullEvent("0198a1b2-0000-7000-8000-000000000001", "sess-rt", b)
	// A minimal event: no labels, flags, content or optional fields survive as their zero values.
	minimal := schemas.Event{ID: "0198a1b2-0000-7000-8000-000000000002", SessionID: "sess-rt", ObservedAt: b.Add(time.Second), AgentID: "agent-7"}
	// Content with arguments only, and a present but empty content, which stays present.
	argsOnly := ev("0198a1b2-0000-7000-8000-000000000003", "sess-rt", "agent-7", "github", b.Add(2*time.Second), "tools/call", "search", schemas.StatusTimeout)
	argsOnly.Content = &schemas.Content{Arguments: `{"q":"is:open"}`, Captured: true}
	empty := ev("0198a1b2-0000-7000-8000-000000000004", "sess-rt", "agent-7", "github", b.Add(3*time.Second), "tools/list", "", schemas.StatusOK)
	empty.Content = &schemas.Content{}
	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{minimal, full, empty, argsOnly}))

	got, err := s.SessionEvents(ctx, "sess-rt", 0)
	require.NoError(t, err)
	require.Equal(t, []schemas.Event{normEvent(full), normEvent(minimal), argsOnly, empty}, got)
	require.Equal(t, time.UTC, got[0].ObservedAt.Location())
	require.Equal(t, 123456000, got[0].ObservedAt.Nanosecond(), "microseconds kept, nanoseconds dropped")
	require.Equal(t, full.Content.Result, got[0].Content.Result, "a cut result is kept byte for byte")
	require.Nil(t, got[1].Labels)
	require.Nil(t, got[1].Flags)
	require.Nil(t, got[1].Content, "no content stays no content")
	require.NotNil(t, got[3].Content)
}

func testDuplicateEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	var all []schemas.Event
	for i := range 7 {
		status := schemas.StatusOK
		if i%3 == 0 {
			status = schemas.StatusError // e0, e3, e6
		}
		all = append(all, ev(fmt.Sprintf("e%d", i), "dup", "a1", "srv", b.Add(time.Duration(i)*time.Second), "tools/call", "t", status))
	}
	// At-least-once delivery: a batch repeated, overlapping batches, a duplicate inside a batch.
	require.NoError(t, s.InsertEvents(ctx, all[:5]))
	require.NoError(t, s.InsertEvents(ctx, all[:5]))
	require.NoError(t, s.InsertEvents(ctx, append(append([]schemas.Event{}, all[3:]...), all[6])))

	got, err := s.SessionEvents(ctx, "dup", 0)
	require.NoError(t, err)
	require.Equal(t, all, got)

	sess, err := s.Session(ctx, "dup")
	require.NoError(t, err)
	require.Equal(t, 7, sess.Events)
	require.Equal(t, 3, sess.Errors)

	list, err := s.Sessions(ctx, store.SessionQuery{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, 7, list[0].Events)
}

func testSessionEventsOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	e := func(id string, offset time.Duration) schemas.Event {
		return ev(id, "ord", "a1", "srv", b.Add(offset), "tools/call", "t", schemas.StatusOK)
	}
	// Inserted out of order; "b" and "c" share a timestamp and sort by ID.
	in := []schemas.Event{e("d", 3*time.Second), e("c", time.Second), e("a", 0), e("e", 3*time.Second+time.Microsecond), e("b", time.Second)}
	require.NoError(t, s.InsertEvents(ctx, in[:2]))
	require.NoError(t, s.InsertEvents(ctx, in[2:]))

	ids := func(limit int) []string {
		got, err := s.SessionEvents(ctx, "ord", limit)
		require.NoError(t, err)
		var out []string
		for _, g := range got {
			out = append(out, g.ID)
		}
		return out
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, ids(0))
	require.Equal(t, []string{"a", "b", "c"}, ids(3))
}

func testSessionAggregation(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	init := ev("x1", "agg", "agent-9", "fs", b, "initialize", "", schemas.StatusOK)
	init.ClientName, init.ProtocolVersion = "cursor", "2025-06-18"
	events := []schemas.Event{
		init,
		ev("x2", "agg", "agent-9", "fs", b.Add(1*time.Second), "notifications/initialized", "", schemas.StatusOK),
		ev("x3", "agg", "agent-9", "fs", b.Add(2*time.Second), "tools/call", "write_file", schemas.StatusOK),
		ev("x4", "agg", "agent-9", "fs", b.Add(3*time.Second), "tools/call", "read_file", schemas.StatusToolError),
		ev("x5", "agg", "agent-9", "fs", b.Add(4*time.Second), "tools/call", "read_file", schemas.StatusOK),
		ev("x6", "agg", "agent-9", "fs", b.Add(5*time.Second), "prompts/get", "summarise", schemas.StatusError),
		ev("x7", "agg", "agent-9", "fs", b.Add(6*time.Second+500*time.Microsecond), "tools/call", "list_dir", schemas.StatusTimeout),
		// Another session, which must not leak into this one.
		ev("y1", "other", "agent-9", "fs", b.Add(7*time.Second), "tools/call", "delete_file", schemas.StatusError),
	}
	require.NoError(t, s.InsertEvents(ctx, events))

	want := store.Session{
		ID: "agg", AgentID: "agent-9", ServerID: "fs", ClientName: "cursor", ProtocolVersion: "2025-06-18",
		FirstSeen: b, LastSeen: b.Add(6*time.Second + 500*time.Microsecond), Events: 7, Errors: 3,
		Tools: []string{"list_dir", "read_file", "write_file"},
	}
	got, err := s.Session(ctx, "agg")
	require.NoError(t, err)
	requireSession(t, want, got)

	list, err := s.Sessions(ctx, store.SessionQuery{AgentID: "agent-9"})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "other", list[0].ID, "most recently active first")
	requireSession(t, want, list[1])

	other, err := s.Session(ctx, "other")
	require.NoError(t, err)
	require.Equal(t, []string{"delete_file"}, other.Tools)

	// A session without tool calls has an empty, non-nil tool list (JSON [] rather than null).
	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{ev("z1", "quiet", "agent-9", "fs", b, "tools/list", "", schemas.StatusOK)}))
	quiet, err := s.Session(ctx, "quiet")
	require.NoError(t, err)
	require.NotNil(t, quiet.Tools)
	require.Empty(t, quiet.Tools)
}

func requireSession(t *testing.T, want, got store.Session) {
	t.Helper()
	require.True(t, want.FirstSeen.Equal(got.FirstSeen), "first seen: want %s, got %s", want.FirstSeen, got.FirstSeen)
	require.True(t, want.LastSeen.Equal(got.LastSeen), "last seen: want %s, got %s", want.LastSeen, got.LastSeen)
	got.FirstSeen, got.LastSeen = want.FirstSeen, want.LastSeen
	require.Equal(t, want, got)
}

func testSessionNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Events without a session id belong to no session.
	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{ev("n1", "", "a1", "srv", base(), "tools/call", "t", schemas.StatusOK)}))
	for _, id := range []string{"missing", ""} {
		_, err := s.Session(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "session %q", id)
	}
	for _, id := range []string{"missing", ""} {
		got, err := s.SessionEvents(ctx, id, 0)
		require.NoError(t, err)
		require.Empty(t, got, "session %q", id)
	}
	list, err := s.Sessions(ctx, store.SessionQuery{})
	require.NoError(t, err)
	require.Empty(t, list)
}

func testSessionsFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	var events []schemas.Event
	add := func(session, agent, server string, minutes ...int) {
		for i, mm := range minutes {
			events = append(events, ev(fmt.Sprintf("%s-%d", session, i), session, agent, server, m(mm), "tools/call", "t", schemas.StatusOK))
		}
	}
	add("s1", "a1", "srvA", 0, 5, 10)
	add("s2", "a1", "srvB", 20, 30)
	add("s3", "a2", "srvA", 40, 50)
	add("s4", "a2", "srvB", 60, 70)
	require.NoError(t, s.InsertEvents(ctx, events))

	tests := []struct {
		name string
		q    store.SessionQuery
		want []string
	}{
		{"all", store.SessionQuery{}, []string{"s4", "s3", "s2", "s1"}},
		{"agent", store.SessionQuery{AgentID: "a1"}, []string{"s2", "s1"}},
		{"server", store.SessionQuery{ServerID: "srvA"}, []string{"s3", "s1"}},
		{"agent and server", store.SessionQuery{AgentID: "a2", ServerID: "srvB"}, []string{"s4"}},
		{"unknown agent", store.SessionQuery{AgentID: "nobody"}, nil},
		{"since is inclusive", store.SessionQuery{Since: m(30)}, []string{"s4", "s3", "s2"}},
		{"since just after", store.SessionQuery{Since: m(30).Add(time.Microsecond)}, []string{"s4", "s3"}},
		{"until is exclusive", store.SessionQuery{Until: m(40)}, []string{"s2", "s1"}},
		{"overlap", store.SessionQuery{Since: m(5), Until: m(45)}, []string{"s3", "s2", "s1"}},
		{"agent and window", store.SessionQuery{AgentID: "a2", Since: m(45), Until: m(61)}, []string{"s4", "s3"}},
		{"limit", store.SessionQuery{Limit: 2}, []string{"s4", "s3"}},
		{"limit with filter", store.SessionQuery{AgentID: "a1", Limit: 1}, []string{"s2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Sessions(ctx, tc.q)
			require.NoError(t, err)
			var ids []string
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			require.Equal(t, tc.want, ids)
		})
	}

	// A time filter selects sessions but never trims them: s1 counts all three events.
	got, err := s.Sessions(ctx, store.SessionQuery{Since: m(5), Until: m(15)})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, 3, got[0].Events)
	require.True(t, m(0).Equal(got[0].FirstSeen))
	require.True(t, m(10).Equal(got[0].LastSeen))
}

func fullAnomaly(id string, b time.Time) schemas.Anomaly {
	return schemas.Anomaly{
		ID:            id,
		SchemaVersion: schemas.AnomalySchemaVersion,
		Time:          b.Add(10*time.Minute + 987654321*time.Nanosecond).In(time.FixedZone("EST", -5*3600)),
		AgentID:       "agent-7",
		SessionID:     "sess-1",
		ServerID:      "github",
		Kind:          "new_tool",
		Subject:       "delete_repo",
		Score:         87.5,
		Severity:      schemas.SeverityHigh,
		Title:         "agent-7 called delete_repo for the first time",
		Explanation: schemas.Explanation{
			Summary:     "delete_repo was never called by agent-7 in 14 days",
			Observed:    "1 call",
			Typical:     "0 calls",
			Model:       "first_seen_tool",
			Probability: 0.0012,
		},
		EvidenceEventIDs: []string{"e1", "e2", "e3"},
		FirstSeen:        b.Add(123 * time.Microsecond),
		LastSeen:         b.Add(10*time.Minute + 456*time.Microsecond),
		Count:            3,
		Learning:         true,
		Tags:             []string{"pii", "prod", "team:payments"},
	}
}

func normAnomaly(a schemas.Anomaly) schemas.Anomaly {
	a.Time, a.FirstSeen, a.LastSeen = norm(a.Time), norm(a.FirstSeen), norm(a.LastSeen)
	if a.EvidenceEventIDs == nil {
		a.EvidenceEventIDs = []string{} // Anomaly v1 has it required: nil is written as []
	}
	return a
}

func testAnomalyRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	full := fullAnomaly("an-full", b)
	minimal := schemas.Anomaly{ID: "an-min", AgentID: "agent-7", Kind: "rate", Severity: schemas.SeverityInfo,
		FirstSeen: b, LastSeen: b, Time: b, Count: 1}
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{full, minimal}))

	got, err := s.Anomalies(ctx, store.AnomalyQuery{})
	require.NoError(t, err)
	require.Equal(t, []schemas.Anomaly{normAnomaly(full), normAnomaly(minimal)}, got)
}

func testAnomalyUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	version := func(count int, lastSeen time.Duration, sev schemas.Severity, title string) schemas.Anomaly {
		a := fullAnomaly("an-1", b)
		a.Count, a.LastSeen, a.Time, a.Severity, a.Title = count, b.Add(lastSeen), b.Add(lastSeen), sev, title
		return a
	}
	get := func() schemas.Anomaly {
		t.Helper()
		got, err := s.Anomalies(ctx, store.AnomalyQuery{})
		require.NoError(t, err)
		require.Len(t, got, 1, "one anomaly, however many versions were written")
		return got[0]
	}

	v1 := version(1, time.Minute, schemas.SeverityLow, "v1")
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{v1}))
	require.Equal(t, "v1", get().Title)

	v3 := version(3, 3*time.Minute, schemas.SeverityHigh, "v3")
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{v3, v3})) // duplicate in a batch
	require.Equal(t, normAnomaly(v3), get())

	// A stale version delivered late (lower count) loses, even with a later LastSeen.
	stale := version(2, 10*time.Minute, schemas.SeverityInfo, "stale")
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{stale, v1}))
	require.Equal(t, "v3", get().Title)

	// Equal count: the latest LastSeen wins, an earlier one loses.
	later := version(3, 4*time.Minute, schemas.SeverityCritical, "v3-later")
	earlier := version(3, 2*time.Minute, schemas.SeverityInfo, "v3-earlier")
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{later}))
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{earlier}))
	require.Equal(t, normAnomaly(later), get())

	// Filters see only the winning version.
	for _, q := range []store.AnomalyQuery{
		{MinSeverity: schemas.SeverityCritical},
		{Since: b.Add(4 * time.Minute)},
		{AgentID: "agent-7", Kind: "new_tool"},
	} {
		got, err := s.Anomalies(ctx, q)
		require.NoError(t, err)
		require.Len(t, got, 1, "%+v", q)
		require.Equal(t, "v3-later", got[0].Title)
	}
	got, err := s.Anomalies(ctx, store.AnomalyQuery{Since: b.Add(5 * time.Minute)})
	require.NoError(t, err)
	require.Empty(t, got, "the stale version's later LastSeen must not match")
}

func testAnomalyFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	an := func(id, agent, kind string, sev schemas.Severity, first, last int) schemas.Anomaly {
		return schemas.Anomaly{ID: id, SchemaVersion: 1, Time: m(last), AgentID: agent, Kind: kind, Subject: id,
			Score: 50, Severity: sev, Title: id, FirstSeen: m(first), LastSeen: m(last), Count: 1}
	}
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{
		an("an1", "a1", "new_tool", schemas.SeverityHigh, 0, 10),
		an("an2", "a1", "rate_spike", schemas.SeverityMedium, 20, 30),
		an("an3", "a2", "new_tool", schemas.SeverityCritical, 40, 50),
		an("an4", "a2", "size", schemas.SeverityLow, 60, 70),
		an("an5", "a2", "rate_spike", schemas.SeverityInfo, 80, 90),
	}))

	tests := []struct {
		name string
		q    store.AnomalyQuery
		want []string
	}{
		{"all", store.AnomalyQuery{}, []string{"an5", "an4", "an3", "an2", "an1"}},
		{"agent", store.AnomalyQuery{AgentID: "a1"}, []string{"an2", "an1"}},
		{"kind", store.AnomalyQuery{Kind: "new_tool"}, []string{"an3", "an1"}},
		{"agent and kind", store.AnomalyQuery{AgentID: "a2", Kind: "rate_spike"}, []string{"an5"}},
		{"min severity high", store.AnomalyQuery{MinSeverity: schemas.SeverityHigh}, []string{"an3", "an1"}},
		{"min severity medium", store.AnomalyQuery{MinSeverity: schemas.SeverityMedium}, []string{"an3", "an2", "an1"}},
		{"min severity info", store.AnomalyQuery{MinSeverity: schemas.SeverityInfo}, []string{"an5", "an4", "an3", "an2", "an1"}},
		{"since is inclusive", store.AnomalyQuery{Since: m(30)}, []string{"an5", "an4", "an3", "an2"}},
		{"until is exclusive", store.AnomalyQuery{Until: m(40)}, []string{"an2", "an1"}},
		{"window", store.AnomalyQuery{Since: m(45), Until: m(65)}, []string{"an4", "an3"}},
		{"limit", store.AnomalyQuery{Limit: 2}, []string{"an5", "an4"}},
		{"unknown agent", store.AnomalyQuery{AgentID: "nobody"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Anomalies(ctx, tc.q)
			require.NoError(t, err)
			var ids []string
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			require.Equal(t, tc.want, ids)
		})
	}

	_, err := s.Anomalies(ctx, store.AnomalyQuery{MinSeverity: "severe"})
	require.Error(t, err, "an unknown severity is an error, not an empty result")
}

func testBaselines(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	bl := func(model, key string, at time.Duration, state string) store.Baseline {
		return store.Baseline{Model: model, Key: key, UpdatedAt: b.Add(at), State: []byte(state)}
	}
	load := func(model string) []store.Baseline {
		t.Helper()
		got, err := s.LoadBaselines(ctx, model)
		require.NoError(t, err)
		for i := range got {
			got[i].UpdatedAt = got[i].UpdatedAt.UTC()
		}
		return got
	}

	// State is opaque bytes: keep non-UTF-8 and NUL bytes intact.
	binary := string([]byte{0, 1, 2, 0xff, 0xfe, '\n'})
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{
		bl("rate", "agent-2", 0, "r2-v1"),
		bl("rate", "agent-1", 0, binary),
		bl("tools", "agent-1", 0, "t1-v1"),
	}))
	require.Equal(t, []store.Baseline{bl("rate", "agent-1", 0, binary), bl("rate", "agent-2", 0, "r2-v1")}, load("rate"))

	// A newer snapshot replaces; an older one arriving late does not.
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{bl("rate", "agent-2", time.Minute+time.Microsecond, "r2-v2")}))
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{bl("rate", "agent-2", 30*time.Second, "r2-old")}))
	require.Equal(t, []store.Baseline{bl("rate", "agent-1", 0, binary), bl("rate", "agent-2", time.Minute+time.Microsecond, "r2-v2")}, load("rate"))
	require.Equal(t, []store.Baseline{bl("tools", "agent-1", 0, "t1-v1")}, load("tools"))
	require.Empty(t, load("unknown"))
}

// testBaselinesOf checks that LoadBaselinesOf answers as LoadBaselines filtered to the keys.
func testBaselinesOf(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	bl := func(model, key string, at time.Duration, state string) store.Baseline {
		return store.Baseline{Model: model, Key: key, UpdatedAt: b.Add(at), State: []byte(state)}
	}
	load := func(model string, keys []string) ([]store.Baseline, error) {
		got, err := s.LoadBaselinesOf(ctx, model, keys)
		for i := range got {
			got[i].UpdatedAt = got[i].UpdatedAt.UTC()
		}
		return got, err
	}

	binary := string([]byte{0, 1, 2, 0xff, 0xfe, '\n'})
	odd := `o'k\?` // a key that needs quoting where it is bound into SQL text
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{
		bl("rate", "a3", 0, "rate-a3"),
		bl("rate", "a1", 0, "rate-a1-v1"),
		bl("rate", "a2", 0, binary),
		bl("rate", odd, 0, "rate-odd"),
		bl("tools", "a1", 0, "tools-a1"),
		bl("tools", "a4", 0, "tools-a4"),
	}))
	// a1 gets a newer snapshot, then an older one arriving late, in separate writes (separate
	// ClickHouse parts, all visible until merged).
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{bl("rate", "a1", time.Minute+time.Microsecond, "rate-a1-v2")}))
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{bl("rate", "a1", 30*time.Second, "rate-a1-old")}))
	a1 := bl("rate", "a1", time.Minute+time.Microsecond, "rate-a1-v2")

	tests := []struct {
		name  string
		model string
		keys  []string
		want  []store.Baseline
	}{
		{"one key", "rate", []string{"a3"}, []store.Baseline{bl("rate", "a3", 0, "rate-a3")}},
		{"latest snapshot wins", "rate", []string{"a1"}, []store.Baseline{a1}},
		{"ordered by key", "rate", []string{"a3", "a2", "a1"}, []store.Baseline{a1, bl("rate", "a2", 0, binary), bl("rate", "a3", 0, "rate-a3")}},
		{"missing keys left out", "rate", []string{"nope", "a2", "a4", ""}, []store.Baseline{bl("rate", "a2", 0, binary)}},
		{"other model", "tools", []string{"a1", "a2", "a3", "a4"}, []store.Baseline{bl("tools", "a1", 0, "tools-a1"), bl("tools", "a4", 0, "tools-a4")}},
		{"duplicate keys", "rate", []string{"a3", "a3"}, []store.Baseline{bl("rate", "a3", 0, "rate-a3")}},
		{"key needing quotes", "rate", []string{odd, "o'k"}, []store.Baseline{bl("rate", odd, 0, "rate-odd")}},
		{"unknown model", "unknown", []string{"a1"}, nil},
		{"only missing keys", "rate", []string{"a4"}, nil},
		{"nil keys", "rate", nil, nil},
		{"no keys", "rate", []string{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(tc.model, tc.keys)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	// Asking for every key of a model is LoadBaselines.
	all, err := s.LoadBaselines(ctx, "rate")
	require.NoError(t, err)
	var keys []string
	for _, a := range all {
		keys = append(keys, a.Key)
	}
	got, err := s.LoadBaselinesOf(ctx, "rate", keys)
	require.NoError(t, err)
	require.Equal(t, all, got)

	// MaxBaselineKeys keys are fine; one more is an error naming the limit.
	keys = make([]string, store.MaxBaselineKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%05d", i)
	}
	keys[len(keys)/2] = "a2"
	got, err = load("rate", keys)
	require.NoError(t, err)
	require.Equal(t, []store.Baseline{bl("rate", "a2", 0, binary)}, got)
	got, err = load("rate", append(keys, "a1"))
	require.ErrorContains(t, err, fmt.Sprintf("at most %d", store.MaxBaselineKeys))
	require.Nil(t, got)
}

func testDropExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	old := now.Add(-90 * 24 * time.Hour) // beyond any sensible retention, and in another partition
	recent := now.Add(-time.Hour)

	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{
		ev("old-1", "old", "a1", "srv", old, "tools/call", "t", schemas.StatusOK),
		ev("old-2", "old", "a1", "srv", old.Add(time.Second), "tools/call", "t", schemas.StatusOK),
		ev("new-1", "new", "a1", "srv", recent, "tools/call", "t", schemas.StatusOK),
	}))
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{
		{ID: "an-old", AgentID: "a1", Kind: "k", Severity: schemas.SeverityLow, Time: old, FirstSeen: old, LastSeen: old, Count: 1},
		{ID: "an-new", AgentID: "a1", Kind: "k", Severity: schemas.SeverityLow, Time: recent, FirstSeen: old, LastSeen: recent, Count: 1},
	}))
	require.NoError(t, s.SaveBaselines(ctx, []store.Baseline{{Model: "m", Key: "k", UpdatedAt: old, State: []byte("s")}}))
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{
		{ID: "d-old", AnomalyID: "an-old", Sink: "webhook", Status: "delivered", Time: old},
		{ID: "d-new", AnomalyID: "an-new", Sink: "webhook", Status: "delivered", Time: recent},
	}))
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{
		{ServerID: "srv", Kind: "tool", Name: "t", Fingerprint: "f", Definition: "{}", FirstSeen: old, LastSeen: old},
	}))

	require.NoError(t, s.DropExpired(ctx, now))
	require.NoError(t, s.DropExpired(ctx, now), "nothing left to drop is fine")

	_, err := s.Session(ctx, "old")
	require.ErrorIs(t, err, store.ErrNotFound)
	sess, err := s.Session(ctx, "new")
	require.NoError(t, err)
	require.Equal(t, 1, sess.Events)

	got, err := s.Anomalies(ctx, store.AnomalyQuery{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "an-new", got[0].ID, "an anomaly is kept while its last sighting is retained")

	bl, err := s.LoadBaselines(ctx, "m")
	require.NoError(t, err)
	require.Len(t, bl, 1, "baselines never expire")

	ds, err := s.Deliveries(ctx, store.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, "d-new", ds[0].ID, "old deliveries expire")
	defs, err := s.Definitions(ctx, store.DefinitionQuery{})
	require.NoError(t, err)
	require.Len(t, defs, 1, "definitions never expire")
}

// testConcurrent has writers (overlapping, as redelivery does) race readers; every event is
// counted exactly once in the end.
func testConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	const writers, batches, perBatch = 4, 5, 50
	var writing, reading sync.WaitGroup
	errs := make(chan error, writers+2)
	for w := range writers {
		writing.Go(func() {
			for i := range batches {
				var batch []schemas.Event
				for j := range perBatch {
					// Writer w also writes writer (w+1)'s events: every event arrives twice.
					for _, owner := range []int{w, (w + 1) % writers} {
						n := (owner*batches+i)*perBatch + j
						batch = append(batch, ev(fmt.Sprintf("c%05d", n), fmt.Sprintf("cs%d", owner), "a1", "srv",
							b.Add(time.Duration(n)*time.Millisecond), "tools/call", "t", schemas.StatusOK))
					}
				}
				if err := s.InsertEvents(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	for range 2 {
		reading.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Sessions(ctx, store.SessionQuery{AgentID: "a1"}); err != nil {
					errs <- err
					return
				}
				if _, err := s.SessionEvents(ctx, "cs0", 10); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writing.Wait()
	close(done)
	reading.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	list, err := s.Sessions(ctx, store.SessionQuery{})
	require.NoError(t, err)
	require.Len(t, list, writers)
	for _, l := range list {
		require.Equal(t, batches*perBatch, l.Events, l.ID)
	}
}
