package httptap

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// recordedExchange is one HTTP exchange of a capture in testdata/.
type recordedExchange struct {
	x          int
	method     string
	reqHeaders map[string]string
	reqBody    []byte
	status     int
	respHeader map[string]string
	sse        []string // raw SSE blocks, in order
	respBody   []byte
}

func loadCapture(t *testing.T, path string) []*recordedExchange {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	byX := map[int]*recordedExchange{}
	var order []*recordedExchange
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			X       int               `json:"x"`
			Kind    string            `json:"kind"`
			Method  string            `json:"method"`
			Headers map[string]string `json:"headers"`
			Body    json.RawMessage   `json:"body"`
			Status  int               `json:"status"`
			Raw     string            `json:"raw"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		ex := byX[l.X]
		switch l.Kind {
		case "http_request":
			ex = &recordedExchange{x: l.X, method: l.Method, reqHeaders: l.Headers, reqBody: l.Body}
			byX[l.X] = ex
			order = append(order, ex)
		case "http_response":
			ex.status, ex.respHeader = l.Status, l.Headers
		case "sse_event":
			ex.sse = append(ex.sse, l.Raw)
		case "http_response_body":
			if string(l.Body) != "null" {
				ex.respBody = l.Body
			}
		}
	}
	require.NoError(t, sc.Err())
	return order
}

// wire is what the upstream sends for the exchange.
func (e *recordedExchange) wire() string {
	if len(e.sse) > 0 {
		return strings.Join(e.sse, "\n\n") + "\n\n"
	}
	return string(e.respBody)
}

// TestReplayRecordedSessions replays real sessions (TS server-everything with the TS and Go
// clients, including sampling, roots, progress and priming events) through the tap, one
// exchange at a time, from an upstream that answers with the recorded bytes.
func TestReplayRecordedSessions(t *testing.T) {
	tests := []struct {
		file       string
		clientName string
		sessionID  string // the prefix of the server's session id; "" for a stitched one
		protocol   string
		want       []string // "direction kind method target status code", sorted
	}{
		{
			file:       "testdata/everything-streamablehttp-ts-client.jsonl",
			clientName: "tap-test-client",
			sessionID:  "d7422900-d652-44b4-adeb-02f2f05e35d1",
			protocol:   "2025-11-25",
			want: []string{
				"c2s notification notifications/initialized  ok 0",
				"c2s request initialize  ok 0",
				"c2s request ping  ok 0",
				"c2s request prompts/get simple-prompt ok 0",
				"c2s request prompts/list  ok 0",
				"c2s request resources/list  ok 0",
				"c2s request resources/read demo://resource/static/document/architecture.md ok 0",
				"c2s request tools/call echo ok 0",
				"c2s request tools/call get-sum ok 0",
				"c2s request tools/call no-such-tool tool_error 0",
				"c2s request tools/call no-such-tool tool_error 0",
				"c2s request tools/call trigger-long-running-operation ok 0",
				"c2s request tools/call trigger-sampling-request ok 0",
				"c2s request tools/list  ok 0",
				"s2c notification notifications/message  ok 0",
				"s2c notification notifications/progress trigger-long-running-operation ok 0",
				"s2c notification notifications/progress trigger-long-running-operation ok 0",
				"s2c notification notifications/progress trigger-long-running-operation ok 0",
				"s2c request roots/list  ok 0",
				"s2c request sampling/createMessage  ok 0",
			},
		},
		{
			file:       "testdata/everything-streamablehttp-gocli.jsonl",
			clientName: "gocli",
			sessionID:  "eabe9f92-",
			protocol:   "2025-11-25",
			want: []string{
				"c2s notification notifications/initialized  ok 0",
				"c2s request initialize  ok 0",
				"c2s request ping  ok 0",
				"c2s request prompts/list  ok 0",
				"c2s request resources/list  ok 0",
				"c2s request resources/read demo://resource/static/document/architecture.md ok 0",
				"c2s request server/discover  error -32000",
				"c2s request tools/call echo ok 0",
				"c2s request tools/call get-sum ok 0",
				"c2s request tools/call trigger-long-running-operation ok 0",
				"c2s request tools/list  ok 0",
				"s2c notification notifications/message  ok 0",
				"s2c notification notifications/progress trigger-long-running-operation ok 0",
				"s2c notification notifications/progress trigger-long-running-operation ok 0",
				"s2c notification notifications/progress trigger-long-running-operation ok 0",
				"s2c notification notifications/tools/list_changed  ok 0",
				"s2c notification notifications/tools/list_changed  ok 0",
				"s2c request roots/list  ok 0",
			},
		},
		{
			// The stateless revision: no initialize, no session id; the tap stitches one.
			file:       "testdata/gosrv-stateless-2026-07-28-gocli.jsonl",
			clientName: "gocli",
			protocol:   "2026-07-28",
			want: []string{
				"c2s request ping  error -32602", // the client sent it without _meta, which the server refused
				"c2s request prompts/list  ok 0",
				"c2s request resources/list  ok 0",
				"c2s request resources/read test://info ok 0",
				"c2s request server/discover  ok 0",
				"c2s request tools/call add ok 0",
				"c2s request tools/call echo ok 0",
				"c2s request tools/call slow ok 0",
				"c2s request tools/list  ok 0",
				"s2c notification notifications/progress slow ok 0",
				"s2c notification notifications/progress slow ok 0",
				"s2c notification notifications/progress slow ok 0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			exchanges := loadCapture(t, tt.file)
			var (
				mu      sync.Mutex
				current *recordedExchange
				gotBody []byte
				wire    wireLog
			)
			up := startUpstream(t, wire.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				ex := current
				gotBody = body
				mu.Unlock()
				for _, h := range []string{"content-type", "mcp-session-id"} {
					if v := ex.respHeader[h]; v != "" {
						w.Header().Set(h, v)
					}
				}
				w.WriteHeader(ex.status)
				if len(ex.sse) > 0 {
					for _, block := range ex.sse {
						_, _ = io.WriteString(w, block+"\n\n")
						w.(http.Flusher).Flush()
					}
					return
				}
				_, _ = w.Write(ex.respBody)
			})))
			tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "everything", URL: up.URL + "/mcp"}}})
			client := httpClient(t)

			for _, ex := range exchanges {
				mu.Lock()
				current = ex
				mu.Unlock()
				req, err := http.NewRequest(ex.method, tapURL+"/mcp", bytes.NewReader(ex.reqBody))
				require.NoError(t, err)
				for k, v := range ex.reqHeaders {
					switch k {
					case "host", "content-length", "connection", "accept-encoding":
					default:
						req.Header.Set(k, v)
					}
				}
				resp, err := client.Do(req)
				require.NoError(t, err)
				got := readAll(t, resp.Body)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, ex.status, resp.StatusCode, "exchange %d", ex.x)
				require.Equal(t, ex.wire(), got, "exchange %d: the client gets the upstream's bytes", ex.x)
				mu.Lock()
				require.Equal(t, string(ex.reqBody), string(gotBody), "exchange %d: the upstream gets the client's bytes", ex.x)
				mu.Unlock()
			}

			var summary []string
			require.Eventually(t, func() bool {
				summary = summary[:0]
				for _, e := range rec.all() {
					summary = append(summary, fmt.Sprintf("%s %s %s %s %s %d", e.Direction, e.Kind, e.Method, e.Target, e.Status, e.ErrorCode))
				}
				return len(summary) >= len(tt.want)
			}, 5*time.Second, 5*time.Millisecond)
			slices.Sort(summary)
			require.Equal(t, tt.want, summary)
			require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("unmatched_response")))
			require.Zero(t, tap.sessions.len(), "the DELETE ended the session")

			stitched := ""
			notificationSizes := map[string][]int{} // by direction and method
			for _, e := range rec.all() {
				require.Equal(t, "everything", e.ServerID)
				switch {
				case tt.sessionID != "" && e.Method == "server/discover":
					// Sent before the session existed, and refused with an HTTP 400 whose JSON-RPC
					// error has a null id.
					require.Equal(t, wire.size(t, true, true, e.JSONRPCID), e.RequestBytes)
					require.Equal(t, wire.size(t, false, false, ""), e.ResponseBytes)
					continue
				case tt.sessionID == "" && e.Method == "ping":
					continue // no _meta: nothing in it says whose it is
				case tt.sessionID == "":
					// One stitched session, progress on a call's stream included.
					if stitched == "" {
						stitched = e.SessionID
					}
					require.NotEmpty(t, e.SessionID, e.Method)
					require.Equal(t, stitched, e.SessionID, e.Method)
				default:
					require.True(t, strings.HasPrefix(e.SessionID, tt.sessionID), "%s: session %q", e.Method, e.SessionID)
				}
				require.Equal(t, tt.clientName, e.ClientName, e.Method)
				require.Equal(t, tt.protocol, e.ProtocolVersion, e.Method)
				if e.Kind == schemas.KindRequest {
					wire.requireSizes(t, e)
				} else {
					k := string(e.Direction) + " " + e.Method
					notificationSizes[k] = append(notificationSizes[k], e.RequestBytes)
				}
			}
			// Notifications of one method (progress) are told apart only as a whole.
			wireSizes := map[string][]int{}
			for _, m := range wire.messages() {
				if m.id == "" && m.method != "" {
					k := string(schemas.ServerToClient) + " " + m.method
					if m.fromClient {
						k = string(schemas.ClientToServer) + " " + m.method
					}
					wireSizes[k] = append(wireSizes[k], m.size)
				}
			}
			require.Len(t, notificationSizes, len(wireSizes), "%v", wireSizes)
			for k, sizes := range wireSizes {
				require.ElementsMatch(t, sizes, notificationSizes[k], k)
			}
		})
	}
}
