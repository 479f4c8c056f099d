package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

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
