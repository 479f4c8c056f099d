package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is an emitter that keeps what it got and refuses events while full is set.
type recorder struct {
	mu     sync.Mutex
	events []schemas.Event
	full   bool
}

func (r *recorder) Emit(ev schemas.Event) { _ = r.TryEmit(ev) }

func (r *recorder) TryEmit(ev schemas.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return errors.New("full")
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) got() []schemas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]schemas.Event(nil), r.events...)
}

func (r *recorder) ids() []string {
	var out []string
	for _, ev := range r.got() {
		out = append(out, ev.ID)
	}
	return out
}

func validEvent(i int) schemas.Event {
	return schemas.Event{
		ID:            uuid.Must(uuid.NewV7()).String(),
		SchemaVersion: schemas.EventSchemaVersion,
		ObservedAt:    time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC),
		CollectorID:   "stdiotap@test",
		Source:        schemas.SourceStdioTap,
		Transport:     "stdio",
		AgentID:       "agent",
		AgentSource:   "client_info",
		ServerID:      "server",
		Direction:     schemas.ClientToServer,
		Kind:          schemas.KindRequest,
		Method:        "tools/call",
		Target:        fmt.Sprintf("tool-%d", i),
		Status:        schemas.StatusOK,
	}
}

func line(t *testing.T, ev schemas.Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return string(b)
}

func TestHandler(t *testing.T) {
	ev1, ev2 := validEvent(1), validEvent(2)
	noStatus := strings.Replace(line(t, validEvent(3)), `"status":"ok",`, "", 1)
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		auth        string
		body        string
		full        bool
		wantCode    int
		wantIDs     []string
		wantBody    []string
	}{
		{name: "batch accepted", body: line(t, ev1) + "\n\n" + line(t, ev2) + "\n", wantCode: 200,
			wantIDs: []string{ev1.ID, ev2.ID}, wantBody: []string{`"accepted":2`}},
		{name: "last line without newline", body: line(t, ev1) + "\n" + line(t, ev2), wantCode: 200,
			wantIDs: []string{ev1.ID, ev2.ID}},
		{name: "empty body", body: "", wantCode: 200, wantBody: []string{`"accepted":0`}},
		{name: "bad lines reject the batch", body: line(t, ev1) + "\nnot json\n" + noStatus + "\n", wantCode: 400,
			wantBody: []string{`"line":2`, `"line":3`, `not a JSON document`, `status`, `nothing was accepted`}},
		{name: "unknown field", body: `{"event_id":"x","bogus":1}`, wantCode: 400, wantBody: []string{`"line":1`}},
		{name: "GET", method: http.MethodGet, wantCode: 405},
		{name: "text/plain (a browser's cross-origin simple request)", contentType: "text/plain", body: line(t, ev1), wantCode: 415},
		{name: "wrong token", auth: "Bearer nope", body: line(t, ev1), wantCode: 401},
		{name: "no token", auth: "-", body: line(t, ev1), wantCode: 401},
		{name: "too large", body: line(t, ev1) + "\n" + strings.Repeat(" ", 70<<10), wantCode: 413},
		{name: "one line too large", body: `{"x":"` + strings.Repeat("x", 70<<10) + `"}` + "\n" + line(t, ev1), wantCode: 413},
		{name: "emitter full", full: true, body: line(t, ev1), wantCode: 503, wantBody: []string{`"accepted":0`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{full: tc.full}
			h, err := New(Config{Token: "s3cret", MaxBodyBytes: 64 << 10}, rec, pipeline.Settings{})
			require.NoError(t, err)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, Path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-ndjson")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			switch tc.auth {
			case "":
				req.Header.Set("Authorization", "Bearer s3cret")
			case "-":
			default:
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			require.Equal(t, tc.wantCode, w.Code, w.Body.String())
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			for _, s := range tc.wantBody {
				require.Contains(t, w.Body.String(), s)
			}
			require.Equal(t, tc.wantIDs, rec.ids())
			if tc.wantCode == 503 {
				require.Equal(t, "1", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestHandlerWithoutToken(t *testing.T) {
	rec := &recorder{}
	h, err := New(Config{}, rec, pipeline.Settings{})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(line(t, validEvent(1))))
	req.Header.Set("Content-Type", "application/x-ndjson; charset=utf-8")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 200, w.Code)
	require.Len(t, rec.got(), 1)
	require.Equal(t, validEvent(1).Target, rec.got()[0].Target)

	_, err = New(Config{MaxBodyBytes: -1}, rec, pipeline.Settings{})
	require.ErrorContains(t, err, "collector.ingest.max_body_bytes")
	_, err = New(Config{}, nil, pipeline.Settings{})
	require.Error(t, err)
}

func TestServerLifecycle(t *testing.T) {
	rec := &recorder{}
	h, err := New(Config{}, rec, pipeline.Settings{})
	require.NoError(t, err)
	s := NewServer("127.0.0.1:0", h, pipeline.Settings{})
	require.NoError(t, s.Shutdown(context.Background()), "Shutdown without Start")

	s = NewServer("127.0.0.1:0", h, pipeline.Settings{})
	ctx := context.Background()
	require.NoError(t, s.Start(ctx))
	require.Error(t, s.Start(ctx))
	res, err := http.Post("http://"+s.Addr()+Path, "application/x-ndjson", strings.NewReader(line(t, validEvent(1))))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	res, err = http.Get("http://" + s.Addr() + "/mcp")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 404, res.StatusCode, "only the ingest endpoint is served")
	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, s.Shutdown(ctx))
	require.Len(t, rec.got(), 1)
	http.DefaultClient.CloseIdleConnections()
}

// ingestServer is an httptest server with the real handler on a fixed address, so it can be
// stopped and started again where a client expects it.
type ingestServer struct {
	rec   *recorder
	h     *Handler
	addr  string
	srv   *httptest.Server
	delay time.Duration // before each answer, as an mcpwatch under load
}

func newIngestServer(t *testing.T, token string) *ingestServer {
	t.Helper()
	return newIngestServerWith(t, Config{Token: token})
}

func newIngestServerWith(t *testing.T, cfg Config) *ingestServer {
	t.Helper()
	rec := &recorder{}
	h, err := New(cfg, rec, pipeline.Settings{})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return &ingestServer{rec: rec, h: h, addr: addr}
}

func (s *ingestServer) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", s.addr)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(s.delay)
		s.h.ServeHTTP(w, r)
	}))
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener = l
	s.srv.Start()
	t.Cleanup(s.srv.Close)
}

func (s *ingestServer) url() string { return "http://" + s.addr }

func newClient(t *testing.T, url, spoolDir, token string) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{URL: url, SpoolDir: spoolDir, Token: token, Timeout: 2 * time.Second}, pipeline.Settings{})
	require.NoError(t, err)
	return c
}

func TestClientDelivers(t *testing.T) {
	srv := newIngestServer(t, "tok")
	srv.start(t)
	root := t.TempDir()
	c := newClient(t, srv.url(), root, "tok")
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	var want []string
	for i := range 50 {
		ev := validEvent(i)
		want = append(want, ev.ID)
		c.Emit(ev)
	}
	require.Eventually(t, func() bool { return len(srv.rec.got()) == 50 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.NoError(t, c.Shutdown(ctx))
	require.Equal(t, want, srv.rec.ids())
	require.EqualValues(t, 50, c.Sent())
	require.Zero(t, c.Dropped())
	require.NoDirExists(t, c.SpoolDir(), "an empty spool is removed at exit")
}

func TestClientSpoolsWhileMcpwatchIsDown(t *testing.T) {
	srv := newIngestServer(t, "")
	root := t.TempDir()
	c := newClient(t, srv.url(), root, "")
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	var want []string
	for i := range 30 {
		ev := validEvent(i)
		want = append(want, ev.ID)
		c.Emit(ev)
	}
	time.Sleep(300 * time.Millisecond) // posts fail meanwhile
	require.Equal(t, 30, c.Pending())
	srv.start(t)
	require.Eventually(t, func() bool { return len(srv.rec.got()) == 30 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.Equal(t, want, srv.rec.ids())
	require.Zero(t, c.Dropped())
}

// leaveBehind runs a client for the whole of which mcpwatch (url) is down: the n events it
// was given stay in its spool under root. It returns their ids.
func leaveBehind(t *testing.T, url, root string, n int) []string {
	t.Helper()
	ctx := context.Background()
	first := newClient(t, url, root, "")
	require.NoError(t, first.Start(ctx))
	var ids []string
	for i := range n {
		ev := validEvent(i)
		ids = append(ids, ev.ID)
		first.Emit(ev)
	}
	shutdownCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	require.NoError(t, first.Shutdown(shutdownCtx))
	require.DirExists(t, first.SpoolDir(), "undelivered events stay on disk")
	require.Zero(t, first.Dropped())
	return ids
}

func TestClientLeavesEventsForTheNextProcess(t *testing.T) {
	srv := newIngestServer(t, "")
	root := t.TempDir()
	ctx := context.Background()
	want := leaveBehind(t, srv.url(), root, 20)

	// A later process finds them and sends them.
	srv.start(t)
	second := newClient(t, srv.url(), root, "")
	require.NoError(t, second.Start(ctx))
	require.Eventually(t, func() bool { return len(srv.rec.got()) == 20 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return second.adoptedDirs.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, second.Shutdown(ctx))
	require.Equal(t, want, srv.rec.ids())
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "both spools are gone")
}

// TestClientSendsLeftBehindEventsBeforeExit: a process that ends at once (a wrap whose client
// only listed tools) still sends the events an earlier one left, within its Shutdown's time.
func TestClientSendsLeftBehindEventsBeforeExit(t *testing.T) {
	srv := newIngestServer(t, "")
	root := t.TempDir()
	ctx := context.Background()
	want := leaveBehind(t, srv.url(), root, 20)

	srv.delay = 300 * time.Millisecond
	srv.start(t)
	second := newClient(t, srv.url(), root, "")
	require.NoError(t, second.Start(ctx))
	shutdownCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, second.Shutdown(shutdownCtx))
	require.Equal(t, want, srv.rec.ids(), "sent before Shutdown returned")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "both spools are gone")
}

// TestClientDropsOnlyLinesMcpwatchRejects: invalid events are dropped, the valid ones of the
// same batch delivered, also when there are more invalid ones than an answer lists (100).
func TestClientDropsOnlyLinesMcpwatchRejects(t *testing.T) {
	srv := newIngestServer(t, "")
	srv.start(t)
	c := newClient(t, srv.url(), t.TempDir(), "")
	ctx := context.Background()
	const invalid = 250
	var want []string
	// Queue them all before the delivery loop runs, so they travel in one request. (Each Emit
	// waits for the write loop, which has not started: they wait together.)
	var emits sync.WaitGroup
	for i := range invalid + 3 {
		ev := validEvent(i)
		if i%100 == 0 {
			want = append(want, ev.ID)
		} else {
			ev.Status = "sideways" // not in the schema's enum
		}
		emits.Go(func() { c.Emit(ev) })
	}
	require.Len(t, want, 3)
	require.Eventually(t, func() bool { return c.queue.Len() == invalid+3 }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Start(ctx))
	emits.Wait()
	require.Eventually(t, func() bool { return c.Dropped() == invalid }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return len(srv.rec.got()) == len(want) }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.ElementsMatch(t, want, srv.rec.ids())
}

func TestClientKeepsEventsWhenTheTokenIsWrong(t *testing.T) {
	srv := newIngestServer(t, "right")
	srv.start(t)
	root := t.TempDir()
	c := newClient(t, srv.url(), root, "wrong")
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	c.Emit(validEvent(1))
	time.Sleep(300 * time.Millisecond)
	shutdownCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.NoError(t, c.Shutdown(shutdownCtx))
	require.Zero(t, c.Dropped(), "a refused token is not a reason to drop events")
	require.Empty(t, srv.rec.got())

	c2 := newClient(t, srv.url(), root, "right")
	require.NoError(t, c2.Start(ctx))
	require.Eventually(t, func() bool { return len(srv.rec.got()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, c2.Shutdown(ctx))
}

func TestClientConfig(t *testing.T) {
	require.ErrorContains(t, ClientConfig{}.Validate(), "--spool-dir")
	require.ErrorContains(t, ClientConfig{URL: "127.0.0.1:7400", SpoolDir: "d"}.Validate(), "--mcpwatch")
	require.NoError(t, ClientConfig{SpoolDir: "d"}.Validate())
	for in, want := range map[string]string{
		"http://127.0.0.1:7400":         "http://127.0.0.1:7400" + Path,
		"http://127.0.0.1:7400/":        "http://127.0.0.1:7400" + Path,
		"https://mcpwatch.example/x/in": "https://mcpwatch.example/x/in",
	} {
		require.Equal(t, want, ClientConfig{URL: in}.endpoint())
	}
	require.Equal(t, DefaultURL+Path, ClientConfig{}.withDefaults().endpoint())
}

// TestClientsStartedTogether: wraps an MCP client starts at once share the spool directory, and
// one's adoption of left-behind spools never takes or removes another's fresh one: every client
// gets its spool and every event arrives.
func TestClientsStartedTogether(t *testing.T) {
	srv := newIngestServer(t, "")
	srv.start(t)
	root := t.TempDir()
	ctx := context.Background()
	const clients, rounds = 8, 25
	var want []string
	for range rounds {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for i := range clients {
			ev := validEvent(i)
			want = append(want, ev.ID)
			wg.Go(func() {
				c, err := NewClient(ClientConfig{URL: srv.url(), SpoolDir: root, Timeout: 2 * time.Second}, pipeline.Settings{})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				_ = c.Start(ctx)
				c.Emit(ev)
				shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if err := c.Shutdown(shutdownCtx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Empty(t, errs, "every client has its own spool, and removes it")
	}
	require.ElementsMatch(t, want, srv.rec.ids(), "every client's event arrived, once")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "every spool is gone")
}

// TestClientSplitsBatchesTooLargeForMcpwatch: with collector.ingest.max_body_bytes below the
// client's batches, mcpwatch answers 413 and the client sends smaller requests: every event
// arrives, in order. Only an event larger than the limit on its own is dropped, counted, and
// logged without its content.
func TestClientSplitsBatchesTooLargeForMcpwatch(t *testing.T) {
	srv := newIngestServerWith(t, Config{MaxBodyBytes: 4 << 10})
	var logs bytes.Buffer // slog's handler serializes its writes; read after Shutdown
	set := pipeline.Settings{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	c, err := NewClient(ClientConfig{URL: srv.url(), SpoolDir: t.TempDir(), Timeout: 2 * time.Second}, set)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	var want []string
	for i := range 300 {
		ev := validEvent(i)
		if i == 150 {
			ev.Target = strings.Repeat("secret-", 1000) // 7 KB: alone above the limit
		} else {
			want = append(want, ev.ID)
		}
		c.Emit(ev)
	}
	require.Eventually(t, func() bool { return c.Pending() == 300 }, 10*time.Second, 5*time.Millisecond)
	srv.start(t) // mcpwatch comes up: the waiting events go in one batch of about 150 KB
	require.Eventually(t, func() bool { return c.Sent()+c.Dropped() == 300 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.Equal(t, want, srv.rec.ids(), "every event that fits arrived, in order, once")
	require.EqualValues(t, 299, c.Sent())
	require.EqualValues(t, 1, c.Dropped())
	require.Contains(t, logs.String(), "larger than its collector.ingest.max_body_bytes")
	require.NotContains(t, logs.String(), "secret-", "the dropped event's content is not logged")
}

// A 400 naming lines the batch does not have is taken as about all of it: the batch is
// dropped, not resent unchanged for ever.
func TestClientDropsABatchRejectedWithLinesItLacks(t *testing.T) {
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"accepted":0,"error":"invalid","lines":[{"line":999,"error":"invalid event v1"}]}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, t.TempDir(), "")
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	c.Emit(validEvent(1))
	c.Emit(validEvent(2))
	require.Eventually(t, func() bool { return c.Dropped() == 2 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, c.Shutdown(ctx))
	require.LessOrEqual(t, posts.Load(), int64(4), "no endless resending")
}
