package httptap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// uriRecorder wraps an upstream handler to remember the request URIs it was sent, by method.
type uriRecorder struct {
	mu   sync.Mutex
	uris []string
}

func (u *uriRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.uris = append(u.uris, r.Method+" "+r.URL.RequestURI())
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (u *uriRecorder) got() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.uris...)
}

// TestLegacySSEWithGoSDKPeers puts the tap between the go-sdk's legacy HTTP+SSE client and
// server: the server announces its POST endpoint on the GET stream, the tap rewrites it to
// its own route, and requests posted there are paired with responses on the GET stream.
func TestLegacySSEWithGoSDKPeers(t *testing.T) {
	tests := []struct {
		name, upstreamPath, clientPath string
		agent                          string // agent header the client sends, if any
		version                        string // the revision the client asks for, if not the SDK's default
		wantProtocol                   string
	}{
		{name: "named route", upstreamPath: "/sse", clientPath: "/mcp/legacy", agent: "legacy-bot", wantProtocol: "2025-11-25"},
		{name: "default route", upstreamPath: "/sse", clientPath: "/mcp", version: "2024-11-05", wantProtocol: "2024-11-05"},
		{name: "upstream at the root", upstreamPath: "", clientPath: "/mcp/legacy/sse", wantProtocol: "2025-11-25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newMCPServer()
			var (
				uris uriRecorder
				wire wireLog
			)
			up := startUpstream(t, wire.wrap(uris.wrap(mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil))))
			tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "legacy", URL: up.URL + tt.upstreamPath}}})

			client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1.0"}, nil)
			//lint:ignore SA1019 roots is deprecated in 2026-07-28 but older revisions use it; the tap must observe it
			client.AddRoots(&mcp.Root{URI: "file:///tmp/project", Name: "project"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var opts *mcp.ClientSessionOptions
			if tt.version != "" {
				opts = &mcp.ClientSessionOptions{ProtocolVersion: tt.version}
			}
			hc := httpClient(t)
			hc.Transport = headerTransport{base: hc.Transport.(*http.Transport), agent: tt.agent}
			cs, err := client.Connect(ctx, &mcp.SSEClientTransport{Endpoint: tapURL + tt.clientPath, HTTPClient: hc}, opts)
			require.NoError(t, err)
			require.Equal(t, tt.wantProtocol, cs.InitializeResult().ProtocolVersion)

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello legacy"}})
			require.NoError(t, err)
			require.Equal(t, "Echo: hello legacy", res.Content[0].(*mcp.TextContent).Text)
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{}})
			require.NoError(t, err)
			require.True(t, res.IsError)
			params := &mcp.CallToolParams{Name: "roots", Arguments: map[string]any{}}
			params.SetProgressToken("legacy-tok")
			res, err = cs.CallTool(ctx, params)
			require.NoError(t, err)
			require.Equal(t, "1 roots", res.Content[0].(*mcp.TextContent).Text)
			require.Equal(t, 1, tap.legacy.len())
			require.NoError(t, cs.Close())

			// The client posted where the upstream said, through the tap.
			var sessionID string
			for _, u := range uris.got() {
				if strings.HasPrefix(u, "POST ") {
					pu := must(url.Parse(strings.TrimPrefix(u, "POST ")))
					require.Equal(t, "/sse", pu.Path) // the go-sdk posts to its stream's path
					sessionID = pu.Query().Get("sessionid")
				}
			}
			require.NotEmpty(t, sessionID, "the upstream got POSTs: %v", uris.got())

			echo := rec.waitFor(t, "tools/call echo", func(e schemas.Event) bool { return e.Method == "tools/call" && e.Target == "echo" })
			require.Equal(t, schemas.StatusOK, echo.Status)
			require.Equal(t, `{"message":"string"}`, echo.ArgsShape)
			wire.requireSizes(t, echo) // the response came on the GET stream
			require.Len(t, echo.ResultHash, 32)
			fail := rec.waitFor(t, "tools/call fail", func(e schemas.Event) bool { return e.Method == "tools/call" && e.Target == "fail" })
			require.Equal(t, schemas.StatusToolError, fail.Status)
			wire.requireSizes(t, fail)
			call := rec.waitFor(t, "tools/call roots", func(e schemas.Event) bool { return e.Method == "tools/call" && e.Target == "roots" })
			require.Equal(t, schemas.StatusOK, call.Status)
			wire.requireSizes(t, call)
			roots := rec.waitFor(t, "roots/list", byMethod("roots/list"))
			require.Equal(t, schemas.ServerToClient, roots.Direction)
			require.Equal(t, schemas.StatusOK, roots.Status)
			wire.requireSizes(t, roots) // the client's answer, posted through the tap
			progress := rec.waitFor(t, "progress", byMethod("notifications/progress"))
			require.Equal(t, call.JSONRPCID, progress.JSONRPCID)
			require.Equal(t, "roots", progress.Target)
			wire.requireSizes(t, progress)
			init := rec.waitFor(t, "initialize", byMethod("initialize"))
			require.Equal(t, schemas.StatusOK, init.Status)
			wire.requireSizes(t, init)
			wire.requireSizes(t, rec.waitFor(t, "notifications/initialized", byMethod("notifications/initialized")))

			// Asking for the SDK's default revision, the client probed with server/discover first,
			// on the legacy session's POST endpoint; the server answered with the revisions it
			// speaks over this transport, none of them stateless.
			probes := rec.matching(byMethod("server/discover"))
			if tt.version != "" {
				require.Empty(t, probes)
			} else {
				require.Len(t, probes, 1)
				require.Equal(t, schemas.StatusOK, probes[0].Status)
				wire.requireSizes(t, probes[0])
			}

			wantAgent, wantSource := "test-agent", agentFromClientInfo
			if tt.agent != "" {
				wantAgent, wantSource = tt.agent, agentFromHeader
			}
			for _, e := range rec.all() {
				require.Equal(t, "sse", e.Transport, e.Method)
				require.Equal(t, sessionID, e.SessionID, "%s: the session id of the endpoint the server announced", e.Method)
				require.Equal(t, "legacy", e.ServerID)
				require.Equal(t, "test-agent", e.ClientName, e.Method)
				require.Equal(t, "1.0", e.ClientVersion, e.Method)
				require.Equal(t, wantAgent, e.AgentID, e.Method)
				require.Equal(t, wantSource, e.AgentSource, e.Method)
				require.Equal(t, tt.agent, e.DeclaredAgent, e.Method)
				if e.Method == "server/discover" {
					require.Equal(t, "2026-07-28", e.ProtocolVersion, "what the probe asked for")
				} else {
					require.Equal(t, tt.wantProtocol, e.ProtocolVersion, e.Method)
				}
				require.NotEqual(t, schemas.StatusTimeout, e.Status, e.Method)
				require.NotEqual(t, schemas.StatusMalformed, e.Status, e.Method)
			}
			require.Eventually(t, func() bool { return tap.legacy.len() == 0 }, 5*time.Second, 5*time.Millisecond,
				"the session ends with its GET stream")
			require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("unmatched_response")))
		})
	}
}

// legacyServer is a crafted legacy HTTP+SSE upstream in the manner of the TS SDK's
// SSEServerTransport: GET streamPath announces endpoint(sessionID) and carries the responses to
// what is posted to postPath?sessionId=….
type legacyServer struct {
	streamPath, postPath string
	endpoint             func(host, sessionID string) string

	mu      sync.Mutex
	streams map[string]chan string
	posted  []string
}

func (s *legacyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == s.streamPath:
		id := fmt.Sprintf("s%d", time.Now().UnixNano())
		ch := make(chan string, 16)
		s.mu.Lock()
		if s.streams == nil {
			s.streams = map[string]chan string{}
		}
		s.streams[id] = ch
		s.mu.Unlock()
		// The endpoint and a first notification in one write: the notification already belongs
		// to the session.
		writeSSE(w, http.StatusOK, ": stream open\n\n", "event: endpoint\ndata: "+s.endpoint(r.Host, id)+"\n\n"+
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hi\"}}\n\n")
		relayEvents(w, r, ch)
	case r.Method == http.MethodPost && r.URL.Path == s.postPath:
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.posted = append(s.posted, r.URL.RequestURI())
		ch := s.streams[r.URL.Query().Get("sessionId")]
		s.mu.Unlock()
		if ch == nil {
			http.Error(w, "no session", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "Accepted")
		m, err := jsonrpc.ParseMessage(body)
		if err == nil && m.IsRequest() {
			ch <- "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":" + m.IDString() + ",\"result\":{\"content\":[]}}\n\n"
		}
	default:
		http.NotFound(w, r)
	}
}

func (s *legacyServer) postedURIs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.posted...)
}

// TestLegacyEndpointRewriting checks where the tap sends clients for the endpoints upstreams
// announce, that POSTs get there and back, and that only announced paths are reachable
// through the /-/ escape.
func TestLegacyEndpointRewriting(t *testing.T) {
	tests := []struct {
		name         string
		upstreamPath string // the upstream's configured URL path
		clientPath   string // where the client opens the stream on the tap
		endpoint     func(host, id string) string
		wantEndpoint string // %s is the session id; empty: passed on untouched
	}{
		{
			name: "TS style: stream at /sse, posts at /message", upstreamPath: "/sse", clientPath: "/mcp/ts",
			endpoint:     func(_, id string) string { return "/message?sessionId=" + id },
			wantEndpoint: "/mcp/ts/-/message?sessionId=%s",
		},
		{
			name: "absolute URL on the upstream's host", upstreamPath: "/sse", clientPath: "/mcp",
			endpoint:     func(host, id string) string { return "http://" + host + "/message?sessionId=" + id },
			wantEndpoint: "/mcp/ts/-/message?sessionId=%s",
		},
		{
			name: "upstream configured at its root", upstreamPath: "", clientPath: "/mcp/ts/sse",
			endpoint:     func(_, id string) string { return "/message?sessionId=" + id },
			wantEndpoint: "/mcp/ts/message?sessionId=%s",
		},
		{
			name: "relative reference", upstreamPath: "/sse", clientPath: "/mcp/ts",
			endpoint:     func(_, id string) string { return "message?sessionId=" + id },
			wantEndpoint: "/mcp/ts/-/message?sessionId=%s",
		},
		{
			name: "another host is left alone", upstreamPath: "/sse", clientPath: "/mcp/ts",
			endpoint: func(_, id string) string { return "http://other.example:9/message?sessionId=" + id },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := &legacyServer{streamPath: "/sse", postPath: "/message", endpoint: tt.endpoint}
			up := startUpstream(t, ls)
			tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "ts", URL: up.URL + tt.upstreamPath}}})

			// Before any endpoint was announced, the escape reaches nothing.
			resp := send(t, http.MethodPost, tapURL+"/mcp/ts/-/message?sessionId=x", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := must(http.NewRequestWithContext(ctx, http.MethodGet, tapURL+tt.clientPath, nil))
			req.Header.Set("Accept", "text/event-stream")
			stream, err := httpClient(t).Do(req)
			require.NoError(t, err)
			defer stream.Body.Close()
			require.Empty(t, stream.Header.Get("Content-Length"))
			br := bufio.NewReader(stream.Body)
			readEvent := func() string { return readSSEEvent(t, br) }
			require.Equal(t, ": stream open\n\n", readEvent())
			endpoint := strings.TrimSuffix(strings.TrimPrefix(readEvent(), "event: endpoint\ndata: "), "\n\n")
			id := must(url.Parse(endpoint)).Query().Get("sessionId")
			require.NotEmpty(t, id)
			if tt.wantEndpoint == "" {
				require.Equal(t, tt.endpoint("", id), endpoint, "passed on untouched")
				return
			}
			require.Equal(t, fmt.Sprintf(tt.wantEndpoint, id), endpoint)
			require.Contains(t, readEvent(), "notifications/message")
			note := rec.waitFor(t, "notifications/message", byMethod("notifications/message"))
			require.Equal(t, id, note.SessionID, "the session began before what followed the endpoint")
			require.Equal(t, "sse", note.Transport)

			postURL := must(url.Parse(tapURL + tt.clientPath)).ResolveReference(must(url.Parse(endpoint)))
			resp = send(t, http.MethodPost, postURL.String(), `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, nil)
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			require.Equal(t, "Accepted", readAll(t, resp.Body))
			require.Equal(t, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n", readEvent())
			require.Equal(t, []string{"/message?sessionId=" + id}, ls.postedURIs())

			ev := rec.waitFor(t, "tools/call", byMethod("tools/call"))
			require.Equal(t, schemas.StatusOK, ev.Status)
			require.Equal(t, "7", ev.JSONRPCID)
			require.Equal(t, id, ev.SessionID)
			require.Equal(t, "sse", ev.Transport)
			require.Equal(t, len(`{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`), ev.ResponseBytes)

			// Only the announced path is reachable through the escape.
			resp = send(t, http.MethodGet, tapURL+"/mcp/ts/-/admin", "", nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
			require.NotContains(t, ls.postedURIs(), "/admin")

			// A request still unanswered when the stream ends is a timeout, once.
			resp = send(t, http.MethodPost, postURL.String(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			rec.waitFor(t, "notification", byMethod("notifications/initialized"))
			cancel()
			require.Eventually(t, func() bool { return tap.legacy.len() == 0 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}

// TestEndpointWatcherPassesBytesThrough feeds a legacy stream cut at every position and checks
// the client gets exactly the upstream's bytes with only the endpoint's URL changed.
func TestEndpointWatcherPassesBytesThrough(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "endpoint first",
			in:   "event: endpoint\ndata: /message?sessionId=abc\n\nevent: message\ndata: {}\n\n",
			want: "event: endpoint\ndata: /mcp/up/-/message?sessionId=abc\n\nevent: message\ndata: {}\n\n",
		},
		{
			name: "CRLF, BOM, comments and an id",
			in:   "\xef\xbb\xbf: hi\r\n\r\nid: 1\r\nevent: endpoint\r\ndata:/message?sessionId=abc\r\n\r\n: keepalive\r\n\r\n",
			want: "\xef\xbb\xbf: hi\r\n\r\nid: 1\r\nevent: endpoint\r\ndata:/mcp/up/-/message?sessionId=abc\r\n\r\n: keepalive\r\n\r\n",
		},
		{
			name: "a Streamable HTTP GET stream is untouched",
			in:   ": ok\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\nevent: endpoint\ndata: /x\n\n",
			want: ": ok\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\nevent: endpoint\ndata: /x\n\n",
		},
		{
			name: "a multi-line endpoint is not a URL",
			in:   "event: endpoint\ndata: /a\ndata: /b\n\n",
			want: "event: endpoint\ndata: /a\ndata: /b\n\n",
		},
		{
			name: "a stream that ends mid-event",
			in:   "event: endpoint\ndata: /message?sessionId=abc",
			want: "event: endpoint\ndata: /message?sessionId=abc",
		},
		{
			name: "a retry block first dispatches no event",
			in:   "retry: 3000\n\nevent: endpoint\ndata: /message?sessionId=abc\n\n",
			want: "retry: 3000\n\nevent: endpoint\ndata: /mcp/up/-/message?sessionId=abc\n\n",
		},
		{
			name: "nor do an id alone or an event without data",
			in:   "id: 7\r\revent: endpoint\r\revent: endpoint\rdata: /message?sessionId=abc\r\r",
			want: "id: 7\r\revent: endpoint\r\revent: endpoint\rdata: /mcp/up/-/message?sessionId=abc\r\r",
		},
		{
			name: "a bare data line keeps its field name",
			in:   "event: endpoint\ndata\n\n",
			want: "event: endpoint\ndata:/mcp/up\n\n",
		},
		{
			name: "a byte-order mark past the stream's start is content",
			in:   "\n\xef\xbb\xbfevent: endpoint\ndata: /message?sessionId=abc\n\n",
			want: "\n\xef\xbb\xbfevent: endpoint\ndata: /message?sessionId=abc\n\n",
		},
	}
	tap, err := New(Config{Upstreams: []Upstream{{Name: "up", URL: "http://127.0.0.1:1/sse"}}}, &recorder{}, testSettings(t))
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunks := range [][]string{{tt.in}, strings.Split(tt.in, "")} {
				got := watchStream(t, tap, chunks)
				require.Equal(t, tt.want, got, "%q", chunks)
			}
			for i := 1; i < len(tt.in); i++ {
				got := watchStream(t, tap, []string{tt.in[:i], tt.in[i:]})
				require.Equal(t, tt.want, got, "cut at %d", i)
			}
		})
	}
}

// TestEndpointWatcherHeldLimit checks that an event whose block does not end within 16 KiB
// passes untouched, however the stream is cut into reads (a CR LF ending it may be cut in two),
// and that so does what follows a block that does not.
func TestEndpointWatcherHeldLimit(t *testing.T) {
	tap, err := New(Config{Upstreams: []Upstream{{Name: "up", URL: "http://127.0.0.1:1/sse"}}}, &recorder{}, testSettings(t))
	require.NoError(t, err)
	// block is an SSE block of lines whose blank line starts at blank.
	block := func(blank int, lines ...string) string {
		n := blank - len(strings.Join(lines, "")) - 3
		return strings.Join(lines, "") + ":" + strings.Repeat("x", n) + "\r\n\r\n"
	}
	endpoint := func(blank int) string {
		return block(blank, "event: endpoint\r\n", "data: /message?sessionId=abc\r\n")
	}
	tests := []struct {
		name      string
		in        string
		rewritten bool
	}{
		{name: "blank line on the limit's last byte", in: endpoint(maxEndpointHeld - 1), rewritten: true},
		{name: "blank line past the limit", in: endpoint(maxEndpointHeld)},
		{name: "after a block within the limit", in: block(maxEndpointHeld-1) + endpoint(100), rewritten: true},
		{name: "after a block past the limit", in: block(maxEndpointHeld) + endpoint(100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.in
			if tt.rewritten {
				want = strings.Replace(tt.in, "data: /message", "data: /mcp/up/-/message", 1)
			}
			n := len(tt.in)
			for name, chunks := range map[string][]string{
				"one read":                    {tt.in},
				"reads of 100 bytes":          cutAt(tt.in, bytes.Repeat([]byte{99}, n/100)),
				"the last LF read on its own": {tt.in[:n-1], tt.in[n-1:]},
			} {
				got := watchStream(t, tap, chunks)
				if got != want {
					d := 0
					for d < min(len(got), len(want)) && got[d] == want[d] {
						d++
					}
					t.Fatalf("%s: differs at byte %d: got %q, want %q", name, d, got[max(0, d-40):min(len(got), d+40)], want[max(0, d-40):min(len(want), d+40)])
				}
			}
		})
	}
}

func watchStream(t *testing.T, tap *Tap, chunks []string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/mcp/up", nil)
	ex := tap.newExchange(req, tap.routes["up"], "")
	fetched := must(url.Parse("http://127.0.0.1:1/sse"))
	w := &endpointWatcher{ReadCloser: io.NopCloser(&chunkReader{chunks: chunks}), ex: ex, fetched: fetched}
	out, err := io.ReadAll(w)
	require.NoError(t, err)
	if ex.legacy != nil {
		tap.legacy.remove("up", ex.legacy)
	}
	return string(out)
}

// chunkReader returns its chunks one Read at a time.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// pathLegacyServer is a crafted legacy HTTP+SSE upstream that names each session in its
// endpoint's path (/messages/{id}), with no query, and answers a request on the GET stream
// 50 ms after its POST's 202.
type pathLegacyServer struct {
	mu      sync.Mutex
	n       int
	streams map[string]chan string
}

func (s *pathLegacyServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.n++
		id := fmt.Sprintf("s%d", s.n)
		ch := make(chan string, 4)
		if s.streams == nil {
			s.streams = map[string]chan string{}
		}
		s.streams[id] = ch
		s.mu.Unlock()
		writeSSE(w, http.StatusOK, "event: endpoint\ndata: /messages/"+id+"\n\n")
		relayEvents(w, r, ch)
	})
	mux.HandleFunc("POST /messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		ch := s.streams[r.PathValue("id")]
		s.mu.Unlock()
		if ch == nil {
			http.Error(w, "no session", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		if m, err := jsonrpc.ParseMessage(body); err == nil && m.IsRequest() {
			time.AfterFunc(50*time.Millisecond, func() {
				ch <- "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":" + m.IDString() + ",\"result\":{\"content\":[]}}\n\n"
			})
		}
	})
	return mux
}

// TestLegacyPathSessions checks an upstream whose endpoints name their session in the path:
// more sessions at once than the upstream may announce escaped paths all keep their clients on
// the tap; each POST joins the session whose endpoint it was sent to, so the answers on the GET
// streams pair with the requests of their own session, though every session's request has the
// same id; and a session's path is reachable only while its stream is open.
func TestLegacyPathSessions(t *testing.T) {
	const sessions = maxLegacyPaths + 4
	up := startUpstream(t, (&pathLegacyServer{}).handler())
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "ts", URL: up.URL + "/sse"}}})

	type stream struct {
		endpoint string
		events   *bufio.Reader
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams []stream
	for range sessions {
		req := must(http.NewRequestWithContext(ctx, http.MethodGet, tapURL+"/mcp/ts", nil))
		resp, err := httpClient(t).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		s := stream{events: bufio.NewReader(resp.Body)}
		first := readSSEEvent(t, s.events)
		s.endpoint = strings.TrimSuffix(strings.TrimPrefix(first, "event: endpoint\ndata: "), "\n\n")
		require.Regexp(t, `^/mcp/ts/-/messages/s\d+$`, s.endpoint, "the client is sent to the tap: %q", first)
		streams = append(streams, s)
	}
	require.Equal(t, sessions, tap.legacy.len())

	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`
	for _, s := range streams {
		resp := send(t, http.MethodPost, tapURL+s.endpoint, call, nil)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	for _, s := range streams {
		require.Equal(t, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n", readSSEEvent(t, s.events))
	}
	require.Eventually(t, func() bool { return len(rec.matching(byMethod("tools/call"))) == sessions }, 5*time.Second, 5*time.Millisecond)
	bySession := map[string]schemas.Event{}
	for _, ev := range rec.matching(byMethod("tools/call")) {
		require.Equal(t, schemas.StatusOK, ev.Status, "session %q", ev.SessionID)
		require.Equal(t, legacyTransportName, ev.Transport)
		bySession[ev.SessionID] = ev
	}
	for _, s := range streams {
		require.Contains(t, bySession, strings.TrimPrefix(s.endpoint, "/mcp/ts/-"), "the session is the endpoint's path")
	}
	require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("unmatched_response")))

	cancel()
	require.Eventually(t, func() bool { return tap.legacy.len() == 0 }, 5*time.Second, 5*time.Millisecond)
	resp := send(t, http.MethodPost, tapURL+streams[0].endpoint, call, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the path of an ended session is not reachable")
}

// readSSEEvent reads one SSE block, blank line included.
func readSSEEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), "\n\n") {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		b.WriteString(line)
	}
	return b.String()
}
