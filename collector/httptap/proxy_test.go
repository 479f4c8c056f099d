package httptap

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// httpClient returns a client whose idle connections are closed when the test ends.
func httpClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func send(t *testing.T, method, url, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient(t).Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// recordingUpstream answers with respond after recording the body it was sent.
type recordingUpstream struct {
	mu     sync.Mutex
	bodies []string
	paths  []string
}

func (u *recordingUpstream) handler(respond http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(b))
		u.paths = append(u.paths, r.URL.RequestURI())
		u.mu.Unlock()
		respond(w, r)
	})
}

func (u *recordingUpstream) got() ([]string, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.bodies...), append([]string(nil), u.paths...)
}

func writeSSE(w http.ResponseWriter, status int, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(status)
	for _, e := range events {
		_, _ = io.WriteString(w, e)
		w.(http.Flusher).Flush()
	}
}

// relayEvents writes what arrives on events to the stream, flushed, until the client leaves.
func relayEvents(w http.ResponseWriter, r *http.Request, events <-chan string) {
	for {
		select {
		case ev := <-events:
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func TestSSEEventReachesClientBeforeUpstreamFinishes(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		writeSSE(w, http.StatusOK, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n")
		select { // hold the stream open until the test has seen the event through the tap
		case <-release:
		case <-r.Context().Done():
		}
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})

	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",`+
		`"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	br := bufio.NewReader(resp.Body)
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "\n\n") {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "the event must arrive while the upstream stream is still open")
		got.WriteString(line)
	}
	require.Equal(t, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n", got.String())

	ev := rec.waitFor(t, "tools/call", byMethod("tools/call"))
	require.Equal(t, schemas.StatusOK, ev.Status)
	require.Equal(t, "echo", ev.Target)
	require.Equal(t, "1", ev.JSONRPCID)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", ev.TraceID)
	require.Equal(t, "00f067aa0ba902b7", ev.SpanID)
	require.Equal(t, len(`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`), ev.ResponseBytes)

	close(release)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	require.Empty(t, rest)
}

func TestUnparsableTrafficPassesThroughUntouched(t *testing.T) {
	tests := []struct {
		name      string
		reqBody   string
		respond   http.HandlerFunc
		wantBody  string
		wantDir   schemas.Direction
		wantBytes int
	}{
		{
			name:    "request body not json",
			reqBody: "not json{\x00\xff",
			respond: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "Bad Request: invalid JSON", http.StatusBadRequest)
			},
			wantBody: "Bad Request: invalid JSON\n", wantDir: schemas.ClientToServer, wantBytes: len("not json{\x00\xff"),
		},
		{
			name:    "request body json but not json-rpc",
			reqBody: `{"hello":"world"}`,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusAccepted)
			},
			wantDir: schemas.ClientToServer, wantBytes: len(`{"hello":"world"}`),
		},
		{
			name:    "sse event not json",
			reqBody: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeSSE(w, http.StatusOK, "event: message\ndata: <html>oops</html>\n\n")
			},
			wantBody: "event: message\ndata: <html>oops</html>\n\n", wantDir: schemas.ServerToClient, wantBytes: len("<html>oops</html>"),
		},
		{
			name:    "json response not json",
			reqBody: `{"jsonrpc":"2.0","id":"a","method":"ping"}`,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":"a","res`)
			},
			wantBody: `{"jsonrpc":"2.0","id":"a","res`, wantDir: schemas.ServerToClient, wantBytes: len(`{"jsonrpc":"2.0","id":"a","res`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ru recordingUpstream
			up := startUpstream(t, ru.handler(tt.respond))
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})

			resp := send(t, http.MethodPost, tapURL+"/mcp", tt.reqBody, nil)
			require.Equal(t, tt.wantBody, readAll(t, resp.Body))
			bodies, _ := ru.got()
			require.Equal(t, []string{tt.reqBody}, bodies, "the upstream must get the body byte for byte")

			ev := rec.waitFor(t, "unparsed", func(e schemas.Event) bool { return e.Kind == schemas.KindUnparsed })
			require.Equal(t, schemas.StatusMalformed, ev.Status)
			require.Equal(t, tt.wantDir, ev.Direction)
			if tt.wantDir == schemas.ClientToServer {
				require.Equal(t, tt.wantBytes, ev.RequestBytes)
			} else {
				require.Equal(t, tt.wantBytes, ev.ResponseBytes)
			}
			require.Equal(t, "s", ev.ServerID)
			require.NotEmpty(t, ev.ID)
			if strings.Contains(tt.reqBody, `"id"`) {
				// Its response was what could not be read: malformed, not a timeout.
				call := rec.waitFor(t, "the request", byMethod("ping"))
				require.Equal(t, schemas.StatusMalformed, call.Status)
				require.Equal(t, tt.wantBytes, call.ResponseBytes)
			}
		})
	}
}

func TestOversizedBodiesPassThroughUnparsed(t *testing.T) {
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + strings.Repeat("x", 300) + `"}}}`
	bigResult := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("y", 300) + `"}]}}`
	var ru recordingUpstream
	up := startUpstream(t, ru.handler(func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, http.StatusOK, "data: "+bigResult+"\n\n")
	}))
	_, rec, tapURL := startTap(t, Config{MaxMessageBytes: 100, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})

	resp := send(t, http.MethodPost, tapURL+"/mcp", big, map[string]string{
		"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
	require.Equal(t, "data: "+bigResult+"\n\n", readAll(t, resp.Body))
	bodies, _ := ru.got()
	require.Equal(t, []string{big}, bodies)

	c2s := rec.waitFor(t, "oversized request", func(e schemas.Event) bool { return e.Direction == schemas.ClientToServer })
	require.Equal(t, schemas.KindUnparsed, c2s.Kind)
	require.Equal(t, schemas.StatusMalformed, c2s.Status)
	require.Equal(t, len(big), c2s.RequestBytes)
	require.Equal(t, "tools/call", c2s.Method, "what the headers say of a body too large to read")
	require.Equal(t, "echo", c2s.Target)
	s2c := rec.waitFor(t, "oversized response event", func(e schemas.Event) bool { return e.Direction == schemas.ServerToClient })
	require.Equal(t, schemas.KindUnparsed, s2c.Kind)
	require.Equal(t, len(bigResult), s2c.ResponseBytes)
}

// TestOversizedChunkedBodyIsRecordedByItsSize: a body too large to parse and of unknown length
// (chunked) passes through whole and is recorded with the size that went through.
func TestOversizedChunkedBodyIsRecordedByItsSize(t *testing.T) {
	var ru recordingUpstream
	up := startUpstream(t, ru.handler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	_, rec, tapURL := startTap(t, Config{MaxMessageBytes: 1000, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	body := `{"jsonrpc":"2.0","method":"notifications/x","params":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	req := must(http.NewRequest(http.MethodPost, tapURL+"/mcp", io.NopCloser(strings.NewReader(body))))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1 // unknown: sent chunked
	resp, err := httpClient(t).Do(req)
	require.NoError(t, err)
	_ = readAll(t, resp.Body)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	bodies, _ := ru.got()
	require.Equal(t, []string{body}, bodies)
	ev := rec.waitFor(t, "unparsed", func(e schemas.Event) bool { return e.Kind == schemas.KindUnparsed })
	require.Equal(t, len(body), ev.RequestBytes)
}

// TestHeaderMismatchIsFlagged: a 2026-07-28 request whose Mcp-Method or Mcp-Name header names
// something its body does not is passed on as it is and flagged; agreeing headers are not.
func TestHeaderMismatchIsFlagged(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	}))
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{}}}`
	for _, tt := range []struct {
		name, body, method, mcpName, want string
	}{
		{name: "agreeing", body: call, method: "tools/call", mcpName: "read_file"},
		{name: "name in base64", body: call, method: "tools/call", mcpName: "=?base64?cmVhZF9maWxl?="},
		{name: "no headers (an older revision)", body: call},
		{name: "other method", body: call, method: "tools/list", mcpName: "read_file", want: "header=Mcp-Method"},
		{name: "other tool", body: call, method: "tools/call", mcpName: "list_dir", want: "header=Mcp-Name"},
		{name: "a batch is not described by them", body: "[" + call + `,{"jsonrpc":"2.0","id":2,"method":"ping"}]`, method: "ping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
			hdr := map[string]string{"Mcp-Protocol-Version": "2026-07-28"}
			if tt.method != "" {
				hdr["Mcp-Method"], hdr["Mcp-Name"] = tt.method, tt.mcpName
			}
			resp := send(t, http.MethodPost, tapURL+"/mcp", tt.body, hdr)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			ev := rec.waitFor(t, "the call", byMethod("tools/call"))
			if tt.want == "" {
				require.Empty(t, ev.Flags)
				return
			}
			require.Equal(t, []schemas.Flag{{Type: FlagHeaderMismatch, Severity: schemas.SeverityHigh, Path: "$", Evidence: tt.want}}, ev.Flags)
		})
	}
}

func TestUnknownRouteIs404WithoutContactingUpstreams(t *testing.T) {
	var ru recordingUpstream
	up := startUpstream(t, ru.handler(func(w http.ResponseWriter, r *http.Request) {}))
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "known", URL: up.URL}}})

	for _, path := range []string{"/mcp/unknown", "/mcp/unknown/x", "/other", "/mcpx", "/"} {
		resp := send(t, http.MethodPost, tapURL+path, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.JSONEq(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"mcpwatch: no MCP server is configured at this path"}}`, readAll(t, resp.Body))
	}
	bodies, _ := ru.got()
	require.Empty(t, bodies)
	require.Empty(t, rec.all())
	require.Zero(t, counterValue(t, tap.metrics.requests.WithLabelValues("known", http.MethodPost)))
}

func TestRoutingPathQueryAndHost(t *testing.T) {
	var a, b recordingUpstream
	upA := startUpstream(t, a.handler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	upB := startUpstream(t, b.handler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	_, _, tapURL := startTap(t, Config{Upstreams: []Upstream{
		{Name: "first", URL: upA.URL + "/a/mcp?key=1"},
		{Name: "default", URL: upB.URL + "/b/mcp"},
	}})
	note := `{"jsonrpc":"2.0","method":"notifications/initialized"}`

	send(t, http.MethodPost, tapURL+"/mcp", note, nil)
	send(t, http.MethodPost, tapURL+"/mcp/first?x=2", note, nil)
	send(t, http.MethodPost, tapURL+"/mcp/first/sub/path", note, nil)
	send(t, http.MethodPost, tapURL+"/mcp/default/", note, nil)

	_, pathsA := a.got()
	_, pathsB := b.got()
	require.Equal(t, []string{"/a/mcp?key=1&x=2", "/a/mcp/sub/path?key=1"}, pathsA)
	require.Equal(t, []string{"/b/mcp", "/b/mcp"}, pathsB, `/mcp goes to the upstream named "default"`)
	for _, u := range []*testUpstream{upA, upB} {
		for _, h := range u.seenHosts() {
			require.Equal(t, strings.TrimPrefix(u.URL, "http://"), h)
		}
	}
}

func TestRequestTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Mcp-Session-Id", "s1")
		switch {
		case r.Method == http.MethodGet && r.Header.Get("Last-Event-ID") == "p-8":
			// The client resumes the stream the server ended: the answer comes here.
			writeSSE(w, http.StatusOK, "id: p-9\ndata: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"content\":[]}}\n\n")
		case strings.Contains(string(body), "never"):
			writeSSE(w, http.StatusOK, ": keepalive\n\n")
			select { // never answer
			case <-release:
			case <-r.Context().Done():
			}
		default:
			// A priming event, then the stream ends: the client is to poll (2025-11-25).
			writeSSE(w, http.StatusOK, "id: p-8\nretry: 10\ndata: \n\n")
		}
	}))
	_, rec, tapURL := startTap(t, Config{RequestTimeout: 50 * time.Millisecond, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tapURL+"/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"never"}}`))
	require.NoError(t, err)
	resp, err := httpClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	ev := rec.waitFor(t, "timeout while the stream is open", func(e schemas.Event) bool { return e.Target == "never" })
	require.Equal(t, schemas.StatusTimeout, ev.Status)
	require.Equal(t, "7", ev.JSONRPCID)
	require.GreaterOrEqual(t, ev.LatencyMicros, int64(50_000))
	require.Zero(t, ev.ResponseBytes)

	// A stream the server ended unanswered is not the end of its request: unanswered
	// elsewhere, it times out at its deadline, not when the stream ends.
	resp = send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"ends"}}`,
		map[string]string{"Mcp-Session-Id": "s1"})
	require.Equal(t, "id: p-8\nretry: 10\ndata: \n\n", readAll(t, resp.Body))
	ev = rec.waitFor(t, "unanswered after its stream ended", func(e schemas.Event) bool { return e.JSONRPCID == "9" })
	require.Equal(t, schemas.StatusTimeout, ev.Status)
	require.GreaterOrEqual(t, ev.LatencyMicros, int64(50_000), "settled at its deadline")

	// With the deadline far away, the answer on the resumed stream settles the request.
	tap2, rec2, tapURL2 := startTap(t, Config{RequestTimeout: time.Hour, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	session := map[string]string{"Mcp-Session-Id": "s1"}
	resp2 := send(t, http.MethodPost, tapURL2+"/mcp", `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"ends"}}`, session)
	require.Equal(t, "id: p-8\nretry: 10\ndata: \n\n", readAll(t, resp2.Body))
	resumed := send(t, http.MethodGet, tapURL2+"/mcp", "", map[string]string{"Mcp-Session-Id": "s1", "Last-Event-ID": "p-8"})
	require.Contains(t, readAll(t, resumed.Body), `"id":8`)
	ev = rec2.waitFor(t, "answered on the resumed stream", func(e schemas.Event) bool { return e.Target == "ends" })
	require.Equal(t, schemas.StatusOK, ev.Status)
	require.Equal(t, "8", ev.JSONRPCID)
	require.Equal(t, "s1", ev.SessionID)
	require.Positive(t, ev.ResponseBytes)
	require.Zero(t, counterValue(t, tap2.metrics.untracked.WithLabelValues("unmatched_response")))
}

// TestHTTPErrorsFromARealServer sends what a confused client might to a real go-sdk server,
// which answers with plain-text HTTP errors.
func TestHTTPErrorsFromARealServer(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{})
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "go", URL: up.URL}}})

	tests := []struct {
		name       string
		body       string
		hdr        map[string]string
		wantStatus int
		wantKind   schemas.Kind
	}{
		{
			name:       "unknown session",
			body:       `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`,
			hdr:        map[string]string{"Mcp-Session-Id": "NOSUCHSESSION", "Mcp-Protocol-Version": "2025-06-18"},
			wantStatus: http.StatusNotFound, wantKind: schemas.KindRequest,
		},
		{
			name:       "unsupported protocol version",
			body:       `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`,
			hdr:        map[string]string{"Mcp-Protocol-Version": "1999-01-01"},
			wantStatus: http.StatusBadRequest, wantKind: schemas.KindRequest,
		},
		{
			name:       "notification to an unknown session",
			body:       `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
			hdr:        map[string]string{"Mcp-Session-Id": "NOSUCHSESSION", "Mcp-Protocol-Version": "2025-06-18"},
			wantStatus: http.StatusNotFound, wantKind: schemas.KindNotification,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, http.MethodPost, tapURL+"/mcp", tt.body, tt.hdr)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
			_ = readAll(t, resp.Body)

			ev := rec.waitFor(t, tt.name, func(e schemas.Event) bool { return e.RequestBytes == len(tt.body) })
			require.Equal(t, tt.wantKind, ev.Kind)
			require.Equal(t, schemas.StatusError, ev.Status)
			require.Equal(t, tt.wantStatus, ev.ErrorCode)
			if sid := tt.hdr["Mcp-Session-Id"]; sid != "" {
				require.Equal(t, sid, ev.SessionID)
			} else {
				require.NotEmpty(t, ev.SessionID, "sessionless traffic gets a stitched session")
			}
		})
	}
}

func TestJSONRPCErrorAnswersEveryPendingRequest(t *testing.T) {
	// As the TS SDK answers a request it rejects: a JSON-RPC error with a null id.
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}`)
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "ts", URL: up.URL}}})
	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	_ = readAll(t, resp.Body)
	ev := rec.waitFor(t, "tools/list", byMethod("tools/list"))
	require.Equal(t, schemas.StatusError, ev.Status)
	require.Equal(t, -32000, ev.ErrorCode)
}

func TestBatchesArePairedPerMessage(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		// Responses in reverse order, one SSE event each, with TS-style key order and ids.
		writeSSE(w, http.StatusOK,
			"event: message\nid: e1\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":\"b\"}\n\n",
			"event: message\nid: e2\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\n",
			"data: \"error\":{\"code\":-32601,\"message\":\"Method not found\"}}\n\n")
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "ts", URL: up.URL}}})
	resp := send(t, http.MethodPost, tapURL+"/mcp",
		`[{"jsonrpc":"2.0","id":5,"method":"foo/bar"},{"jsonrpc":"2.0","id":"b","method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]`, nil)
	_ = readAll(t, resp.Body)

	foo := rec.waitFor(t, "foo/bar", byMethod("foo/bar"))
	require.Equal(t, schemas.StatusError, foo.Status)
	require.Equal(t, -32601, foo.ErrorCode)
	require.Equal(t, "5", foo.JSONRPCID)
	require.Equal(t, len(`{"jsonrpc":"2.0","id":5,"method":"foo/bar"}`), foo.RequestBytes)
	require.Equal(t, len("{\"jsonrpc\":\"2.0\",\"id\":5,\n\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}"), foo.ResponseBytes)

	ping := rec.waitFor(t, "ping", byMethod("ping"))
	require.Equal(t, schemas.StatusOK, ping.Status)
	require.Equal(t, `"b"`, ping.JSONRPCID)

	note := rec.waitFor(t, "notification", byMethod("notifications/x"))
	require.Equal(t, schemas.KindNotification, note.Kind)
	require.Equal(t, schemas.StatusOK, note.Status)
}

func TestStandaloneGETStreamIsObserved(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		writeSSE(w, http.StatusOK,
			": ok\n\n",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"file:///a\"}}\n\n",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"secret log line\"}}\n\n")
	}))
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	resp := send(t, http.MethodGet, tapURL+"/mcp", "", map[string]string{
		"Mcp-Session-Id": "S1", "Mcp-Protocol-Version": "2025-06-18", DefaultAgentHeader: "ops-agent",
	})
	_ = readAll(t, resp.Body)

	upd := rec.waitFor(t, "resources/updated", byMethod("notifications/resources/updated"))
	require.Equal(t, schemas.ServerToClient, upd.Direction)
	require.Equal(t, schemas.KindNotification, upd.Kind)
	require.Equal(t, "file:///a", upd.Target)
	require.Equal(t, "S1", upd.SessionID)
	require.Equal(t, "2025-06-18", upd.ProtocolVersion)
	require.Equal(t, "ops-agent", upd.AgentID)

	msg := rec.waitFor(t, "notifications/message", byMethod("notifications/message"))
	require.Equal(t, `{"data":"string","level":"string"}`, msg.ArgsShape)
	require.NotContains(t, msg.ArgsShape, "secret")
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "dead", URL: deadURL}}})
	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	ev := rec.waitFor(t, "tools/list", byMethod("tools/list"))
	require.Equal(t, schemas.StatusError, ev.Status)
	require.Equal(t, http.StatusBadGateway, ev.ErrorCode)
	require.Equal(t, 1.0, counterValue(t, tap.metrics.upstreamErrors.WithLabelValues("dead")))
	require.Equal(t, 1.0, counterValue(t, tap.metrics.requests.WithLabelValues("dead", http.MethodPost)))
	require.Equal(t, 1.0, counterValue(t, tap.metrics.events.WithLabelValues(string(schemas.StatusError))))
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
