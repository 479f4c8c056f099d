package httptap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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
func newMCPServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "gosrv", Version: "0.1.0"}, nil)
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
	srv := newMCPServer()
	up := startUpstream(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, opts))
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

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
