package httptap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// seenRequest is what an upstream was sent.
type seenRequest struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
	Trailer           http.Header
}

// seenResponse is what a client got.
type seenResponse struct {
	Informational []int
	Status        int
	Header        http.Header
	Body          string
	Trailer       http.Header
}

// TestForwardingMatchesReverseProxy sends the same requests through the tap on its own
// connections, through the tap with http.Transport (how TLS upstreams are reached), and
// through httputil.ReverseProxy with the tap's Rewrite (how the tap forwarded before it had
// its own forwarder): the upstream and the client must see the same thing all three ways.
func TestForwardingMatchesReverseProxy(t *testing.T) {
	big := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` +
		strings.Repeat("b", h1MaxBody) + `"}}}`
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		chunked bool // sent without a length; the tap sends what it read with one
		framed  bool // a stream the tap read whole before it had to wait: it may go with a length
		hdr     http.Header
		respond http.HandlerFunc
	}{
		{
			name: "hop-by-hop, forwarding and encoding headers", method: http.MethodPost, path: "/mcp/up/sub?x=1",
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
			hdr: http.Header{
				"Connection": {"X-Hop"}, "X-Hop": {"secret"}, "Keep-Alive": {"timeout=5"},
				"Proxy-Authorization": {"Basic eDp5"}, "Te": {"trailers"}, "X-Forwarded-For": {"10.0.0.1"},
				"Forwarded": {"for=10.0.0.1"}, "Accept-Encoding": {"gzip"}, "User-Agent": {""},
				"Mcp-Session-Id": {"S1"}, "Authorization": {"Bearer abc"},
			},
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "X-Resp-Hop")
				w.Header().Set("X-Resp-Hop", "1")
				w.Header().Set("Keep-Alive", "timeout=5")
				w.Header().Set("X-Kept", "yes")
				w.Header().Set("Trailer", "X-Declared")
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
				w.Header().Set("X-Declared", "d")
				w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
			},
		},
		{
			name: "query re-encoded when unparsable, SSE stream", method: http.MethodGet, path: "/mcp/up?a=1;b=2&c=%zz", framed: true,
			hdr: http.Header{"User-Agent": {"agent/1"}, "Mcp-Session-Id": {"S1"}},
			respond: func(w http.ResponseWriter, r *http.Request) {
				writeSSE(w, http.StatusOK, ": ok\n\n", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n")
			},
		},
		{
			name: "early hints", method: http.MethodPost, path: "/mcp/up",
			body: `{"jsonrpc":"2.0","id":2,"method":"ping"}`,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":2,"result":{}}`)
			},
		},
		{
			name: "delete", method: http.MethodDelete, path: "/mcp/up", hdr: http.Header{"Mcp-Session-Id": {"S1"}},
			respond: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
		},
		{
			name: "head", method: http.MethodHead, path: "/mcp/up",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "42")
				w.Header().Set("Content-Type", "application/json")
			},
		},
		{
			name: "a body too big for the tap's own connections", method: http.MethodPost, path: "/mcp/up", body: big,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":9,"result":{}}`)
			},
		},
		{
			name: "a chunked request body", method: http.MethodPost, path: "/mcp/up", chunked: true,
			body:    `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			respond: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) },
		},
		{
			name: "an error in plain text", method: http.MethodPost, path: "/mcp/up",
			body: `{"jsonrpc":"2.0","id":3,"method":"ping"}`,
			respond: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "Bad Request: unsupported protocol version", http.StatusBadRequest)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []seenRequest
			up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				require.NoError(t, err)
				h := r.Header.Clone()
				if tt.chunked {
					h.Del("Content-Length") // framing is the hop's own business
				}
				mu.Lock()
				seen = append(seen, seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: h, Body: string(body), Trailer: r.Trailer})
				mu.Unlock()
				tt.respond(w, r)
			}))
			cfg := Config{Upstreams: []Upstream{{Name: "up", URL: up.URL + "/base?k=v"}}}
			own, _, ownURL := startTap(t, cfg)
			require.NotNil(t, own.routes["up"].h1, "a plain-HTTP upstream is reached on the tap's own connections")
			viaTransport, _, transportURL := startTap(t, cfg)
			viaTransport.routes["up"].h1 = nil
			old, _, _ := startTap(t, cfg)
			oldSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				route, suffix, ok := old.route(r.URL.Path)
				require.True(t, ok)
				ex := old.newExchange(r, route, suffix)
				defer ex.finish()
				if r.Method == http.MethodPost {
					if body, held := ex.observeRequest(r); held {
						r.Body = io.NopCloser(bytes.NewReader(body))
					}
				}
				old.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
			}))
			defer oldSrv.Close()

			var got []seenResponse
			for _, base := range []string{oldSrv.URL, ownURL, transportURL} {
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // no length known
				}
				req, err := http.NewRequest(tt.method, base+tt.path, body)
				require.NoError(t, err)
				for k, v := range tt.hdr {
					req.Header[k] = v
				}
				var sr seenResponse
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
						sr.Informational = append(sr.Informational, code)
						return nil
					},
				}))
				resp, err := httpClient(t).Do(req)
				require.NoError(t, err)
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				resp.Header.Del("Date")
				if tt.framed {
					resp.Header.Del("Content-Length") // framing is the hop's own business
				}
				sr.Status, sr.Header, sr.Body, sr.Trailer = resp.StatusCode, resp.Header, string(b), resp.Trailer
				got = append(got, sr)
			}

			mu.Lock()
			defer mu.Unlock()
			require.Len(t, seen, 3)
			require.Equal(t, seen[0], seen[1], "upstream's view: ReverseProxy vs the tap's own connections")
			require.Equal(t, seen[0], seen[2], "upstream's view: ReverseProxy vs http.Transport")
			require.Equal(t, got[0], got[1], "client's view: ReverseProxy vs the tap's own connections")
			require.Equal(t, got[0], got[2], "client's view: ReverseProxy vs http.Transport")

			// And what both show is what the tap promises.
			require.Equal(t, strings.TrimPrefix(up.URL, "http://"), seen[0].Host)
			require.Empty(t, seen[0].Header.Get("Accept-Encoding"))
			require.NotContains(t, seen[0].Header, "X-Hop")
			require.NotContains(t, seen[0].Header, "Proxy-Authorization")
			require.Equal(t, tt.hdr["X-Forwarded-For"], seen[0].Header["X-Forwarded-For"])
			if ua, ok := tt.hdr["User-Agent"]; ok {
				require.Equal(t, ua[0], seen[0].Header.Get("User-Agent"), "no User-Agent is added")
			}
			require.Equal(t, tt.body, seen[0].Body)
		})
	}
}

// rawUpstream is an upstream speaking HTTP by hand, for what net/http would not send; serve
// gets each connection and its number, from 0.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c), n)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// readRequest reads one request and its body from an upstream's connection.
func readRequest(t *testing.T, br *bufio.Reader) *http.Request {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil
	}
	_, err = io.Copy(io.Discard, r.Body)
	require.NoError(t, err)
	return r
}

// TestReusedConnectionTheUpstreamDropped: when the upstream drops a kept-alive connection
// without answering the request sent on it, the tap sends the request again on a new
// connection when http.Transport would (a GET, which can have done nothing twice), and
// answers 502 otherwise (a POST, which the upstream may have acted on).
func TestReusedConnectionTheUpstreamDropped(t *testing.T) {
	const answer = `{"jsonrpc":"2.0","id":1,"result":{}}`
	ok := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
	tests := []struct {
		method     string
		wantStatus int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodPost, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader, n int) {
				for i := 0; ; i++ {
					r := readRequest(t, br)
					if r == nil {
						return
					}
					mu.Lock()
					got = append(got, fmt.Sprintf("conn %d: %s", n, r.Method))
					mu.Unlock()
					if n == 0 && i == 1 {
						return // the second request on the first connection: dropped unanswered
					}
					_, _ = io.WriteString(c, ok)
				}
			})
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "raw", URL: upURL}}})

			body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
			if tt.method == http.MethodGet {
				body = ""
			}
			resp := send(t, tt.method, tapURL+"/mcp", body, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, answer, readAll(t, resp.Body))
			resp = send(t, tt.method, tapURL+"/mcp", body, nil)
			require.Equal(t, tt.wantStatus, resp.StatusCode)

			mu.Lock()
			defer mu.Unlock()
			if tt.wantStatus == http.StatusOK {
				require.Equal(t, answer, readAll(t, resp.Body))
				require.Equal(t, []string{"conn 0: GET", "conn 0: GET", "conn 1: GET"}, got)
				return
			}
			require.Equal(t, []string{"conn 0: POST", "conn 0: POST"}, got, "a POST is never sent twice")
			pings := rec.matching(byMethod("ping"))
			require.Eventually(t, func() bool { pings = rec.matching(byMethod("ping")); return len(pings) == 2 }, 5*time.Second, 5*time.Millisecond)
			outcomes := []string{fmt.Sprint(pings[0].Status, pings[0].ErrorCode), fmt.Sprint(pings[1].Status, pings[1].ErrorCode)}
			slices.Sort(outcomes)
			require.Equal(t, []string{"error502", "ok0"}, outcomes)
		})
	}
}

// TestOwnConnectionsAreKeptAndChecked: calls share one kept-alive connection; one the upstream
// closed while idle, or that idled too long, is not used; Shutdown closes what is left.
func TestOwnConnectionsAreKeptAndChecked(t *testing.T) {
	var mu sync.Mutex
	states := map[http.ConnState]int{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		states[s]++
		mu.Unlock()
	}
	up.Start()
	defer up.Close()
	count := func(s http.ConnState) int {
		mu.Lock()
		defer mu.Unlock()
		return states[s]
	}
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})
	pool := tap.routes["s"].h1
	call := func() {
		resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, `{"jsonrpc":"2.0","id":1,"result":{}}`, readAll(t, resp.Body))
	}

	for range 5 {
		call()
	}
	require.Equal(t, 1, count(http.StateNew), "five calls, one connection")
	require.Equal(t, 1, pool.idleLen())

	// The upstream closes it: the tap notices before sending on it.
	up.CloseClientConnections()
	require.Eventually(t, func() bool {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		return !connUsable(pool.idle[0].Conn)
	}, 5*time.Second, time.Millisecond)
	call()
	require.Equal(t, 2, count(http.StateNew))

	// One idle for longer than h1IdleTimeout is closed and replaced.
	pool.mu.Lock()
	pool.idle[0].idleAt = time.Now().Add(-h1IdleTimeout)
	pool.mu.Unlock()
	call()
	require.Equal(t, 3, count(http.StateNew))
	require.Eventually(t, func() bool { return count(http.StateClosed) == 2 }, 5*time.Second, time.Millisecond)

	require.Eventually(t, func() bool { return len(rec.matching(byMethod("ping"))) == 7 }, 5*time.Second, 5*time.Millisecond)
	for _, ev := range rec.all() {
		require.Equal(t, schemas.StatusOK, ev.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, tap.Shutdown(ctx))
	require.Zero(t, pool.idleLen())
	require.Eventually(t, func() bool { return count(http.StateClosed) == 3 }, 5*time.Second, time.Millisecond)
}

// TestStreamBytesNeverWaitForTheUpstream: whatever of a stream the tap has read reaches the
// client before the tap waits for more, however the upstream cut it into packets: headers
// alone, an event followed by half of the next chunk's framing.
func TestStreamBytesNeverWaitForTheUpstream(t *testing.T) {
	const event = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"
	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader, n int) {
		if readRequest(t, br) == nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		<-release
		_, _ = fmt.Fprintf(c, "%x\r\n%s\r\n%x", len(event), event, len(event)) // and half a chunk header
		<-release
	})
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "raw", URL: upURL}}})

	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the headers came while the upstream held the stream")
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	release <- struct{}{}
	got := make([]byte, len(event))
	_, err := io.ReadFull(resp.Body, got)
	require.NoError(t, err)
	require.Equal(t, event, string(got), "the event came while the upstream held the rest")
	ev := rec.waitFor(t, "tools/call", byMethod("tools/call"))
	require.Equal(t, schemas.StatusOK, ev.Status)
	close(release)
	released = true
	_, _ = io.Copy(io.Discard, resp.Body) // the upstream left mid-chunk: the client's stream is cut
}

// TestResponseHeadersAreBounded: an upstream that never ends its headers gets a 502 once they
// pass 10 MiB (http.Transport's bound), rather than all of the tap's memory.
func TestResponseHeadersAreBounded(t *testing.T) {
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader, n int) {
		if readRequest(t, br) == nil {
			return
		}
		line := "X-Filler: " + strings.Repeat("f", 1000) + "\r\n"
		w := bufio.NewWriter(c)
		_, _ = w.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; i <= h1MaxHeaderBytes/len(line)+1; i++ {
			if _, err := w.WriteString(line); err != nil {
				return
			}
		}
		_ = w.Flush()
	})
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "raw", URL: upURL}}})
	resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	ev := rec.waitFor(t, "ping", byMethod("ping"))
	require.Equal(t, http.StatusBadGateway, ev.ErrorCode)
	require.Equal(t, 1.0, counterValue(t, tap.metrics.upstreamErrors.WithLabelValues("raw")))
}

func TestCleanQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"b=2&a=%41", "b=2&a=%41"},
		{"a=1;b=2", ""},
		{"a=1&c=%zz", "a=1"},
		{"a=%4", ""},
		{"x=1&y=2;z", "x=1"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, cleanQuery(tt.in), tt.in)
	}
}

// TestProtocolUpgradesPassThrough: a request to switch protocols (not MCP, but a tap is
// transparent) is passed on, and the bytes flow both ways after the 101.
func TestProtocolUpgradesPassThrough(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, err := brw.ReadString('\n')
		if err == nil {
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		}
	}))
	_, _, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: up.URL}}})

	c, err := net.Dial("tcp", strings.TrimPrefix(tapURL, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /mcp HTTP/1.1\r\nHost: tap\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, "echo", resp.Header.Get("Upgrade"))
	_, err = io.WriteString(c, "hello\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "echo: hello\n", line)
}
