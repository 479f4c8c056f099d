package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func anomalyIDs(as []schemas.Anomaly) []string {
	ids := []string{}
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

func q(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }

func TestPagination(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)

	// Sessions one at a time: s/3, s2, s1, and no cursor after the last.
	var got []string
	target := "/api/v1/sessions?limit=1"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "the cursors must end")
		code, _, body := s.do(t, target)
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		page := decode[SessionsResponse](t, body)
		require.Len(t, page.Sessions, 1)
		got = append(got, page.Sessions[0].ID)
		if page.NextCursor == "" {
			require.NotContains(t, string(body), "next_cursor", "absent on the last page")
			break
		}
		target = "/api/v1/sessions?limit=1&cursor=" + page.NextCursor
	}
	require.Equal(t, []string{"s/3", "s2", "s1"}, got)

	// A page that holds exactly the rest has no cursor; filters apply on every page.
	_, _, body := s.do(t, "/api/v1/sessions?limit=3")
	require.Empty(t, decode[SessionsResponse](t, body).NextCursor)
	_, _, body = s.do(t, "/api/v1/sessions?agent=a1&limit=1")
	first := decode[SessionsResponse](t, body)
	require.Equal(t, []string{"s/3"}, sessionIDs(first.Sessions))
	_, _, body = s.do(t, "/api/v1/sessions?agent=a1&limit=1&cursor="+first.NextCursor)
	second := decode[SessionsResponse](t, body)
	require.Equal(t, []string{"s1"}, sessionIDs(second.Sessions))
	require.Empty(t, second.NextCursor)

	// Anomalies two at a time.
	code, _, body := s.do(t, "/api/v1/anomalies?limit=2")
	require.Equal(t, http.StatusOK, code)
	p1 := decode[AnomaliesResponse](t, body)
	require.Equal(t, []string{"an3", "an2"}, anomalyIDs(p1.Anomalies))
	require.NotEmpty(t, p1.NextCursor)
	_, _, body = s.do(t, "/api/v1/anomalies?limit=2&cursor="+p1.NextCursor)
	p2 := decode[AnomaliesResponse](t, body)
	require.Equal(t, []string{"an1"}, anomalyIDs(p2.Anomalies))
	require.Empty(t, p2.NextCursor)

	// Cursors are opaque base64url; damaged or foreign ones are a 400 naming cursor.
	_, err := base64.RawURLEncoding.DecodeString(p1.NextCursor)
	require.NoError(t, err)
	flipped := []byte(p1.NextCursor)
	i := len(flipped) - 3
	flipped[i] = map[bool]byte{true: 'B', false: 'A'}[flipped[i] == 'A']
	_, _, sBody := s.do(t, "/api/v1/sessions?limit=1")
	sessionCursor := decode[SessionsResponse](t, sBody).NextCursor
	for name, target := range map[string]string{
		"damaged":          "/api/v1/anomalies?cursor=" + string(flipped),
		"truncated":        "/api/v1/anomalies?cursor=" + p1.NextCursor[:len(p1.NextCursor)-4],
		"not base64":       "/api/v1/anomalies?cursor=" + url.QueryEscape("not a cursor!"),
		"another list's":   "/api/v1/anomalies?cursor=" + sessionCursor,
		"anomalies' given": "/api/v1/sessions?cursor=" + p1.NextCursor,
		"empty json":       "/api/v1/sessions?cursor=" + cursorWith(t, "{}"),
		"unknown field":    "/api/v1/sessions?cursor=" + cursorWith(t, `{"l":"sessions","t":"2026-11-03T02:00:00Z","i":"x","x":1}`),
	} {
		t.Run(name, func(t *testing.T) {
			code, _, body := s.do(t, target)
			require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
			require.True(t, strings.HasPrefix(decode[ErrorResponse](t, body).Error, "cursor: "), "body: %s", body)
		})
	}
	// A well-formed cursor of the right list is accepted: it is only a position.
	code, _, body = s.do(t, "/api/v1/sessions?cursor="+cursorWith(t, `{"l":"sessions","t":"2026-11-03T02:10:00Z","i":"s2"}`))
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	require.Equal(t, []string{"s1"}, sessionIDs(decode[SessionsResponse](t, body).Sessions))
}

// cursorWith encodes body the way the server does, checksum included.
func cursorWith(t *testing.T, body string) string {
	t.Helper()
	return sealCursor([]byte(body))
}

func TestPageLimit(t *testing.T) {
	for _, tt := range []struct {
		limit, ask int
		extra      bool
	}{
		{0, store.DefaultLimit + 1, true},
		{1, 2, true},
		{store.MaxLimit - 1, store.MaxLimit, true},
		{store.MaxLimit, store.MaxLimit, false},
	} {
		ask, extra := pageLimit(tt.limit)
		require.Equal(t, tt.ask, ask, "limit %d", tt.limit)
		require.Equal(t, tt.extra, extra, "limit %d", tt.limit)
	}
}

func TestGetAnomaly(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	code, _, body := s.do(t, "/api/v1/anomalies/an1")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, fixtureAnomalies[0], decode[schemas.Anomaly](t, body))

	code, _, body = s.do(t, "/api/v1/anomalies/nope")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `anomaly "nope" not found`, decode[ErrorResponse](t, body).Error)
}

func TestAgents(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil) // clock: t0+60m

	code, _, body := s.do(t, "/api/v1/agents")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	agents := decode[AgentsResponse](t, body).Agents
	require.Len(t, agents, 2)
	a1, a2 := agents[0], agents[1]
	require.InDelta(t, 98.75, a1.Risk, 0.051, "75 and 95: 100·(1 − 0.25·0.05)")
	a1.Risk = 0
	require.Equal(t, store.Agent{
		ID: "a1", FirstSeen: at(0), LastSeen: at(31), Events: 5, Errors: 2, Sessions: 2,
		Servers: []string{"fs", "git"}, Tools: []string{"git_push", "read_file", "write_file"},
		Anomalies: 2, MaxScore: 95,
	}, a1, "riskiest first")
	require.Equal(t, store.Agent{
		ID: "a2", FirstSeen: at(10), LastSeen: at(11), Events: 2, Sessions: 1,
		Servers: []string{"git"}, Tools: []string{"git_log"}, Anomalies: 1, MaxScore: 25, Risk: 25,
	}, a2)

	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"limit=1", []string{"a1"}},
		{"since=" + q(at(5)) + "&until=" + q(at(20)), []string{"a2"}},
		{"since=" + q(at(12)) + "&until=" + q(at(30)), []string{}},
		{"since=25h", []string{"a1", "a2"}},
		{"since=30m", []string{"a1"}},                     // since t0+30m: a1's s/3
		{"until=" + q(at(1)), []string{"a1"}},             // since defaults to 24h before until
		{"until=" + q(t0.Add(-23*time.Hour)), []string{}}, // and not from now
	} {
		t.Run(tt.query, func(t *testing.T) {
			code, _, body := s.do(t, "/api/v1/agents?"+tt.query)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			ids := []string{}
			for _, a := range decode[AgentsResponse](t, body).Agents {
				ids = append(ids, a.ID)
			}
			require.Equal(t, tt.want, ids)
		})
	}

	code, _, body = s.do(t, "/api/v1/agents/a1?since="+q(at(30)))
	require.Equal(t, http.StatusOK, code)
	one := decode[store.Agent](t, body)
	require.Equal(t, 2, one.Events)
	require.Equal(t, 1, one.Anomalies)
	require.Equal(t, 95.0, one.Risk)

	code, _, body = s.do(t, "/api/v1/agents/a2?since="+q(at(30)))
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `agent "a2" has no events from 2026-11-03T02:30:00Z to now`, decode[ErrorResponse](t, body).Error)
	code, _, _ = s.do(t, "/api/v1/agents/nobody")
	require.Equal(t, http.StatusNotFound, code)

	_, _, body = s.do(t, "/api/v1/agents?since=1m")
	require.JSONEq(t, `{"agents":[]}`, string(body))
}

func TestAgentProfile(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	code, _, body := s.do(t, "/api/v1/agents/a1/profile")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	p := decode[Profile](t, body)
	require.Equal(t, "a1", p.AgentID)
	require.Equal(t, t0, p.UpdatedAt)
	require.False(t, p.Learning, "two days and 5,760 requests")
	require.Equal(t, int64(5760), p.Requests)
	require.Equal(t, "calls/min", p.Rate.Unit)
	require.Len(t, p.Rate.Band, 168)
	for h, b := range p.Rate.Band {
		require.Equal(t, h, b.HourOfWeek)
		require.InDelta(t, 2, b.Expected, 1, "two calls a minute, every hour")
	}
	require.Len(t, p.TopTools, 2)
	require.Equal(t, "read_file", p.TopTools[0].Tool)
	require.InDelta(t, 2.0/3, p.TopTools[0].Share, 0.01)
	require.Equal(t, "write_file", p.TopTools[1].Tool)
	require.Equal(t, []string{"read_file", "write_file"}, p.KnownTools)
	var sawStart bool
	for _, tr := range p.TopTransitions {
		if tr.From == "(start)" {
			sawStart = true
			require.Equal(t, "tools/list", tr.To)
			require.Greater(t, tr.Probability, 0.99)
		}
	}
	require.True(t, sawStart)
	require.InDelta(t, 150, p.Sizes.RequestBytes.P50, 1)
	require.Greater(t, p.Sizes.ResponseBytes.P99, p.Sizes.ResponseBytes.P50)

	code, _, body = s.do(t, "/api/v1/agents/a2/profile")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `agent "a2" has no baseline yet`, decode[ErrorResponse](t, body).Error)
}

func TestTimeSeries(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil) // clock: t0+60m
	pts := func(vs ...float64) []store.Point {
		out := []store.Point{}
		for i, v := range vs {
			out = append(out, store.Point{Time: at(10 * i), Value: v})
		}
		return out
	}
	window := "&since=" + q(at(0)) + "&until=" + q(at(40)) + "&step=10m"
	tests := []struct {
		query string
		want  []store.Series
	}{
		{"metric=calls", []store.Series{{Key: "total", Points: pts(3, 2, 0, 2)}}},
		{"metric=calls&by=agent", []store.Series{{Key: "a1", Points: pts(3, 0, 0, 2)}, {Key: "a2", Points: pts(0, 2, 0, 0)}}},
		{"metric=calls&by=server", []store.Series{{Key: "git", Points: pts(0, 2, 0, 2)}, {Key: "fs", Points: pts(3, 0, 0, 0)}}},
		{"metric=calls&by=tool&limit=2", []store.Series{{Key: "", Points: pts(1, 1, 0, 1)}, {Key: "git_log", Points: pts(0, 1, 0, 0)}}},
		{"metric=calls&agent=a2", []store.Series{{Key: "total", Points: pts(0, 2, 0, 0)}}},
		{"metric=calls&tool=read_file&server=fs", []store.Series{{Key: "total", Points: pts(1, 0, 0, 0)}}},
		{"metric=calls&agent=nobody", []store.Series{{Key: "total", Points: pts(0, 0, 0, 0)}}},
		{"metric=calls&agent=nobody&by=agent", []store.Series{}},
		{"metric=errors", []store.Series{{Key: "total", Points: pts(1, 0, 0, 1)}}},
		{"metric=errors&by=tool", []store.Series{{Key: "git_push", Points: pts(0, 0, 0, 1)}, {Key: "write_file", Points: pts(1, 0, 0, 0)}}},
		{"metric=anomalies&by=kind", []store.Series{{Key: "rate_spike", Points: pts(0, 1, 0, 1)}, {Key: "new_tool", Points: pts(1, 0, 0, 0)}}},
		{"metric=anomalies&by=severity&agent=a1", []store.Series{{Key: "critical", Points: pts(0, 0, 0, 1)}, {Key: "high", Points: pts(1, 0, 0, 0)}}},
		{"metric=deliveries&by=status", []store.Series{{Key: "delivered", Points: pts(1, 0, 0, 1)}, {Key: "dead_lettered", Points: pts(0, 0, 0, 1)}}},
		{"metric=deliveries&by=sink", []store.Series{{Key: "soc", Points: pts(1, 0, 0, 1)}, {Key: "syslog", Points: pts(0, 0, 0, 1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, _, body := s.do(t, "/api/v1/timeseries?"+tt.query+window)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			got := decode[SeriesResponse](t, body)
			require.Equal(t, "10m0s", got.Step)
			v, _ := url.ParseQuery(tt.query)
			require.Equal(t, v.Get("metric"), got.Metric)
			require.Equal(t, v.Get("by"), got.By)
			require.Equal(t, tt.want, got.Series)
		})
	}

	// The first bucket starts at a multiple of step: it may start before since, and counts only
	// what is in range.
	_, _, body := s.do(t, "/api/v1/timeseries?metric=calls&step=10m&since="+q(at(5))+"&until="+q(at(25)))
	require.Equal(t, []store.Series{{Key: "total", Points: pts(0, 2, 0)}}, decode[SeriesResponse](t, body).Series)

	// Defaults: the last hour in one-minute buckets.
	_, _, body = s.do(t, "/api/v1/timeseries?metric=calls")
	got := decode[SeriesResponse](t, body)
	require.Equal(t, "1m0s", got.Step)
	require.Len(t, got.Series[0].Points, 60)
	require.Equal(t, at(0), got.Series[0].Points[0].Time)
	require.Equal(t, at(59), got.Series[0].Points[59].Time)
	var sum float64
	for _, p := range got.Series[0].Points {
		sum += p.Value
	}
	require.Equal(t, 7.0, sum)

	// Exactly 10,000 buckets is fine; one more is not.
	code, _, _ := s.do(t, "/api/v1/timeseries?metric=calls&step=1s&since="+q(at(0))+"&until="+q(at(0).Add(10000*time.Second)))
	require.Equal(t, http.StatusOK, code)
	code, _, body = s.do(t, "/api/v1/timeseries?metric=calls&step=1s&since="+q(at(0))+"&until="+q(at(0).Add(10001*time.Second)))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, decode[ErrorResponse](t, body).Error, "step: 1s from since to until makes 10001 buckets, more than 10000")
}

func TestBucketStarts(t *testing.T) {
	week := 7 * 24 * time.Hour
	since := time.Date(2026, 11, 4, 13, 0, 0, 0, time.UTC) // a Wednesday
	got := bucketStarts(since, since.Add(2*week), week)
	// Weeks since the Unix epoch start on Thursdays.
	require.Equal(t, []time.Time{
		time.Date(2026, 10, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 12, 0, 0, 0, 0, time.UTC),
	}, got)
	before := time.Date(1969, 12, 31, 23, 59, 30, 0, time.UTC)
	require.Equal(t, []time.Time{before.Truncate(time.Minute), time.Unix(0, 0).UTC()}, bucketStarts(before, before.Add(time.Minute), time.Minute))
	require.Len(t, bucketStarts(since, since.Add(365*24*time.Hour), time.Second), MaxSeriesBuckets+1, "bounded")
}

func TestValues(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	for _, tt := range []struct {
		target string
		want   []string
	}{
		{"/api/v1/values/agents", []string{"a1", "a2"}},
		{"/api/v1/values/servers", []string{"fs", "git"}},
		{"/api/v1/values/tools", []string{"git_log", "git_push", "read_file", "write_file"}},
		{"/api/v1/values/tools?agent=a2", []string{"git_log"}},
		{"/api/v1/values/servers?since=" + q(at(20)), []string{"git"}},
		{"/api/v1/values/agents?until=" + q(at(5)), []string{"a1"}},
		{"/api/v1/values/agents?limit=1", []string{"a1"}},
		{"/api/v1/values/agents?agent=nobody", []string{}},
	} {
		t.Run(tt.target, func(t *testing.T) {
			code, _, body := s.do(t, tt.target)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			require.Equal(t, tt.want, decode[ValuesResponse](t, body).Values)
		})
	}
	code, _, body := s.do(t, "/api/v1/values/kinds")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, decode[ErrorResponse](t, body).Error, "agents, servers and tools")
}

func TestDefinitions(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	d := fixtureDefinitions
	for _, tt := range []struct {
		query string
		want  []store.Definition
	}{
		{"", []store.Definition{d[1], d[2], d[0]}},
		{"server=fs", []store.Definition{d[1], d[0]}},
		{"kind=prompt", []store.Definition{d[2]}},
		{"name=read_file&server=fs", []store.Definition{d[1], d[0]}},
		{"since=" + q(at(5)), []store.Definition{d[1], d[2]}},
		{"until=" + q(at(5)), []store.Definition{d[0]}},
		{"limit=1", []store.Definition{d[1]}},
		{"server=nothing", []store.Definition{}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			code, _, body := s.do(t, "/api/v1/definitions?"+tt.query)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			require.Equal(t, tt.want, decode[DefinitionsResponse](t, body).Definitions)
		})
	}
}

func TestDeliveries(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	d := fixtureDeliveries
	for _, tt := range []struct {
		query string
		want  []store.Delivery
	}{
		{"", []store.Delivery{d[2], d[1], d[0]}},
		{"anomaly=an3", []store.Delivery{d[2], d[1]}},
		{"sink=soc", []store.Delivery{d[1], d[0]}},
		{"status=dead_lettered", []store.Delivery{d[2]}},
		{"since=" + q(at(30)) + "&until=" + q(at(35)), []store.Delivery{d[1]}},
		{"limit=2", []store.Delivery{d[2], d[1]}},
		{"status=replayed", []store.Delivery{}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			code, _, body := s.do(t, "/api/v1/deliveries?"+tt.query)
			require.Equal(t, http.StatusOK, code, "body: %s", body)
			require.Equal(t, tt.want, decode[DeliveriesResponse](t, body).Deliveries)
		})
	}
}

func TestUnknownAPIPath(t *testing.T) {
	s := newTestServer(t, Config{}, newTestStore(t), nil)
	code, h, body := s.do(t, "/api/v2/sessions")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Contains(t, decode[ErrorResponse](t, body).Error, "see /api/v1/openapi.json")
}
