package httptap

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// blockedEmitter is a bus that takes nothing until released.
type blockedEmitter struct {
	release chan struct{}
	mu      sync.Mutex
	got     []schemas.Event
}

func (b *blockedEmitter) Emit(e schemas.Event) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, e)
}

func (b *blockedEmitter) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

// TestStalledBusNeverBlocksACall: with a bus that accepts nothing, calls through the tap still
// complete; the events follow once the bus takes them again, none lost.
func TestStalledBusNeverBlocksACall(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{})
	em := &blockedEmitter{release: make(chan struct{})}
	tap, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []Upstream{{Name: "s", URL: up.URL}}}, em, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))

	cs, _ := connect(t, "http://"+tap.Addr()+"/mcp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}})
		require.NoError(t, err, "a call must not wait for the bus")
	}
	require.NoError(t, cs.Close())
	require.Zero(t, em.count(), "the bus took nothing yet")

	close(em.release)
	// Generous: on a loaded CI machine under -race the drain once took over 5 s. A hang still fails.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	require.NoError(t, tap.Shutdown(sctx))
	// initialize, notifications/initialized and 20 calls at least, all handed over.
	require.GreaterOrEqual(t, em.count(), 22)
	require.Zero(t, counterValue(t, tap.metrics.inlineEvents), "the emit queue had room for them all")
}

// TestFullEmitQueueBuildsEventsInline: once emitQueueLen events wait for a stalled emit
// goroutine, the next one is built on its call's goroutine (slower, never lost), and counted.
func TestFullEmitQueueBuildsEventsInline(t *testing.T) {
	tap, _, _ := startTap(t, Config{Upstreams: []Upstream{{Name: "s", URL: "http://127.0.0.1:1/mcp"}}})
	q := &tap.emitQ
	stall := make(chan struct{})
	q.run(func(bool) { <-stall })
	require.Eventually(t, func() bool { // the emit goroutine took that job, and is stuck in it
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.jobs) == 0
	}, 10*time.Second, time.Millisecond)
	for range emitQueueLen {
		q.run(func(bool) {})
	}
	require.Zero(t, counterValue(t, tap.metrics.inlineEvents))
	ranInline := false
	q.run(func(now bool) { ranInline = now })
	require.True(t, ranInline, "built on the caller's goroutine, and told not to wait")
	require.Equal(t, 1.0, counterValue(t, tap.metrics.inlineEvents))
	close(stall)
}

// nowEmitter's Emit waits until release, as a spool's would for a disk that does not keep up;
// EmitNow (pipeline.NowEmitter) never waits.
type nowEmitter struct {
	release chan struct{}
	mu      sync.Mutex
	emitted int
	now     int
}

func (e *nowEmitter) Emit(schemas.Event) {
	<-e.release
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitted++
}

func (e *nowEmitter) EmitNow(schemas.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now++
}

// TestStalledEmitterNeverHoldsAStream: with the emit goroutine stuck in the emitter, a stream
// of far more events than the queue holds still reaches the client whole, the events beyond
// the queue going to the emitter without waiting (EmitNow).
func TestStalledEmitterNeverHoldsAStream(t *testing.T) {
	const notes = 3 * emitQueueLen
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range notes {
			_, _ = fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":%d}}\n\n", i)
		}
		_, _ = io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
	}))
	em := &nowEmitter{release: make(chan struct{})}
	tap, err := New(Config{Listen: "127.0.0.1:0", CollectorID: "t", Upstreams: []Upstream{{Name: "s", URL: up.URL}}}, em, testSettings(t))
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))
	released := false
	defer func() {
		if !released {
			close(em.release)
		}
	}()

	resp := send(t, http.MethodPost, "http://"+tap.Addr()+"/mcp",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"long","_meta":{"progressToken":1}}}`, nil)
	body := readAll(t, resp.Body) // would hang if a call's goroutine waited for the emitter
	require.Equal(t, notes+1, strings.Count(body, "data: "))
	em.mu.Lock()
	require.Positive(t, em.now, "events beyond the queue went to the emitter without waiting")
	em.mu.Unlock()
	require.Positive(t, counterValue(t, tap.metrics.inlineEvents))

	close(em.release)
	released = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, tap.Shutdown(ctx))
	em.mu.Lock()
	defer em.mu.Unlock()
	require.Equal(t, notes+1, em.emitted+em.now, "every event handed over: the call and its progress")
}

// TestAbsentBusNeverBlocksACall runs the tap with the real spooled bus emitter and no broker:
// calls complete, and every event waits in the spool; none is dropped.
func TestAbsentBusNeverBlocksACall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadBroker := ln.Addr().String()
	require.NoError(t, ln.Close())

	reg := prometheus.NewRegistry()
	set := pipeline.Settings{Logger: testSettings(t).Logger, Registry: reg}
	em, err := bus.NewSpooledEventEmitter([]string{deadBroker}, bus.Config{BatchTimeout: 5 * time.Millisecond},
		bus.SpoolConfig{Dir: t.TempDir()}, set)
	require.NoError(t, err)
	require.NoError(t, em.Start(context.Background()))

	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{})
	tap, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []Upstream{{Name: "s", URL: up.URL}}}, em, set)
	require.NoError(t, err)
	require.NoError(t, tap.Start(context.Background()))
	cs, _ := connect(t, "http://"+tap.Addr()+"/mcp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}})
		require.NoError(t, err)
	}
	require.NoError(t, cs.Close())

	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	require.NoError(t, tap.Shutdown(sctx))
	require.GreaterOrEqual(t, em.Queued(), 22, "the events wait in the spool")
	require.Zero(t, metricValue(t, reg, "mcpwatch_collector_events_dropped_total"))
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer shutCancel()
	_ = em.Shutdown(shutCtx) // no broker: what is spooled stays for the next run
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestMemoryPerStreamIsBounded streams a 64 MiB message through a tap that parses at most
// 1 MiB: the client gets every byte, the tap records an unparsed event with the size, and what
// the process allocated meanwhile stays far below the message's size.
func TestMemoryPerStreamIsBounded(t *testing.T) {
	const size, limit = 64 << 20, 1 << 20
	chunk := strings.Repeat("x", 32<<10)
	for _, tt := range []struct {
		name, contentType, head, tail string
	}{
		{name: "one SSE event", contentType: "text/event-stream", head: "event: message\ndata: ", tail: "\n\n"},
		{name: "JSON body", contentType: "application/json", head: `{"jsonrpc":"2.0","id":1,"result":{"blob":"`, tail: `"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, tt.head)
				for n := 0; n < size; n += len(chunk) {
					_, _ = io.WriteString(w, chunk)
				}
				_, _ = io.WriteString(w, tt.tail)
			}))
			_, rec, tapURL := startTap(t, Config{MaxMessageBytes: limit, Upstreams: []Upstream{{Name: "s", URL: up.URL}}})

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp := send(t, http.MethodPost, tapURL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big"}}`, nil)
			n, err := io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			runtime.ReadMemStats(&after)
			require.Equal(t, int64(len(tt.head)+size+len(tt.tail)), n, "every byte reaches the client")
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20),
				"allocated while %d MiB went through", size>>20)

			ev := rec.waitFor(t, "unparsed", func(e schemas.Event) bool { return e.Kind == schemas.KindUnparsed })
			require.Equal(t, schemas.StatusMalformed, ev.Status)
			require.GreaterOrEqual(t, ev.ResponseBytes, size)
			call := rec.waitFor(t, "the call", byMethod("tools/call"))
			require.Equal(t, schemas.StatusMalformed, call.Status, "its response could not be read, which is no timeout")
			require.Equal(t, ev.ResponseBytes, call.ResponseBytes)
		})
	}
}

// A request listed after a later deadline (its body took long to arrive) still expires at its
// own deadline, not behind the later one.
func TestDeadlinesExpireInTheirOrder(t *testing.T) {
	var d deadlineList
	defer d.stop()
	expired := make(chan string, 3)
	now := time.Now()
	for _, r := range []struct {
		name string
		at   time.Time
	}{{"late", now.Add(time.Hour)}, {"early", now.Add(10 * time.Millisecond)}, {"later", now.Add(2 * time.Hour)}} {
		d.add(nil, &call{}, r.at, func() { expired <- r.name })
	}
	select {
	case name := <-expired:
		require.Equal(t, "early", name)
	case <-time.After(10 * time.Second):
		t.Fatal("the early deadline waited behind the later ones")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var order []time.Time
	for c := d.head; c != nil; c = c.track.next {
		order = append(order, c.track.deadline)
	}
	require.Equal(t, []time.Time{now.Add(time.Hour), now.Add(2 * time.Hour)}, order)
	require.Equal(t, now.Add(2*time.Hour), d.tail.track.deadline)
}

// TestRequestsTheTapCannotPair: a request reusing the id of an unanswered one, or sent over
// the limit of pending requests, reaches the server (which may run it) and is recorded at
// once, malformed and flagged; the request whose id was reused is flagged too, since which
// answer is whose cannot be told.
func TestRequestsTheTapCannotPair(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		require.Contains(t, string(body), "delete_everything", "the server gets every request")
		writeSSE(w, http.StatusOK,
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[]}}\n\n")
	}))
	_, rec, tapURL := startTap(t, Config{MaxPending: 1, Upstreams: []Upstream{{Name: "ts", URL: up.URL}}})
	resp := send(t, http.MethodPost, tapURL+"/mcp", `[`+
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"harmless"}},`+
		`{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"delete_everything"}},`+
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"over_the_limit"}}]`, nil)
	require.Equal(t, 3, strings.Count(readAll(t, resp.Body), `"result"`), "the client gets every answer")

	flagged := func(ev schemas.Event, want string) {
		t.Helper()
		require.Len(t, ev.Flags, 1, ev.Target)
		require.Equal(t, want, ev.Flags[0].Type, ev.Target)
		require.Equal(t, schemas.SeverityHigh, ev.Flags[0].Severity)
	}
	hidden := rec.waitFor(t, "delete_everything", func(e schemas.Event) bool { return e.Target == "delete_everything" })
	require.Equal(t, schemas.StatusMalformed, hidden.Status)
	require.Equal(t, "1", hidden.JSONRPCID)
	flagged(hidden, jsonrpc.FlagDuplicateID)
	harmless := rec.waitFor(t, "harmless", func(e schemas.Event) bool { return e.Target == "harmless" })
	require.Equal(t, schemas.StatusOK, harmless.Status)
	flagged(harmless, jsonrpc.FlagDuplicateID)
	over := rec.waitFor(t, "over_the_limit", func(e schemas.Event) bool { return e.Target == "over_the_limit" })
	require.Equal(t, schemas.StatusMalformed, over.Status)
	flagged(over, jsonrpc.FlagUntrackedRequest)
}
