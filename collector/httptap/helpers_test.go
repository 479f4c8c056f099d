package httptap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// recorder is an in-memory pipeline.EventEmitter that keeps every event, and checks each one
// against the Event v1 JSON Schema.
type recorder struct {
	mu      sync.Mutex
	events  []schemas.Event
	invalid []string
}

func (r *recorder) Emit(e schemas.Event) {
	data, err := json.Marshal(e)
	if err == nil {
		err = schemas.ValidateEventJSON(data)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if err != nil {
		r.invalid = append(r.invalid, fmt.Sprintf("%s: %v", data, err))
	}
}

func (r *recorder) invalidEvents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.invalid)
}

func (r *recorder) all() []schemas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) matching(pred func(schemas.Event) bool) []schemas.Event {
	var out []schemas.Event
	for _, e := range r.all() {
		if pred(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until exactly one event matches and returns it. Events are emitted as the tap
// sees traffic, which may be just after the client got its answer.
func (r *recorder) waitFor(t *testing.T, what string, pred func(schemas.Event) bool) schemas.Event {
	t.Helper()
	var got []schemas.Event
	require.Eventually(t, func() bool {
		got = r.matching(pred)
		return len(got) > 0
	}, 5*time.Second, 5*time.Millisecond, "no event: %s; have %s", what, describe(r.all()))
	require.Len(t, got, 1, "more than one event: %s", what)
	return got[0]
}

func describe(evs []schemas.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("\n  %s %s %s %q %s %d", e.Direction, e.Kind, e.Method, e.Target, e.Status, e.ErrorCode)
	}
	return s
}

func byMethod(method string) func(schemas.Event) bool {
	return func(e schemas.Event) bool { return e.Method == method }
}

func testSettings(t testing.TB) pipeline.Settings {
	return pipeline.Settings{
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registry: prometheus.NewRegistry(),
	}
}

// startTap starts a tap on a free loopback port in front of the given upstreams.
func startTap(t testing.TB, cfg Config) (*Tap, *recorder, string) {
	t.Helper()
	rec := &recorder{}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.CollectorID == "" {
		cfg.CollectorID = "test-tap"
	}
	tap, err := New(cfg, rec, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, tap.Shutdown(ctx))
		require.Empty(t, rec.invalidEvents(), "events that break the Event v1 schema")
	})
	return tap, rec, "http://" + tap.Addr()
}

type echoArgs struct {
	Message string `json:"message" jsonschema:"message to echo"`
}

// newMCPServer is a real go-sdk server with the tools the tests call.
func newMCPServer() *mcp.Server { return newMCPServerWith(nil) }

// newMCPServerWith is newMCPServer with server options (the revisions it speaks).
func newMCPServerWith(opts *mcp.ServerOptions) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "gosrv", Version: "0.1.0"}, opts)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "echo back"},
		func(ctx context.Context, req *mcp.CallToolRequest, args echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Echo: " + args.Message}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "fail", Description: "always fails"},
		func(ctx context.Context, req *mcp.CallToolRequest, args struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "it broke"}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "roots", Description: "asks the client for its roots, reporting progress"},
		func(ctx context.Context, req *mcp.CallToolRequest, args struct{}) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
				if err != nil {
					return nil, nil, err
				}
			}
			//lint:ignore SA1019 roots is deprecated in 2026-07-28 but older revisions use it; the tap must observe it
			res, err := req.Session.ListRoots(ctx, nil)
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(len(res.Roots), " roots")}}}, nil, nil
		})
	return srv
}

// upstream is a real MCP server on loopback that records the Host headers it was sent.
type testUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	hosts []string
}

func (u *testUpstream) seenHosts() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.hosts)
}

func startUpstream(t testing.TB, h http.Handler) *testUpstream {
	t.Helper()
	u := &testUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hosts = append(u.hosts, r.Host)
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func startMCPUpstream(t testing.TB, opts *mcp.StreamableHTTPOptions) *testUpstream {
	return startSDKUpstream(t, newMCPServer(), opts, nil)
}

// startSDKUpstream serves srv over Streamable HTTP, its traffic kept in wire if that is not nil.
func startSDKUpstream(t testing.TB, srv *mcp.Server, opts *mcp.StreamableHTTPOptions, wire *wireLog) *testUpstream {
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, opts)
	if wire != nil {
		h = wire.wrap(h)
	}
	up := startUpstream(t, h)
	t.Cleanup(func() {
		for ss := range srv.Sessions() { // sessions whose client could not say goodbye
			_ = ss.Close()
		}
	})
	return up
}

// headerTransport adds the agent header to every request of an MCP client.
type headerTransport struct {
	base  *http.Transport
	agent string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.agent != "" {
		r = r.Clone(r.Context())
		r.Header.Set(DefaultAgentHeader, h.agent)
	}
	return h.base.RoundTrip(r)
}

// connect connects a real go-sdk client named test-agent to endpoint.
func connect(t testing.TB, endpoint, agent string) (*mcp.ClientSession, *mcp.Client) {
	t.Helper()
	return connectVersion(t, endpoint, agent, nil)
}

// connectVersion is connect with session options (the protocol revision to ask for).
func connectVersion(t testing.TB, endpoint, agent string, opts *mcp.ClientSessionOptions) (*mcp.ClientSession, *mcp.Client) {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1.0"}, nil)
	//lint:ignore SA1019 roots is deprecated in 2026-07-28 but older revisions use it; the tap must observe it
	client.AddRoots(&mcp.Root{URI: "file:///tmp/project", Name: "project"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: headerTransport{base: base, agent: agent}},
		MaxRetries: -1,
	}, opts)
	require.NoError(t, err)
	return cs, client
}

// wireLog wraps an upstream handler and keeps the JSON-RPC messages it was sent and wrote, as
// they were on the wire: a POST body, a JSON response body, an SSE event's data. The tap's
// request_bytes and response_bytes are these messages' lengths (docs/collector-http.md), not the
// HTTP or SSE framing around them.
type wireLog struct {
	mu        sync.Mutex
	exchanges []*wireExchange
}

type wireExchange struct {
	request     []byte
	contentType string
	response    bytes.Buffer
}

func (l *wireLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ex := &wireExchange{request: body}
		l.mu.Lock()
		l.exchanges = append(l.exchanges, ex)
		l.mu.Unlock()
		h.ServeHTTP(&teeWriter{ResponseWriter: w, log: l, ex: ex}, r)
	})
}

// teeWriter copies what a handler writes into its exchange.
type teeWriter struct {
	http.ResponseWriter
	log *wireLog
	ex  *wireExchange
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.log.mu.Lock()
	if w.ex.response.Len() == 0 {
		w.ex.contentType = w.Header().Get("Content-Type")
	}
	w.ex.response.Write(p)
	w.log.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Flush()                      { w.ResponseWriter.(http.Flusher).Flush() }
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wireMessage is one JSON-RPC message on an upstream's wire.
type wireMessage struct {
	fromClient bool
	method     string // "" for a response
	id         string // the id's JSON text; "" for a notification
	size       int
}

// messages returns every message seen so far; an SSE event still being written is left out.
func (l *wireLog) messages() []wireMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []wireMessage
	add := func(fromClient bool, data []byte) {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 || data[0] != '{' || json.Unmarshal(data, &m) != nil {
			return // not a message: an endpoint event, a text/plain error
		}
		id := string(m.ID)
		if id == "null" {
			id = ""
		}
		out = append(out, wireMessage{fromClient: fromClient, method: m.Method, id: id, size: len(data)})
	}
	for _, ex := range l.exchanges {
		add(true, ex.request)
		if !strings.HasPrefix(ex.contentType, "text/event-stream") {
			add(false, ex.response.Bytes())
			continue
		}
		events := strings.Split(ex.response.String(), "\n\n")
		for _, ev := range events[:len(events)-1] {
			var data []string
			for _, line := range strings.Split(ev, "\n") {
				if v, ok := strings.CutPrefix(line, "data:"); ok {
					data = append(data, strings.TrimPrefix(v, " "))
				}
			}
			if data != nil {
				add(false, []byte(strings.Join(data, "\n")))
			}
		}
	}
	return out
}

// size returns the size of the one message of the client (fromClient) or the server with that
// id: a request (method set) or a response.
func (l *wireLog) size(t *testing.T, fromClient, request bool, id string) int {
	t.Helper()
	var sizes []int
	msgs := l.messages()
	for _, m := range msgs {
		if m.fromClient == fromClient && (m.method != "") == request && m.id == id {
			sizes = append(sizes, m.size)
		}
	}
	require.Len(t, sizes, 1, "client %v, request %v, id %s in %+v", fromClient, request, id, msgs)
	return sizes[0]
}

// requireSizes asserts that e's request_bytes and response_bytes are the lengths of its
// messages on the upstream's wire. A notification must be the only one of its method.
func (l *wireLog) requireSizes(t *testing.T, e schemas.Event) {
	t.Helper()
	fromClient := e.Direction == schemas.ClientToServer
	if e.Kind == schemas.KindNotification {
		var sizes []int
		for _, m := range l.messages() {
			if m.fromClient == fromClient && m.method == e.Method && m.id == "" {
				sizes = append(sizes, m.size)
			}
		}
		require.Equal(t, []int{e.RequestBytes}, sizes, e.Method)
		require.Zero(t, e.ResponseBytes, e.Method)
		return
	}
	require.Equal(t, l.size(t, fromClient, true, e.JSONRPCID), e.RequestBytes, "%s request_bytes", e.Method)
	require.Equal(t, l.size(t, !fromClient, false, e.JSONRPCID), e.ResponseBytes, "%s response_bytes", e.Method)
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
