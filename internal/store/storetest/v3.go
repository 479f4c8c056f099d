package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// This file covers what schema version 3 added: one anomaly by id, the new session and anomaly
// filters, keyset pagination, agents and their risk, time series, values, definitions and
// deliveries.

func ids[T any](items []T, id func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func sessionIDs(ss []store.Session) []string {
	return ids(ss, func(s store.Session) string { return s.ID })
}

func anomalyIDs(as []schemas.Anomaly) []string {
	return ids(as, func(a schemas.Anomaly) string { return a.ID })
}

// an builds an anomaly version with the fields the v3 queries look at.
func an(id, agent, session, server, kind string, score float64, first, last time.Time, count int) schemas.Anomaly {
	return schemas.Anomaly{ID: id, SchemaVersion: schemas.AnomalySchemaVersion, Time: last, AgentID: agent,
		SessionID: session, ServerID: server, Kind: kind, Subject: id, Score: score,
		Severity: schemas.SeverityForScore(score), Title: id, FirstSeen: first, LastSeen: last, Count: count}
}

func testAnomalyByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	full := fullAnomaly("an-full", b)
	older := full
	older.Count, older.Title, older.Tags, older.LastSeen = 1, "older", []string{"stale"}, b.Add(time.Hour)
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{older, full, an("an-other", "a9", "", "", "k", 10, b, b, 1)}))

	got, err := s.Anomaly(ctx, "an-full")
	require.NoError(t, err)
	require.Equal(t, normAnomaly(full), got, "the latest version, tags included")
	require.Equal(t, []string{"pii", "prod", "team:payments"}, got.Tags)

	for _, id := range []string{"missing", ""} {
		_, err := s.Anomaly(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "anomaly %q", id)
	}
}

func testAnomalyFiltersV3(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	// an3 moved: its first version was in session s1 on srvA with score 95; its latest version
	// is in s2 on srvB with score 35. Only the latest counts.
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{
		an("an1", "a1", "s1", "srvA", "new_tool", 80, m(0), m(10), 1),
		an("an2", "a1", "s1", "srvB", "rate", 45.5, m(20), m(30), 1),
		an("an3", "a2", "s1", "srvA", "size", 95, m(40), m(50), 1),
		an("an3", "a2", "s2", "srvB", "size", 35, m(40), m(55), 2),
		an("an4", "a2", "", "", "sequence", 20, m(60), m(70), 1),
	}))
	tests := []struct {
		name string
		q    store.AnomalyQuery
		want []string
	}{
		{"server", store.AnomalyQuery{ServerID: "srvA"}, []string{"an1"}},
		{"server of the latest version", store.AnomalyQuery{ServerID: "srvB"}, []string{"an3", "an2"}},
		{"session", store.AnomalyQuery{SessionID: "s1"}, []string{"an2", "an1"}},
		{"session of the latest version", store.AnomalyQuery{SessionID: "s2"}, []string{"an3"}},
		{"min score", store.AnomalyQuery{MinScore: 45.5}, []string{"an2", "an1"}},
		{"min score is the latest version's", store.AnomalyQuery{MinScore: 90}, nil},
		{"min score low", store.AnomalyQuery{MinScore: 20}, []string{"an4", "an3", "an2", "an1"}},
		{"all combined", store.AnomalyQuery{AgentID: "a1", ServerID: "srvB", SessionID: "s1", MinScore: 40, Kind: "rate"}, []string{"an2"}},
		{"unknown session", store.AnomalyQuery{SessionID: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Anomalies(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, anomalyIDs(got))
		})
	}
}

// pages follows cursors with the given page size until a short page, failing on a loop.
func pages[T, C any](t *testing.T, size int, page func(after *C, limit int) []T, cursor func(T) *C) []T {
	t.Helper()
	var all []T
	var after *C
	for range 1000 {
		got := page(after, size)
		require.LessOrEqual(t, len(got), size)
		all = append(all, got...)
		if len(got) < size {
			return all
		}
		after = cursor(got[len(got)-1])
	}
	t.Fatal("pagination does not end")
	return nil
}

func testSessionPagination(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	var events []schemas.Event
	for i := range 25 {
		// Last activity ties in threes; ids do not follow time order.
		id := fmt.Sprintf("p%02d", (i*7)%25)
		agent := []string{"a1", "a2"}[i%2]
		last := b.Add(time.Duration(i/3) * time.Second)
		events = append(events,
			ev(id+"-0", id, agent, "srv", last.Add(-time.Minute), "tools/call", "t", schemas.StatusOK),
			ev(id+"-1", id, agent, "srv", last, "tools/call", "t", schemas.StatusOK))
	}
	require.NoError(t, s.InsertEvents(ctx, events))
	require.NoError(t, s.InsertEvents(ctx, events[:20])) // redelivered

	for _, q := range []store.SessionQuery{{}, {AgentID: "a1"}, {Since: b.Add(2 * time.Second)}} {
		full, err := s.Sessions(ctx, store.SessionQuery{AgentID: q.AgentID, Since: q.Since, Limit: 1000})
		require.NoError(t, err)
		require.NotEmpty(t, full)
		for _, size := range []int{1, 4, 7, len(full), len(full) + 1} {
			got := pages(t, size, func(after *store.SessionCursor, limit int) []store.Session {
				q := q
				q.After, q.Limit = after, limit
				page, err := s.Sessions(ctx, q)
				require.NoError(t, err)
				return page
			}, func(last store.Session) *store.SessionCursor {
				return &store.SessionCursor{LastSeen: last.LastSeen, ID: last.ID}
			})
			require.Equal(t, sessionIDs(full), sessionIDs(got), "query %+v, page size %d", q, size)
		}
	}
	// A cursor is a position, not a row: it need not be a listed session.
	got, err := s.Sessions(ctx, store.SessionQuery{After: &store.SessionCursor{LastSeen: b.Add(5 * time.Second), ID: "p99"}})
	require.NoError(t, err)
	for _, g := range got {
		require.True(t, g.LastSeen.Before(b.Add(5*time.Second)), g.ID)
	}
	require.Len(t, got, 15, "sessions 0…14 end before the 6th second")
}

func testAnomalyPagination(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	var all []schemas.Anomaly
	for i := range 25 {
		id := fmt.Sprintf("q%02d", (i*7)%25)
		last := b.Add(time.Duration(i/3) * time.Second)
		// An older version with a later LastSeen, that must not decide the order.
		all = append(all, an(id, []string{"a1", "a2"}[i%2], "", "", "k", 50, b.Add(-time.Hour), last.Add(time.Hour), 1),
			an(id, []string{"a1", "a2"}[i%2], "", "", "k", 50, b.Add(-time.Hour), last, 2))
	}
	require.NoError(t, s.UpsertAnomalies(ctx, all))

	for _, q := range []store.AnomalyQuery{{}, {AgentID: "a2"}, {Since: b.Add(3 * time.Second)}} {
		withLimit := q
		withLimit.Limit = 1000
		full, err := s.Anomalies(ctx, withLimit)
		require.NoError(t, err)
		require.NotEmpty(t, full)
		for _, size := range []int{1, 4, 7, len(full), len(full) + 1} {
			got := pages(t, size, func(after *store.AnomalyCursor, limit int) []schemas.Anomaly {
				q := q
				q.After, q.Limit = after, limit
				page, err := s.Anomalies(ctx, q)
				require.NoError(t, err)
				return page
			}, func(last schemas.Anomaly) *store.AnomalyCursor {
				return &store.AnomalyCursor{LastSeen: last.LastSeen, ID: last.ID}
			})
			require.Equal(t, anomalyIDs(full), anomalyIDs(got), "query %+v, page size %d", q, size)
		}
	}
	got, err := s.Anomalies(ctx, store.AnomalyQuery{After: &store.AnomalyCursor{LastSeen: b.Add(time.Second), ID: ""}})
	require.NoError(t, err)
	require.Len(t, got, 6, "anomalies 0…5 end at or before second 1, and all sort after an empty id")
}

func testSessionsV3(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	events := []schemas.Event{
		ev("e1", "s1", "a1", "fs", m(0), "tools/call", "delete_file", schemas.StatusOK),
		ev("e2", "s1", "a1", "fs", m(30), "tools/call", "read_file", schemas.StatusOK),
		ev("e3", "s2", "a1", "fs", m(40), "tools/call", "read_file", schemas.StatusOK),
		// A prompt named like a tool is not a tool call.
		ev("e4", "s3", "a2", "fs", m(50), "prompts/get", "delete_file", schemas.StatusOK),
		ev("e5", "s4", "a2", "fs", m(60), "tools/list", "", schemas.StatusOK),
	}
	require.NoError(t, s.InsertEvents(ctx, events))
	// an3's first version (in s1, score 99) was superseded by one in s2 scoring 30; learning
	// anomalies count for sessions.
	learning := an("an2", "a1", "s1", "fs", "new_tool", 85, m(0), m(1), 1)
	learning.Learning = true
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{
		an("an1", "a1", "s1", "fs", "rate", 40, m(0), m(5), 1),
		learning,
		an("an3", "a1", "s1", "fs", "size", 99, m(0), m(2), 1),
		an("an3", "a1", "s2", "fs", "size", 30, m(0), m(40), 2),
		an("an4", "a2", "", "fs", "size", 70, m(0), m(40), 1),
	}))

	stats := func(ss store.Session) [2]float64 { return [2]float64{float64(ss.Anomalies), ss.MaxScore} }
	want := map[string][2]float64{"s1": {2, 85}, "s2": {1, 30}, "s3": {0, 0}, "s4": {0, 0}}
	for id, w := range want {
		got, err := s.Session(ctx, id)
		require.NoError(t, err)
		require.Equal(t, w, stats(got), id)
		list, err := s.Anomalies(ctx, store.AnomalyQuery{SessionID: id})
		require.NoError(t, err)
		require.Len(t, list, int(w[0]), "Session.Anomalies counts what the session filter lists")
	}
	list, err := s.Sessions(ctx, store.SessionQuery{})
	require.NoError(t, err)
	require.Equal(t, []string{"s4", "s3", "s2", "s1"}, sessionIDs(list))
	for _, ss := range list {
		require.Equal(t, want[ss.ID], stats(ss), ss.ID)
	}

	tests := []struct {
		name string
		q    store.SessionQuery
		want []string
	}{
		{"tool", store.SessionQuery{Tool: "read_file"}, []string{"s2", "s1"}},
		{"tool called before since", store.SessionQuery{Tool: "delete_file", Since: m(20)}, []string{"s1"}},
		{"tool and agent", store.SessionQuery{Tool: "read_file", AgentID: "a2"}, nil},
		{"unknown tool", store.SessionQuery{Tool: "nope"}, nil},
		{"min score", store.SessionQuery{MinScore: 50}, []string{"s1"}},
		{"min score counts learning", store.SessionQuery{MinScore: 85}, []string{"s1"}},
		{"min score of the latest version only", store.SessionQuery{MinScore: 90}, nil},
		{"min score low", store.SessionQuery{MinScore: 30}, []string{"s2", "s1"}},
		{"min score and tool", store.SessionQuery{MinScore: 30, Tool: "delete_file"}, []string{"s1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Sessions(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, sessionIDs(got))
		})
	}
}

func testAgents(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	noSession := ev("al-6", "", "alpha", "fs", m(12), "tools/call", "read_file", schemas.StatusMalformed)
	events := []schemas.Event{
		ev("al-1", "s-a1", "alpha", "fs", m(0), "tools/call", "read_file", schemas.StatusOK),
		ev("al-2", "s-a1", "alpha", "fs", m(1), "tools/call", "write_file", schemas.StatusError),
		ev("al-3", "s-a1", "alpha", "fs", m(2), "tools/list", "", schemas.StatusOK),
		ev("al-4", "s-a2", "alpha", "gh", m(10), "tools/call", "search", schemas.StatusToolError),
		ev("al-5", "s-a2", "alpha", "gh", m(11), "tools/call", "search", schemas.StatusTimeout),
		noSession,
		ev("be-1", "s-b1", "beta", "fs", m(5), "tools/call", "read_file", schemas.StatusOK),
		ev("be-2", "s-b1", "beta", "fs", m(20), "tools/call", "read_file", schemas.StatusOK),
		ev("ga-1", "s-g1", "gamma", "db", m(30), "prompts/get", "summarise", schemas.StatusOK),
		ev("ga-2", "s-g1", "gamma", "db", m(90), "tools/call", "query", schemas.StatusOK),
		ev("de-1", "s-d1", "delta", "", m(20), "tools/list", "", schemas.StatusOK),
	}
	require.NoError(t, s.InsertEvents(ctx, events))
	require.NoError(t, s.InsertEvents(ctx, events[:6])) // redelivered: counted once

	learning := an("al-learn", "alpha", "s-a1", "fs", "new_tool", 95, m(0), m(3), 1)
	learning.Learning = true
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{
		an("al-an1", "alpha", "s-a1", "fs", "rate", 50, m(0), m(3), 1),
		an("al-an2", "alpha", "s-a2", "gh", "size", 50, m(10), m(12), 1),
		learning,
		an("al-late", "alpha", "", "fs", "rate", 20, m(100), m(100), 1), // after the range
		an("be-an", "beta", "s-b1", "fs", "rate", 30, m(5), m(6), 1),
		an("be-an", "beta", "s-b1", "fs", "rate", 90, m(5), m(7), 2), // latest version
		an("ga-an", "gamma", "s-g1", "db", "injection", 100, m(30), m(31), 1),
		an("ep-an", "epsilon", "", "", "rate", 99, m(5), m(6), 1), // no events: no agent
	}))

	alpha := store.Agent{ID: "alpha", FirstSeen: m(0), LastSeen: m(12), Events: 6, Errors: 3, Sessions: 2,
		Servers: []string{"fs", "gh"}, Tools: []string{"read_file", "search", "write_file"}, Anomalies: 2, MaxScore: 50, Risk: 75}
	beta := store.Agent{ID: "beta", FirstSeen: m(5), LastSeen: m(20), Events: 2, Sessions: 1,
		Servers: []string{"fs"}, Tools: []string{"read_file"}, Anomalies: 1, MaxScore: 90, Risk: 90}
	gamma := store.Agent{ID: "gamma", FirstSeen: m(30), LastSeen: m(30), Events: 1, Sessions: 1,
		Servers: []string{"db"}, Tools: []string{}, Anomalies: 1, MaxScore: 100, Risk: 99.9}
	delta := store.Agent{ID: "delta", FirstSeen: m(20), LastSeen: m(20), Events: 1, Sessions: 1,
		Servers: []string{}, Tools: []string{}}
	window := store.AgentQuery{Since: m(0), Until: m(60)}

	got, err := s.Agents(ctx, window)
	require.NoError(t, err)
	require.Equal(t, []store.Agent{gamma, beta, alpha, delta}, got, "riskiest first, then most recent")

	window.Limit = 2
	got, err = s.Agents(ctx, window)
	require.NoError(t, err)
	require.Equal(t, []store.Agent{gamma, beta}, got)

	one, err := s.Agent(ctx, "alpha", store.AgentQuery{Since: m(0), Until: m(60)})
	require.NoError(t, err)
	require.Equal(t, alpha, one)

	// Unbounded: gamma's later call and alpha's later anomaly count; risk 1−0.5·0.5·0.8.
	all, err := s.Agents(ctx, store.AgentQuery{})
	require.NoError(t, err)
	require.Equal(t, []string{"gamma", "beta", "alpha", "delta"}, ids(all, func(a store.Agent) string { return a.ID }))
	require.Equal(t, 80.0, all[2].Risk)
	require.Equal(t, 3, all[2].Anomalies)
	require.Equal(t, 2, all[0].Events)
	require.Equal(t, []string{"query"}, all[0].Tools)

	// A later window: the range bounds events ([Since, Until)) and anomalies by LastSeen.
	got, err = s.Agents(ctx, store.AgentQuery{Since: m(12), Until: m(90)})
	require.NoError(t, err)
	require.Equal(t, []string{"gamma", "alpha", "beta", "delta"}, ids(got, func(a store.Agent) string { return a.ID }))
	require.Equal(t, 1, got[1].Events, "alpha: only the event at the 12th minute")
	require.Equal(t, 50.0, got[1].Risk, "alpha: only al-an2, last seen at the 12th minute")
	require.Equal(t, 0, got[2].Anomalies, "beta's anomaly was last seen before the window")
	require.Equal(t, 1, got[2].Events)

	for _, tc := range []struct {
		id string
		q  store.AgentQuery
	}{
		{"gamma", store.AgentQuery{Since: m(60), Until: m(80)}}, // events only outside the window
		{"epsilon", store.AgentQuery{}},                         // anomalies only
		{"", store.AgentQuery{}},
	} {
		_, err := s.Agent(ctx, tc.id, tc.q)
		require.ErrorIs(t, err, store.ErrNotFound, tc.id)
	}
	none, err := s.Agents(ctx, store.AgentQuery{Since: m(200)})
	require.NoError(t, err)
	require.NotNil(t, none)
	require.Empty(t, none)
}

func testRisk(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	tests := []struct {
		scores []float64
		risk   float64
	}{
		{nil, 0},
		{[]float64{90}, 90},
		{[]float64{50, 50}, 75},
		{[]float64{10, 20}, 28},
		{[]float64{100}, 99.9},
		{[]float64{100, 100}, 100}, // 1 − 0.001² rounds to 100.0
		{[]float64{33.33, 33.33, 33.33}, 70.4},
		{[]float64{0.04}, 0}, // rounds down to 0.0
		{[]float64{0.05, 0.01}, 0.1},
		{[]float64{40, 40, 40, 40, 40}, 92.2},
	}
	var events []schemas.Event
	var anomalies []schemas.Anomaly
	for i, tc := range tests {
		agent := fmt.Sprintf("r%02d", i)
		events = append(events, ev(agent+"-e", agent+"-s", agent, "srv", b, "tools/list", "", schemas.StatusOK))
		for j, sc := range tc.scores {
			anomalies = append(anomalies, an(fmt.Sprintf("%s-%d", agent, j), agent, "", "", "k", sc, b, b, 1))
		}
	}
	require.NoError(t, s.InsertEvents(ctx, events))
	require.NoError(t, s.UpsertAnomalies(ctx, anomalies))
	for i, tc := range tests {
		got, err := s.Agent(ctx, fmt.Sprintf("r%02d", i), store.AgentQuery{})
		require.NoError(t, err)
		require.Equal(t, tc.risk, got.Risk, "scores %v", tc.scores)
		require.Equal(t, len(tc.scores), got.Anomalies)
	}
}

// at returns the start of the bucket of size step holding t, counted from the Unix epoch.
func at(t time.Time, step time.Duration) time.Time {
	us := t.UnixMicro()
	return time.UnixMicro(us - us%step.Microseconds()).UTC()
}

func pt(t time.Time, v float64) store.Point { return store.Point{Time: t, Value: v} }

func testTimeSeries(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := base().Truncate(time.Hour) // a multiple of a minute since the Unix epoch
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	notif := ev("n", "s1", "a1", "srvA", sec(20), "notifications/initialized", "", schemas.StatusOK)
	events := []schemas.Event{
		ev("before", "s0", "a1", "srvA", sec(4), "tools/call", "read", schemas.StatusOK), // before Since
		ev("c1", "s1", "a1", "srvA", sec(10), "tools/call", "read", schemas.StatusOK),
		notif,
		ev("c2", "s1", "a1", "srvA", sec(50), "tools/call", "read", schemas.StatusOK),
		ev("c3", "s1", "a1", "srvA", sec(70), "tools/call", "read", schemas.StatusOK),
		ev("c4", "s1", "a1", "srvA", sec(75), "tools/list", "", schemas.StatusOK),
		ev("c5", "s2", "a2", "srvB", sec(130), "tools/call", "write", schemas.StatusError),
		ev("c6", "s2", "a2", "srvB", sec(135), "tools/call", "write", schemas.StatusToolError),
		ev("c7", "s2", "a2", "srvB", sec(140), "tools/call", "write", schemas.StatusOK),
		ev("until", "s2", "a2", "srvB", sec(180), "tools/call", "write", schemas.StatusError), // at Until
	}
	require.NoError(t, s.InsertEvents(ctx, events))
	require.NoError(t, s.InsertEvents(ctx, events[3:7])) // redelivered: counted once

	learning := an("x-learn", "a1", "s1", "srvA", "new_tool", 90, sec(30), sec(30), 1)
	learning.Learning = true
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{
		an("x1", "a1", "s1", "srvA", "new_tool", 75, sec(10), sec(100), 1), // high
		an("x2", "a2", "s2", "srvB", "rate", 30, sec(65), sec(70), 1),      // low, superseded
		an("x2", "a2", "s2", "srvB", "rate", 95, sec(65), sec(170), 2),     // critical
		an("x3", "a2", "s2", "srvB", "rate", 50, sec(-60), sec(100), 1),    // first seen before Since
		an("x4", "a2", "", "", "size", 45, sec(119), sec(119), 1),          // medium, no server
		learning,
	}))
	dl := func(id, sink, status string, n int) store.Delivery {
		return store.Delivery{ID: id, AnomalyID: "x1", AgentID: "a1", Kind: "new_tool", Severity: "high", Sink: sink,
			Status: status, Attempts: 1, Time: sec(n)}
	}
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{
		dl("d1", "webhook", "delivered", 10), dl("d1", "webhook", "delivered", 10), dl("d2", "syslog", "dead_lettered", 15),
		dl("d3", "webhook", "delivered", 70), dl("d2", "syslog", "replayed", 125),
	}))

	since, until := sec(5), sec(180) // Since is not on a bucket boundary: the first bucket starts at t0
	q := func(metric, by string) store.SeriesQuery {
		return store.SeriesQuery{Metric: metric, By: by, Step: time.Minute, Since: since, Until: until}
	}
	with := func(q store.SeriesQuery, f func(*store.SeriesQuery)) store.SeriesQuery { f(&q); return q }
	m0, m1, m2 := sec(0), sec(60), sec(120)
	tests := []struct {
		name string
		q    store.SeriesQuery
		want []store.Series
	}{
		{"calls", q("calls", ""), []store.Series{{Key: "total", Points: []store.Point{pt(m0, 2), pt(m1, 2), pt(m2, 3)}}}},
		{"calls by tool", q("calls", "tool"), []store.Series{
			{Key: "read", Points: []store.Point{pt(m0, 2), pt(m1, 1)}},
			{Key: "write", Points: []store.Point{pt(m2, 3)}},
			{Key: "", Points: []store.Point{pt(m1, 1)}},
		}},
		{"calls by tool, limit", with(q("calls", "tool"), func(q *store.SeriesQuery) { q.Limit = 2 }), []store.Series{
			{Key: "read", Points: []store.Point{pt(m0, 2), pt(m1, 1)}},
			{Key: "write", Points: []store.Point{pt(m2, 3)}},
		}},
		{"calls by agent", q("calls", "agent"), []store.Series{
			{Key: "a1", Points: []store.Point{pt(m0, 2), pt(m1, 2)}},
			{Key: "a2", Points: []store.Point{pt(m2, 3)}},
		}},
		{"calls by server, limit 1", with(q("calls", "server"), func(q *store.SeriesQuery) { q.Limit = 1 }), []store.Series{
			{Key: "srvA", Points: []store.Point{pt(m0, 2), pt(m1, 2)}},
		}},
		{"calls of a server", with(q("calls", ""), func(q *store.SeriesQuery) { q.ServerID = "srvB" }), []store.Series{
			{Key: "total", Points: []store.Point{pt(m2, 3)}},
		}},
		{"calls of a tool", with(q("calls", "agent"), func(q *store.SeriesQuery) { q.Tool = "read" }), []store.Series{
			{Key: "a1", Points: []store.Point{pt(m0, 2), pt(m1, 1)}},
		}},
		{"calls of an agent", with(q("calls", "tool"), func(q *store.SeriesQuery) { q.AgentID = "a2" }), []store.Series{
			{Key: "write", Points: []store.Point{pt(m2, 3)}},
		}},
		{"errors by tool", q("errors", "tool"), []store.Series{{Key: "write", Points: []store.Point{pt(m2, 2)}}}},
		{"errors", q("errors", ""), []store.Series{{Key: "total", Points: []store.Point{pt(m2, 2)}}}},
		{"anomalies", q("anomalies", ""), []store.Series{{Key: "total", Points: []store.Point{pt(m0, 1), pt(m1, 2)}}}},
		// x3 was first seen before Since; the learning anomaly never counts.
		{"anomalies by kind", q("anomalies", "kind"), []store.Series{
			{Key: "new_tool", Points: []store.Point{pt(m0, 1)}},
			{Key: "rate", Points: []store.Point{pt(m1, 1)}},
			{Key: "size", Points: []store.Point{pt(m1, 1)}},
		}},
		{"anomalies by severity", q("anomalies", "severity"), []store.Series{
			{Key: "critical", Points: []store.Point{pt(m1, 1)}},
			{Key: "high", Points: []store.Point{pt(m0, 1)}},
			{Key: "medium", Points: []store.Point{pt(m1, 1)}},
		}},
		{"anomalies by server", q("anomalies", "server"), []store.Series{
			{Key: "", Points: []store.Point{pt(m1, 1)}},
			{Key: "srvA", Points: []store.Point{pt(m0, 1)}},
			{Key: "srvB", Points: []store.Point{pt(m1, 1)}},
		}},
		{"anomalies of a server", with(q("anomalies", "agent"), func(q *store.SeriesQuery) { q.ServerID = "srvB" }), []store.Series{
			{Key: "a2", Points: []store.Point{pt(m1, 1)}},
		}},
		{"anomalies of an agent", with(q("anomalies", "kind"), func(q *store.SeriesQuery) { q.AgentID = "a2" }), []store.Series{
			{Key: "rate", Points: []store.Point{pt(m1, 1)}},
			{Key: "size", Points: []store.Point{pt(m1, 1)}},
		}},
		{"deliveries by sink", q("deliveries", "sink"), []store.Series{
			{Key: "syslog", Points: []store.Point{pt(m0, 1), pt(m2, 1)}},
			{Key: "webhook", Points: []store.Point{pt(m0, 1), pt(m1, 1)}},
		}},
		{"deliveries by status", q("deliveries", "status"), []store.Series{
			{Key: "delivered", Points: []store.Point{pt(m0, 1), pt(m1, 1)}},
			{Key: "dead_lettered", Points: []store.Point{pt(m0, 1)}},
			{Key: "replayed", Points: []store.Point{pt(m2, 1)}},
		}},
		{"deliveries of an agent", with(q("deliveries", ""), func(q *store.SeriesQuery) { q.AgentID = "a1" }), []store.Series{
			{Key: "total", Points: []store.Point{pt(m0, 2), pt(m1, 1), pt(m2, 1)}},
		}},
		{"nothing", with(q("calls", ""), func(q *store.SeriesQuery) { q.AgentID = "nobody" }), []store.Series{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.TimeSeries(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	// Buckets start at multiples of Step since the Unix epoch, whatever Since is: check odd
	// steps against the same bucketing done here.
	inRange := []schemas.Event{}
	for _, e := range events {
		if e.Kind == schemas.KindRequest && !e.ObservedAt.Before(since) && e.ObservedAt.Before(until) {
			inRange = append(inRange, e)
		}
	}
	for _, step := range []time.Duration{time.Second, 7 * time.Second, 13 * time.Second, 90 * time.Second, 7 * time.Minute, 24 * time.Hour} {
		var want []store.Point
		for _, e := range inRange {
			b := at(e.ObservedAt, step)
			if n := len(want); n > 0 && want[n-1].Time.Equal(b) {
				want[n-1].Value++
			} else {
				want = append(want, pt(b, 1))
			}
		}
		got, err := s.TimeSeries(ctx, store.SeriesQuery{Metric: "calls", Step: step, Since: since, Until: until})
		require.NoError(t, err)
		require.Len(t, got, 1, "step %s", step)
		require.Equal(t, want, got[0].Points, "step %s", step)
	}

	bad := []store.SeriesQuery{
		{Metric: "bytes", Step: time.Minute, Since: since, Until: until},
		{Metric: "calls", By: "kind", Step: time.Minute, Since: since, Until: until},
		{Metric: "anomalies", By: "tool", Step: time.Minute, Since: since, Until: until},
		{Metric: "deliveries", By: "server", Step: time.Minute, Since: since, Until: until},
		{Metric: "anomalies", Tool: "read", Step: time.Minute, Since: since, Until: until},
		{Metric: "deliveries", ServerID: "srvA", Step: time.Minute, Since: since, Until: until},
		{Metric: "calls", Step: 500 * time.Millisecond, Since: since, Until: until},
		{Metric: "calls", Step: time.Minute, Until: until},
		{Metric: "calls", Step: time.Minute, Since: since},
		{Metric: "calls", Step: time.Minute, Since: until, Until: since},
		{Metric: "calls", Step: time.Minute, Since: since, Until: since},
		{Metric: "calls", Step: time.Second, Since: since, Until: since.Add(24 * time.Hour)}, // 86,400 buckets
	}
	for _, q := range bad {
		_, err := s.TimeSeries(ctx, q)
		require.Error(t, err, "%+v", q)
	}
}

func testValues(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{
		ev("v1", "s1", "a2", "srvB", m(0), "tools/call", "write", schemas.StatusOK),
		ev("v2", "s1", "a2", "srvB", m(1), "tools/call", "read", schemas.StatusOK),
		ev("v3", "s2", "a1", "srvA", m(2), "tools/call", "read", schemas.StatusOK),
		ev("v4", "s3", "a3", "srvC", m(30), "prompts/get", "summarise", schemas.StatusOK),
		ev("v5", "s4", "a1", "", m(40), "tools/call", "", schemas.StatusOK),
	}))
	tests := []struct {
		field string
		q     store.ValuesQuery
		want  []string
	}{
		{"agent", store.ValuesQuery{}, []string{"a1", "a2", "a3"}},
		{"server", store.ValuesQuery{}, []string{"srvA", "srvB", "srvC"}},
		{"tool", store.ValuesQuery{}, []string{"read", "write"}},
		{"agent", store.ValuesQuery{Since: m(1), Until: m(30)}, []string{"a1", "a2"}},
		{"agent", store.ValuesQuery{Since: m(30)}, []string{"a1", "a3"}},
		{"server", store.ValuesQuery{AgentID: "a2"}, []string{"srvB"}},
		{"tool", store.ValuesQuery{AgentID: "a1"}, []string{"read"}},
		{"tool", store.ValuesQuery{AgentID: "a3"}, []string{}},
		{"agent", store.ValuesQuery{AgentID: "a3"}, []string{"a3"}},
		{"agent", store.ValuesQuery{Limit: 2}, []string{"a1", "a2"}},
	}
	for _, tc := range tests {
		got, err := s.Values(ctx, tc.field, tc.q)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%s %+v", tc.field, tc.q)
	}
	for _, field := range []string{"agents", "session", ""} {
		_, err := s.Values(ctx, field, store.ValuesQuery{})
		require.Error(t, err, field)
	}
}

func testDefinitions(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	d := func(server, kind, name, fp string, first, last int) store.Definition {
		def := ""
		if fp != "" {
			def = `{"name":"` + name + `","fp":"` + fp + `"}`
		}
		return store.Definition{ServerID: server, Kind: kind, Name: name, Fingerprint: fp, Definition: def,
			FirstSeen: m(first), LastSeen: m(last)}
	}
	v1 := d("github", "tool", "create_issue", "fp1", 0, 0)
	v1later, v1older := d("github", "tool", "create_issue", "fp1", 0, 10), d("github", "tool", "create_issue", "fp1", 0, 5)
	v2 := d("github", "tool", "create_issue", "fp2", 20, 30)
	removed := d("github", "tool", "delete_repo", "", 40, 40)
	tie := d("fs", "tool", "a", "fpa", 40, 41)
	prompt := d("fs", "prompt", "summarise", "fps", 15, 15)
	resource := d("fs", "resource", "file:///etc/passwd", "fpr", 25, 26)
	// A version's first sighting, then later sightings (one repeated, one arriving out of order).
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{v1, prompt}))
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{v1later, v1later}))
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{v1older, v2, removed, tie, resource}))
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{v2}))

	// Times with a zone and nanoseconds come back UTC at microseconds.
	odd := d("zone", "tool", "t", "fpz", 0, 0)
	odd.FirstSeen = b.Add(-time.Hour).In(time.FixedZone("X", 3600)).Add(1500 * time.Nanosecond)
	odd.LastSeen = odd.FirstSeen
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{odd}))
	got, err := s.Definitions(ctx, store.DefinitionQuery{ServerID: "zone"})
	require.NoError(t, err)
	require.Equal(t, []store.Definition{{ServerID: "zone", Kind: "tool", Name: "t", Fingerprint: "fpz",
		Definition: odd.Definition, FirstSeen: norm(odd.FirstSeen), LastSeen: norm(odd.FirstSeen)}}, got)

	tests := []struct {
		name string
		q    store.DefinitionQuery
		want []store.Definition
	}{
		{"all, newest first", store.DefinitionQuery{Since: m(0)}, []store.Definition{tie, removed, resource, v2, prompt, v1later}},
		{"server", store.DefinitionQuery{ServerID: "github"}, []store.Definition{removed, v2, v1later}},
		{"kind", store.DefinitionQuery{ServerID: "fs", Kind: "tool"}, []store.Definition{tie}},
		{"name", store.DefinitionQuery{Name: "create_issue"}, []store.Definition{v2, v1later}},
		{"window", store.DefinitionQuery{Since: m(15), Until: m(25)}, []store.Definition{v2, prompt}},
		{"limit", store.DefinitionQuery{ServerID: "github", Limit: 2}, []store.Definition{removed, v2}},
		{"none", store.DefinitionQuery{ServerID: "nope"}, []store.Definition{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Definitions(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func testDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	m := func(minutes int) time.Time { return b.Add(time.Duration(minutes) * time.Minute) }
	dl := func(id, anomaly, sink, status string, attempts int, minute int, errText string) store.Delivery {
		return store.Delivery{ID: id, AnomalyID: anomaly, AgentID: "agent-7", Kind: "new_tool", Severity: "high",
			Sink: sink, Status: status, Attempts: attempts, Error: errText, Time: m(minute)}
	}
	d1 := dl("d1", "an1", "webhook", "delivered", 1, 1, "")
	d2dead := dl("d2", "an1", "syslog", "dead_lettered", 5, 2, "dial tcp 127.0.0.1:514: connection refused")
	d2deadAgain := dl("d2", "an1", "syslog", "dead_lettered", 6, 3, "i/o timeout")
	d2deadOld := dl("d2", "an1", "syslog", "dead_lettered", 2, 1, "old")
	d2replayed := dl("d2", "an1", "syslog", "replayed", 1, 10, "")
	d3 := dl("d3", "an2", "webhook", "delivered", 1, 5, "")
	d4 := dl("d4", "an2", "syslog", "delivered", 2, 5, "")
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{d1, d1, d2dead}))
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{d1, d2deadAgain, d3}))
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{d2deadOld, d2replayed, d4}))

	// Times with a zone and nanoseconds come back UTC at microseconds.
	odd := dl("d5", "an3", "webhook", "delivered", 1, 0, "")
	odd.Time = b.Add(-time.Hour).In(time.FixedZone("X", -3600)).Add(999 * time.Nanosecond)
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{odd}))
	got, err := s.Deliveries(ctx, store.DeliveryQuery{AnomalyID: "an3"})
	require.NoError(t, err)
	odd.Time = norm(odd.Time)
	require.Equal(t, []store.Delivery{odd}, got)

	tests := []struct {
		name string
		q    store.DeliveryQuery
		want []store.Delivery
	}{
		{"all, newest first, one per outcome", store.DeliveryQuery{Since: m(0)}, []store.Delivery{d2replayed, d3, d4, d2deadAgain, d1}},
		{"anomaly", store.DeliveryQuery{AnomalyID: "an1"}, []store.Delivery{d2replayed, d2deadAgain, d1}},
		{"sink", store.DeliveryQuery{Sink: "webhook", Since: m(0)}, []store.Delivery{d3, d1}},
		{"status", store.DeliveryQuery{Status: "delivered", Since: m(0)}, []store.Delivery{d3, d4, d1}},
		{"dead letters", store.DeliveryQuery{Status: "dead_lettered"}, []store.Delivery{d2deadAgain}},
		{"window", store.DeliveryQuery{Since: m(3), Until: m(10)}, []store.Delivery{d3, d4, d2deadAgain}},
		{"limit", store.DeliveryQuery{Since: m(0), Limit: 2}, []store.Delivery{d2replayed, d3}},
		{"none", store.DeliveryQuery{Sink: "nope"}, []store.Delivery{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Deliveries(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// testEmptyV3 checks that the v3 queries answer empty, non-nil results on an empty store.
func testEmptyV3(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := base()
	require.NoError(t, s.SaveDefinitions(ctx, nil))
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{}))
	agents, err := s.Agents(ctx, store.AgentQuery{})
	require.NoError(t, err)
	require.NotNil(t, agents)
	require.Empty(t, agents)
	for _, metric := range []string{"calls", "errors", "anomalies", "deliveries"} {
		series, err := s.TimeSeries(ctx, store.SeriesQuery{Metric: metric, Step: time.Minute, Since: b, Until: b.Add(time.Hour)})
		require.NoError(t, err)
		require.NotNil(t, series, metric)
		require.Empty(t, series, metric)
	}
	for _, field := range []string{"agent", "server", "tool"} {
		values, err := s.Values(ctx, field, store.ValuesQuery{})
		require.NoError(t, err)
		require.NotNil(t, values)
		require.Empty(t, values)
	}
	defs, err := s.Definitions(ctx, store.DefinitionQuery{})
	require.NoError(t, err)
	require.NotNil(t, defs)
	require.Empty(t, defs)
	ds, err := s.Deliveries(ctx, store.DeliveryQuery{})
	require.NoError(t, err)
	require.NotNil(t, ds)
	require.Empty(t, ds)
	_, err = s.Agent(ctx, "a1", store.AgentQuery{})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Anomaly(ctx, "an1")
	require.ErrorIs(t, err, store.ErrNotFound)
}
