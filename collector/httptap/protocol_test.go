package httptap

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// protocolUpstream is a real go-sdk server with, beyond newMCPServer's tools, one that blocks
// until cancelled ("block", which reports when it started) and one that elicits ("elicit").
func protocolUpstream(t *testing.T, opts *mcp.StreamableHTTPOptions) (*testUpstream, <-chan struct{}) {
	t.Helper()
	srv := newMCPServer()
	started, stop := make(chan struct{}, 4), make(chan struct{})
	mcp.AddTool(srv, &mcp.Tool{Name: "block", Description: "waits until cancelled"},
		func(ctx context.Context, req *mcp.CallToolRequest, args struct{}) (*mcp.CallToolResult, any, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
			case <-stop: // the go-sdk's stateless server does not cancel its tools when the client goes
			}
			return nil, nil, context.Canceled
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "elicit", Description: "asks the user"},
		func(ctx context.Context, req *mcp.CallToolRequest, args struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message: "Your name?",
				RequestedSchema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"name": map[string]any{"type": "string"}},
				},
			})
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: res.Action}}}, nil, nil
		})
	up := startUpstream(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, opts))
	t.Cleanup(func() {
		for ss := range srv.Sessions() {
			_ = ss.Close()
		}
	})
	t.Cleanup(func() { close(stop) }) // first: cleanups run last-in first-out
	return up, started
}

// connectWith connects a go-sdk client with opts to endpoint.
func connectWith(t *testing.T, endpoint string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1.0"}, opts)
	//lint:ignore SA1019 roots is deprecated in 2026-07-28 but older revisions use it; the tap must observe it
	client.AddRoots(&mcp.Root{URI: "file:///tmp/project", Name: "project"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: httpClient(t), MaxRetries: -1}, nil)
	require.NoError(t, err)
	return cs
}

var modes = []struct {
	name      string
	opts      mcp.StreamableHTTPOptions
	stateless bool
}{
	{name: "sse", opts: mcp.StreamableHTTPOptions{}},
	{name: "json response", opts: mcp.StreamableHTTPOptions{JSONResponse: true}},
	{name: "stateless", opts: mcp.StreamableHTTPOptions{Stateless: true}, stateless: true},
}

// TestProgressIsTiedToItsRequest checks progress notifications carry the id and target of the
// request whose token they name, whether they come on the request's stream (SSE) or on the
// standalone GET stream (JSON-response mode).
func TestProgressIsTiedToItsRequest(t *testing.T) {
	for _, mode := range modes[:2] { // roots needs a server-to-client request: not stateless
		t.Run(mode.name, func(t *testing.T) {
			up, _ := protocolUpstream(t, &mode.opts)
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "p", URL: up.URL}}})
			cs := connectWith(t, tapURL+"/mcp", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, tok := range []any{"tok-a", 42} {
				params := &mcp.CallToolParams{Name: "roots", Arguments: map[string]any{}}
				params.SetProgressToken(tok)
				_, err := cs.CallTool(ctx, params)
				require.NoError(t, err)
			}
			require.NoError(t, cs.Close())

			calls := waitForN(t, rec, 2, func(e schemas.Event) bool { return e.Method == "tools/call" })
			progress := waitForN(t, rec, 2, byMethod("notifications/progress"))
			require.ElementsMatch(t, []string{calls[0].JSONRPCID, calls[1].JSONRPCID},
				[]string{progress[0].JSONRPCID, progress[1].JSONRPCID})
			for _, p := range progress {
				require.Equal(t, "roots", p.Target)
				require.Equal(t, schemas.ServerToClient, p.Direction)
				require.Equal(t, schemas.KindNotification, p.Kind)
				require.Equal(t, cs.ID(), p.SessionID)
			}
		})
	}
}

// waitForN waits until n events match and returns them.
func waitForN(t *testing.T, rec *recorder, n int, pred func(schemas.Event) bool) []schemas.Event {
	t.Helper()
	var got []schemas.Event
	require.Eventually(t, func() bool {
		got = rec.matching(pred)
		return len(got) >= n
	}, 5*time.Second, 5*time.Millisecond, "want %d events; have %s", n, describe(rec.all()))
	require.Len(t, got, n)
	return got
}

// TestCancelledRequest cancels a tools/call from a go-sdk client: the client aborts its POST
// and sends notifications/cancelled. The call is recorded once, as cancelled, never as a
// timeout, and the notification names it.
func TestCancelledRequest(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			up, started := protocolUpstream(t, &mode.opts)
			const timeout = 300 * time.Millisecond
			tap, rec, tapURL := startTap(t, Config{RequestTimeout: timeout, Upstreams: []Upstream{{Name: "c", URL: up.URL}}})
			cs := connectWith(t, tapURL+"/mcp", nil)

			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-started
				cancel()
			}()
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "block", Arguments: map[string]any{}})
			require.ErrorIs(t, err, context.Canceled)

			note := rec.waitFor(t, "notifications/cancelled", byMethod("notifications/cancelled"))
			require.Equal(t, schemas.ClientToServer, note.Direction)
			require.Equal(t, schemas.KindNotification, note.Kind)
			require.Equal(t, "block", note.Target)

			time.Sleep(2 * timeout) // past the deadline: no timeout may follow
			block := rec.waitFor(t, "tools/call block", func(e schemas.Event) bool { return e.Method == "tools/call" })
			require.Equal(t, schemas.StatusError, block.Status)
			require.Equal(t, CodeCancelled, block.ErrorCode)
			require.Equal(t, block.JSONRPCID, note.JSONRPCID)
			require.Positive(t, block.LatencyMicros)
			require.Zero(t, block.ResponseBytes)
			if !mode.stateless {
				require.Equal(t, cs.ID(), block.SessionID)
			}
			require.NoError(t, cs.Close())
			require.Empty(t, rec.matching(func(e schemas.Event) bool { return e.Status == schemas.StatusTimeout }))
			require.Eventually(t, func() bool { return tap.deadlines.len() == 0 && tap.index.len() == 0 },
				5*time.Second, 5*time.Millisecond, "nothing is left waiting")
		})
	}
}

// TestSubscriptionsListen keeps a 2026-07-28 subscriptions/listen stream open past the request
// deadline: it is no timeout, and it becomes one ok event when the client closes it.
func TestSubscriptionsListen(t *testing.T) {
	up, _ := protocolUpstream(t, &mcp.StreamableHTTPOptions{Stateless: true})
	const timeout = 100 * time.Millisecond
	tap, rec, tapURL := startTap(t, Config{RequestTimeout: timeout, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	cs := connectWith(t, tapURL+"/mcp", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {},
	})
	ack := rec.waitFor(t, "acknowledged", byMethod("notifications/subscriptions/acknowledged"))
	require.Equal(t, schemas.ServerToClient, ack.Direction)

	time.Sleep(3 * timeout)
	require.Empty(t, rec.matching(byMethod("subscriptions/listen")), "a subscription has no deadline")
	require.NoError(t, cs.Close())

	listen := rec.waitFor(t, "subscriptions/listen", byMethod("subscriptions/listen"))
	require.Equal(t, schemas.StatusOK, listen.Status)
	require.Equal(t, schemas.KindRequest, listen.Kind)
	require.GreaterOrEqual(t, listen.LatencyMicros, (3 * timeout).Microseconds())
	require.Equal(t, "2026-07-28", listen.ProtocolVersion)
	require.Equal(t, "test-agent", listen.AgentID)
	require.Eventually(t, func() bool { return tap.index.len() == 0 }, 7*time.Second, 10*time.Millisecond)
	require.Len(t, rec.matching(byMethod("subscriptions/listen")), 1)
	require.Empty(t, rec.matching(func(e schemas.Event) bool { return e.Status == schemas.StatusTimeout }))
}

// TestElicitation pairs the server's elicitation/create with the client's answer.
func TestElicitation(t *testing.T) {
	for _, mode := range modes[:2] {
		t.Run(mode.name, func(t *testing.T) {
			up, _ := protocolUpstream(t, &mode.opts)
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "e", URL: up.URL}}})
			cs := connectWith(t, tapURL+"/mcp", &mcp.ClientOptions{
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
				},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "elicit", Arguments: map[string]any{}})
			require.NoError(t, err)
			require.Equal(t, "accept", res.Content[0].(*mcp.TextContent).Text)
			require.NoError(t, cs.Close())

			el := rec.waitFor(t, "elicitation/create", byMethod("elicitation/create"))
			require.Equal(t, schemas.ServerToClient, el.Direction)
			require.Equal(t, schemas.KindRequest, el.Kind)
			require.Equal(t, schemas.StatusOK, el.Status)
			require.Equal(t, cs.ID(), el.SessionID)
			require.Positive(t, el.RequestBytes)
			require.Positive(t, el.ResponseBytes, "the client's answer")
			require.Len(t, el.ResultHash, 32)
			require.Contains(t, el.ArgsShape, `"requestedSchema"`)
			require.NotContains(t, el.ArgsShape, "Your name?")
			call := rec.waitFor(t, "tools/call elicit", byMethod("tools/call"))
			require.Equal(t, schemas.StatusOK, call.Status)
		})
	}
}

// TestServerCancelsItsRequest replays a server that gives up on its sampling request: the
// request is recorded once, cancelled, and the client's late answer changes nothing.
func TestServerCancelsItsRequest(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			writeSSE(w, http.StatusOK,
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"sampling/createMessage\",\"params\":{\"messages\":[],\"maxTokens\":5}}\n\n",
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":0,\"reason\":\"too slow\"}}\n\n")
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	hdr := map[string]string{"Mcp-Session-Id": "S9"}
	_ = readAll(t, send(t, http.MethodGet, tapURL+"/mcp", "", hdr).Body)

	sampling := rec.waitFor(t, "sampling", byMethod("sampling/createMessage"))
	require.Equal(t, schemas.StatusError, sampling.Status)
	require.Equal(t, CodeCancelled, sampling.ErrorCode)
	note := rec.waitFor(t, "cancelled", byMethod("notifications/cancelled"))
	require.Equal(t, schemas.ServerToClient, note.Direction)
	require.Equal(t, "0", note.JSONRPCID)

	// The client answers anyway.
	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":0,"result":{"role":"assistant","content":{"type":"text","text":"x"}}}`, hdr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	time.Sleep(50 * time.Millisecond)
	require.Len(t, rec.matching(byMethod("sampling/createMessage")), 1)
	require.Zero(t, tap.index.len())
}

// TestCutStreamWithoutCancellationIsATimeout: a client that drops its POST stream and says
// nothing more gets its request recorded as a timeout, once, after the grace.
func TestCutStreamWithoutCancellationIsATimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, http.StatusOK, ": working\n\n")
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	tap, rec, tapURL := startTap(t, Config{RequestTimeout: 200 * time.Millisecond, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	ctx, cancel := context.WithCancel(context.Background())
	req := must(http.NewRequestWithContext(ctx, http.MethodPost, tapURL+"/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow"}}`)))
	resp, err := httpClient(t).Do(req)
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = resp.Body.Read(buf)
	require.NoError(t, err)
	cancel()
	_ = resp.Body.Close()

	ev := rec.waitFor(t, "tools/call", byMethod("tools/call"))
	require.Equal(t, schemas.StatusTimeout, ev.Status)
	require.Less(t, ev.LatencyMicros, int64(200_000), "timed at the cut, not at the deadline")
	require.Zero(t, tap.index.len())
}

// TestShutdownSettlesRequestsAwaitingCancellation: requests of cut streams still in their grace
// are settled by Shutdown, not after it.
func TestShutdownSettlesRequestsAwaitingCancellation(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, http.StatusOK, ": working\n\n")
		<-r.Context().Done()
	}))
	rec := &recorder{}
	tap, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []Upstream{{Name: "s", URL: up.URL}}}, rec, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	req := must(http.NewRequestWithContext(ctx, http.MethodPost, "http://"+tap.Addr()+"/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow"}}`)))
	resp, err := httpClient(t).Do(req)
	require.NoError(t, err)
	_, err = resp.Body.Read(make([]byte, 4))
	require.NoError(t, err)
	cancel()
	_ = resp.Body.Close()
	require.Eventually(t, func() bool {
		tap.mu.Lock()
		defer tap.mu.Unlock()
		return len(tap.active) == 0
	}, 5*time.Second, 5*time.Millisecond)
	require.Empty(t, rec.matching(byMethod("tools/call")), "still in its grace")

	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	require.NoError(t, tap.Shutdown(sctx))
	ev := rec.waitFor(t, "tools/call", byMethod("tools/call"))
	require.Equal(t, schemas.StatusTimeout, ev.Status)
}

// TestDeclinedDeleteKeepsTheSession: a server answers DELETE with 405 when it does not let
// clients end sessions; the session goes on, and the tap still knows its client.
func TestDeclinedDeleteKeepsTheSession(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body := readAll(t, r.Body)
		w.Header().Set("Mcp-Session-Id", "s1")
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(body, `"initialize"`) {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}`))
			return
		}
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`))
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	session := map[string]string{"Mcp-Session-Id": "s1"}
	readAll(t, send(t, http.MethodPost, tapURL+"/mcp",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"trip-planner","version":"2.1"}}}`, nil).Body)
	resp := send(t, http.MethodDelete, tapURL+"/mcp", "", session)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	readAll(t, send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}`, session).Body)

	ev := rec.waitFor(t, "the call after the declined DELETE", func(e schemas.Event) bool { return e.Method == "tools/call" })
	require.Equal(t, "trip-planner", ev.ClientName)
	require.Equal(t, "2025-11-25", ev.ProtocolVersion)
}

// TestSessionlessCancellationStaysWithItsClient: without a session, two clients behind one
// address may use the same request id; one's cancellation must not settle the other's call.
func TestSessionlessCancellationStaysWithItsClient(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := readAll(t, r.Body)
		if !strings.Contains(body, `"id":1`) {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		close(arrived)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`))
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before the servers close, should the test fail early
	meta := func(client string) string {
		return `"_meta":{"io.modelcontextprotocol/clientInfo":{"name":"` + client + `","version":"1"}}`
	}
	done := make(chan string)
	go func() {
		resp := send(t, http.MethodPost, tapURL+"/mcp",
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow",`+meta("client-a")+`}}`,
			map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "slow"})
		done <- readAll(t, resp.Body)
	}()
	<-arrived
	resp := send(t, http.MethodPost, tapURL+"/mcp",
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,`+meta("client-b")+`}}`, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	note := rec.waitFor(t, "client-b's cancellation", byMethod("notifications/cancelled"))
	require.Empty(t, note.Target, "client-b's notification is not tied to client-a's call")

	free()
	require.Contains(t, <-done, `"result"`)
	call := rec.waitFor(t, "client-a's call", byMethod("tools/call"))
	require.Equal(t, schemas.StatusOK, call.Status)
	require.Equal(t, "client-a", call.ClientName)
}

// TestTrailingDataIsTheCallTheServerRuns: the Go SDK's server runs the first JSON value of a
// body and ignores what follows; the tap records that call, flagged, rather than an unparsed
// body and a response it cannot pair.
func TestTrailingDataIsTheCallTheServerRuns(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "go", URL: up.URL}}})
	resp := send(t, http.MethodPost, tapURL+"/mcp",
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}} {"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"fail"}}`,
		map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
	require.Contains(t, readAll(t, resp.Body), "hi", "the server ran the first value")

	ev := rec.waitFor(t, "the call", byMethod("tools/call"))
	require.Equal(t, "echo", ev.Target)
	require.Equal(t, schemas.StatusOK, ev.Status)
	require.Equal(t, "3", ev.JSONRPCID)
	require.Len(t, ev.Flags, 1)
	require.Equal(t, FlagTrailingData, ev.Flags[0].Type)
	require.Equal(t, schemas.SeverityHigh, ev.Flags[0].Severity)
	require.Empty(t, rec.matching(func(e schemas.Event) bool { return e.Kind == schemas.KindUnparsed }))
	require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("unmatched_response")))
}

// TestAnswerOnAnotherStreamAfter202: a server that answers a request's POST with 202 and sends
// the answer on its GET stream (as the legacy transport does, and a POST the tap could not tie
// to its legacy session) gets the request paired there, not recorded as a timeout at the 202.
func TestAnswerOnAnotherStreamAfter202(t *testing.T) {
	answers := make(chan string, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Mcp-Session-Id", "s1")
		if r.Method == http.MethodGet {
			writeSSE(w, http.StatusOK)
			w.(http.Flusher).Flush()
			relayEvents(w, r, answers)
			return
		}
		_ = readAll(t, r.Body)
		w.WriteHeader(http.StatusAccepted)
		time.AfterFunc(50*time.Millisecond, func() {
			answers <- "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n"
		})
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	session := map[string]string{"Mcp-Session-Id": "s1"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := must(http.NewRequestWithContext(ctx, http.MethodGet, tapURL+"/mcp", nil))
	req.Header.Set("Mcp-Session-Id", "s1")
	req.Header.Set("Accept", "text/event-stream")
	stream, err := httpClient(t).Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()

	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`, session)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	br := bufio.NewReader(stream.Body)
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		if strings.Contains(line, `"id":7`) {
			break
		}
	}
	ev := rec.waitFor(t, "tools/call", byMethod("tools/call"))
	require.Equal(t, schemas.StatusOK, ev.Status, "latency %d µs", ev.LatencyMicros)
	require.Equal(t, "s1", ev.SessionID)
	require.GreaterOrEqual(t, ev.LatencyMicros, int64(50_000), "timed at the answer")
}
