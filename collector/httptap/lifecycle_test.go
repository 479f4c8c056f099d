package httptap

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(benchRoleEnv); role != "" {
		os.Exit(runBenchRole(role)) // a benchmark's child process (benchproc_test.go)
	}
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := Config{Listen: "127.0.0.1:0", Upstreams: []Upstream{{Name: "a", URL: "http://127.0.0.1:1/mcp"}}}
	ctx := context.Background()

	tap, err := New(cfg, &recorder{}, testSettings(t))
	require.NoError(t, err)
	require.Empty(t, tap.Addr())
	require.NoError(t, tap.Start(ctx))
	require.NotEmpty(t, tap.Addr())
	require.Error(t, tap.Start(ctx), "a second Start")
	require.NoError(t, tap.Shutdown(ctx))
	require.NoError(t, tap.Shutdown(ctx))
	require.Error(t, tap.Start(ctx), "Start after Shutdown")

	never, err := New(cfg, &recorder{}, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, never.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, never.Shutdown(ctx))
}

// TestShutdownWithTrafficInFlight shuts the tap down under a connected client (with its
// standalone GET stream open) and a request the upstream never answers.
func TestShutdownWithTrafficInFlight(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := newMCPServer()
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	release := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			writeSSE(w, http.StatusOK, ": waiting\n\n")
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	defer up.Close()
	defer close(release)

	rec := &recorder{}
	tap, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []Upstream{
		{Name: "default", URL: up.URL + "/mcp"}, {Name: "hang", URL: up.URL + "/hang"},
	}}, rec, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))

	cs, _ := connect(t, "http://"+tap.Addr()+"/mcp", "")
	_, err = cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 1, tap.sessions.len())

	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post("http://"+tap.Addr()+"/mcp/hang", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}`))
	require.NoError(t, err)
	defer resp.Body.Close()

	// The hanging POST keeps Shutdown from draining in time; the GET stream alone would not.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = tap.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ev := rec.waitFor(t, "the cut request", func(e schemas.Event) bool { return e.Target == "slow" })
	require.Equal(t, schemas.StatusTimeout, ev.Status)
	_, _ = io.Copy(io.Discard, resp.Body)

	require.Empty(t, rec.invalidEvents())
	require.Error(t, cs.Close(), "the tap is gone")
	require.Zero(t, tap.sessions.len())
	for ss := range srv.Sessions() { // the upstream never heard the DELETE
		require.NoError(t, ss.Close())
	}
}

func TestShutdownCutsStandaloneStreams(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{})
	rec := &recorder{}
	tap, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []Upstream{{Name: "default", URL: up.URL}}}, rec, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))
	cs, _ := connect(t, "http://"+tap.Addr()+"/mcp", "")
	defer cs.Close()
	_, err = cs.ListTools(context.Background(), nil)
	require.NoError(t, err)

	// With nothing but the client's GET stream open, Shutdown drains well within its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, tap.Shutdown(ctx))
}

func TestDeleteForgetsTheSession(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{})
	tap, _, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "default", URL: up.URL}}})
	cs, _ := connect(t, tapURL+"/mcp", "")
	_, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 1, tap.sessions.len())
	require.NotEmpty(t, tap.sessions.info(sessionKey{"default", cs.ID()}).clientName)
	require.NoError(t, cs.Close())
	require.Eventually(t, func() bool { return tap.sessions.len() == 0 }, 5*time.Second, 5*time.Millisecond)
}

// TestShutdownClosesConnectionsThatSentNothing: clients dial spare connections they may never
// use; http.Server.Shutdown would wait 5 s for each to send a request. The tap's closes them.
func TestShutdownClosesConnectionsThatSentNothing(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	tap, err := New(Config{Listen: "127.0.0.1:0", CollectorID: "t", Upstreams: []Upstream{{Name: "s", URL: up.URL}}}, &recorder{}, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))
	spare, err := net.Dial("tcp", tap.Addr())
	require.NoError(t, err)
	defer spare.Close()
	require.Eventually(t, func() bool { return tap.fresh.Len() == 1 }, 5*time.Second, time.Millisecond,
		"the server has accepted the connection")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, tap.Shutdown(ctx), "does not wait for a connection that sent nothing")
	_, err = spare.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}
