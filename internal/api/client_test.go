package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newTestServer(t, Config{Tokens: []string{"tok"}}, st, nil)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	c, err := NewClient(hs.URL+"/", "tok", hs.Client()) // a trailing slash is fine
	require.NoError(t, err)

	sq := store.SessionQuery{AgentID: "a1", Since: at(1), Until: at(31), Limit: 5}
	want, err := st.Sessions(ctx, sq)
	require.NoError(t, err)
	got, err := c.Sessions(ctx, sq)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, []string{"s/3", "s1"}, sessionIDs(got))

	sess, err := c.Session(ctx, "s/3")
	require.NoError(t, err)
	require.Equal(t, "git", sess.ServerID)

	events, err := c.SessionEvents(ctx, "s1", 2)
	require.NoError(t, err)
	require.Equal(t, fixtureEvents[:2], events)

	aq := store.AnomalyQuery{AgentID: "a1", Kind: "rate_spike", MinSeverity: schemas.SeverityHigh, Since: at(0)}
	anomalies, err := c.Anomalies(ctx, aq)
	require.NoError(t, err)
	require.Equal(t, []schemas.Anomaly{fixtureAnomalies[2]}, anomalies)

	_, err = c.Session(ctx, "nope")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.EqualError(t, err, `mcpwatch API answered 404 Not Found: session "nope" not found`)
	_, err = c.SessionEvents(ctx, "nope", 0)
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = c.Sessions(ctx, store.SessionQuery{Limit: 20000})
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Contains(t, apiErr.Message, "limit: must be an integer from 1 to 10000")
	require.NotErrorIs(t, err, store.ErrNotFound)

	bad, err := NewClient(hs.URL, "wrong", hs.Client())
	require.NoError(t, err)
	_, err = bad.Anomalies(ctx, store.AnomalyQuery{})
	require.EqualError(t, err, "mcpwatch API answered 401 Unauthorized: missing or invalid bearer token")
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	c, err := NewClient("http://"+addr, "", nil)
	require.NoError(t, err)
	_, err = c.Sessions(context.Background(), store.SessionQuery{})
	require.ErrorContains(t, err, "cannot reach mcpwatch API at http://"+addr+": is `mcpwatch run` running?")
}

func TestClientForeignErrorBody(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>\n<h1>502 Bad Gateway</h1>\n</html>", http.StatusBadGateway)
	}))
	defer hs.Close()
	c, err := NewClient(hs.URL+"/prefix", "", hs.Client())
	require.NoError(t, err)
	_, err = c.Anomalies(context.Background(), store.AnomalyQuery{})
	require.EqualError(t, err, "mcpwatch API answered 502 Bad Gateway: <html> <h1>502 Bad Gateway</h1> </html>")
}

func TestClientBaseURLPrefix(t *testing.T) {
	var gotPath string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.EscapedPath()
		writeJSON(w, http.StatusOK, EventsResponse{SessionID: "a/b", Events: nil})
	}))
	defer hs.Close()
	c, err := NewClient(hs.URL+"/mcpwatch/", "", hs.Client())
	require.NoError(t, err)
	_, err = c.SessionEvents(context.Background(), "a/b", 0)
	require.NoError(t, err)
	require.Equal(t, "/mcpwatch/api/v1/sessions/a%2Fb/events", gotPath)
}

func TestNewClientRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:7410", "ftp://x", "http://", "://"} {
		_, err := NewClient(u, "", nil)
		require.ErrorContains(t, err, "must be an absolute http(s) URL", u)
	}
}

// TestClientV1 checks that every client method sends its query and decodes the answer to what
// the store itself returns.
func TestClientV1(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newTestServer(t, Config{}, st, nil)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	c, err := NewClient(hs.URL, "", hs.Client())
	require.NoError(t, err)

	// Paging: two pages of sessions and anomalies through the cursor.
	sq := store.SessionQuery{AgentID: "a1", Limit: 1}
	p1, err := c.SessionsPage(ctx, sq, "")
	require.NoError(t, err)
	require.Equal(t, []string{"s/3"}, sessionIDs(p1.Sessions))
	p2, err := c.SessionsPage(ctx, sq, p1.NextCursor)
	require.NoError(t, err)
	require.Equal(t, []string{"s1"}, sessionIDs(p2.Sessions))
	require.Empty(t, p2.NextCursor)
	a1, err := c.AnomaliesPage(ctx, store.AnomalyQuery{MinScore: 50, Limit: 1}, "")
	require.NoError(t, err)
	a2, err := c.AnomaliesPage(ctx, store.AnomalyQuery{MinScore: 50, Limit: 1}, a1.NextCursor)
	require.NoError(t, err)
	require.Equal(t, []string{"an3", "an1"}, append(anomalyIDs(a1.Anomalies), anomalyIDs(a2.Anomalies)...))
	_, err = c.SessionsPage(ctx, sq, "garbage")
	require.ErrorContains(t, err, "400 Bad Request: cursor: ")

	an, err := c.Anomaly(ctx, "an2")
	require.NoError(t, err)
	require.Equal(t, fixtureAnomalies[1], an)
	_, err = c.Anomaly(ctx, "nope")
	require.ErrorIs(t, err, store.ErrNotFound)

	aq := store.AgentQuery{Since: at(0), Until: at(40)}
	want, err := st.Agents(ctx, aq)
	require.NoError(t, err)
	agents, err := c.Agents(ctx, aq)
	require.NoError(t, err)
	require.Equal(t, want, agents)
	one, err := c.Agent(ctx, "a2", store.AgentQuery{Since: at(0), Limit: 7})
	require.NoError(t, err)
	require.Equal(t, 2, one.Events)
	_, err = c.Agent(ctx, "a2", store.AgentQuery{Since: at(30)})
	require.ErrorIs(t, err, store.ErrNotFound)

	prof, err := c.AgentProfile(ctx, "a1")
	require.NoError(t, err)
	require.Len(t, prof.Rate.Band, 168)
	_, err = c.AgentProfile(ctx, "a2")
	require.ErrorIs(t, err, store.ErrNotFound)

	series, err := c.TimeSeries(ctx, store.SeriesQuery{Metric: "calls", By: "agent", Step: 10 * time.Minute, Since: at(0), Until: at(40), Limit: 1})
	require.NoError(t, err)
	require.Equal(t, "10m0s", series.Step)
	require.Len(t, series.Series, 1)
	require.Equal(t, "a1", series.Series[0].Key)
	require.Len(t, series.Series[0].Points, 4)

	tools, err := c.Values(ctx, "tools", store.ValuesQuery{AgentID: "a1", Since: at(30)})
	require.NoError(t, err)
	require.Equal(t, []string{"git_push"}, tools)
	_, err = c.Values(ctx, "nothing", store.ValuesQuery{})
	require.ErrorContains(t, err, "404 Not Found")

	defs, err := c.Definitions(ctx, store.DefinitionQuery{ServerID: "fs", Kind: "tool", Name: "read_file", Since: at(10), Until: at(30), Limit: 5})
	require.NoError(t, err)
	require.Equal(t, fixtureDefinitions[1:2], defs)

	ds, err := c.Deliveries(ctx, store.DeliveryQuery{AnomalyID: "an3", Sink: "syslog", Status: "dead_lettered", Since: at(0), Until: at(60), Limit: 5})
	require.NoError(t, err)
	require.Equal(t, fixtureDeliveries[2:], ds)
}
