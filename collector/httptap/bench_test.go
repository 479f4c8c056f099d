package httptap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// The tap's benchmarks measure what the tap adds to an MCP call, side by side in one run:
// the same tools/call sent directly to the upstream, through the tap, and through a plain
// httputil.ReverseProxy (the floor for any HTTP proxy). Figures (scripts/bench.sh):
//
//   - BenchmarkTapLatency: sequential calls, the three targets interleaved in rounds; the
//     direct call's p50 and p99, and what the tap and the plain proxy add to them (the median
//     over rounds of each round's difference; see the benchmark for why).
//   - BenchmarkTapThroughput: calls/s at concurrency 32 for each target, the process CPU per
//     call, and the calls/s one core sustains for the tap's own work (CPU through the tap
//     minus CPU direct).
//
// Upstreams: "json" and "sse" are a lightweight server answering like a real MCP server (a
// session header, a JSON or an SSE response) so the figures are about the proxy; "gosdk" is
// the real go-sdk server. The client is a plain HTTP client posting the call.

// benchUpstream answers tools/call like an MCP server in the given response mode.
func benchUpstream(mode string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, err := jsonrpc.ParseMessage(body)
		if err != nil || !m.IsRequest() {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		resp := `{"jsonrpc":"2.0","id":` + m.IDString() + `,"result":{"content":[{"type":"text","text":"Echo: hello"}]}}`
		w.Header().Set("Mcp-Session-Id", "bench-session")
		if mode == "sse" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "event: message\ndata: "+resp+"\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, resp)
	})
}

// benchTarget is where a benchmark client sends its calls.
type benchTarget struct {
	name, url string
	client    *http.Client
	session   string
	nextID    atomic.Int64
}

func newBenchTarget(b *testing.B, name, url string) *benchTarget {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	b.Cleanup(tr.CloseIdleConnections)
	return &benchTarget{name: name, url: url, client: &http.Client{Transport: tr}}
}

func (bt *benchTarget) post(body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, bt.url, bytes.NewReader([]byte(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if bt.session != "" {
		req.Header.Set("Mcp-Session-Id", bt.session)
	}
	return bt.client.Do(req)
}

// initialize opens an MCP session, as a real server requires.
func (bt *benchTarget) initialize(b *testing.B) {
	resp, err := bt.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	bt.session = resp.Header.Get("Mcp-Session-Id")
	resp, err = bt.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// call sends one tools/call and reads the whole answer.
func (bt *benchTarget) call() error {
	id := bt.nextID.Add(1)
	resp, err := bt.post(`{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) +
		`,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}`)
	if err != nil {
		return fmt.Errorf("%s: %w", bt.name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", bt.name, err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte("Echo: hello")) {
		return fmt.Errorf("%s: unexpected answer %d %q", bt.name, resp.StatusCode, data)
	}
	return nil
}

// countingEmitter counts events and keeps nothing, like a bus that keeps up.
type countingEmitter struct{ n atomic.Int64 }

func (c *countingEmitter) Emit(schemas.Event) { c.n.Add(1) }

// benchTargets starts an upstream in mode, a tap and a plain reverse proxy in front of it,
// and returns the three targets: direct, tap, proxy.
func benchTargets(b *testing.B, mode string) ([]*benchTarget, *countingEmitter) {
	var handler http.Handler
	if mode == "gosdk" {
		srv := newMCPServer()
		handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		b.Cleanup(func() {
			for ss := range srv.Sessions() {
				_ = ss.Close()
			}
		})
	} else {
		handler = benchUpstream(mode)
	}
	up := httptest.NewServer(handler)
	b.Cleanup(up.Close)

	emitter := &countingEmitter{}
	tap, err := New(Config{Listen: "127.0.0.1:0", CollectorID: "bench", Upstreams: []Upstream{{Name: "up", URL: up.URL + "/mcp"}}},
		emitter, testSettings(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := tap.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tap.Shutdown(ctx)
	})

	// The plain proxy gets the tap's connection pooling, so the two differ by the tap's work.
	target, _ := url.Parse(up.URL + "/mcp")
	plainTransport := http.DefaultTransport.(*http.Transport).Clone()
	plainTransport.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
	b.Cleanup(plainTransport.CloseIdleConnections)
	rp := &httputil.ReverseProxy{Transport: plainTransport, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path = target.Path
	}}
	// Full duplex: the go-sdk server answers before the transport has finished with the
	// streamed request body, and without it the HTTP/1 server closes that body under the
	// transport, which cuts the answer now and then (golang/go#40747). The tap reads the body
	// first, so it needs no such thing.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(plain.Close)

	targets := []*benchTarget{
		newBenchTarget(b, "direct", up.URL+"/mcp"),
		newBenchTarget(b, "tap", "http://"+tap.Addr()+"/mcp"),
		newBenchTarget(b, "proxy", plain.URL),
	}
	for _, t := range targets {
		t.initialize(b)
		for range 200 { // warm up connections and caches
			if err := t.call(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return targets, emitter
}

var benchModes = []string{"json", "sse", "gosdk"}

// latencyRounds is how many rounds BenchmarkTapLatency splits its calls into.
const latencyRounds = 10

// BenchmarkTapLatency measures sequential tools/call latency. b.N is the number of calls
// sent to each of direct, tap and proxy (scripts/bench.sh uses 20,000, enough for a p99).
//
// Methodology, the same for all three targets: client, upstream and proxies share the
// machine's cores in one process, so scheduler and GC noise is large next to what a proxy
// adds. To make that noise hit the three alike, the calls are split into latencyRounds
// rounds; before each round the garbage collector runs to completion, and within a round
// the three targets take turns call by call (who goes first rotates). Each round yields a
// p50 and a p99 per target and, for tap and proxy, the latency added over direct in that
// round; the figures reported are the median over rounds. Warm-up calls (benchTargets) are
// not counted.
func BenchmarkTapLatency(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			targets, emitter := benchTargets(b, mode)
			rounds := min(latencyRounds, b.N)
			perRound := b.N / rounds
			// p[q][k][r]: quantile q (0: p50, 1: p99) of target k in round r, in µs.
			var p [2][][]float64
			for q := range p {
				p[q] = make([][]float64, len(targets))
			}
			lat := make([][]time.Duration, len(targets))
			for k := range lat {
				lat[k] = make([]time.Duration, 0, perRound)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range rounds {
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
				for k := range lat {
					lat[k] = lat[k][:0]
				}
				for i := range perRound {
					for j := range targets {
						k := (i + j) % len(targets) // rotate who goes first
						start := time.Now()
						if err := targets[k].call(); err != nil {
							b.Fatal(err)
						}
						lat[k] = append(lat[k], time.Since(start))
					}
				}
				for k := range targets {
					slices.Sort(lat[k])
					for q, quant := range []float64{0.5, 0.99} {
						v := lat[k][min(len(lat[k])-1, int(quant*float64(len(lat[k]))))]
						p[q][k] = append(p[q][k], float64(v.Nanoseconds())/1e3)
					}
				}
			}
			b.StopTimer()
			median := func(s []float64) float64 {
				s = slices.Clone(s)
				slices.Sort(s)
				if n := len(s); n%2 == 0 {
					return (s[n/2-1] + s[n/2]) / 2
				}
				return s[len(s)/2]
			}
			added := func(q, k int) float64 {
				d := make([]float64, len(p[q][k]))
				for r := range d {
					d[r] = p[q][k][r] - p[q][0][r]
				}
				return median(d)
			}
			b.ReportMetric(median(p[0][0]), "direct-p50-µs")
			b.ReportMetric(median(p[1][0]), "direct-p99-µs")
			b.ReportMetric(added(0, 1), "tap-p50-added-µs")
			b.ReportMetric(added(1, 1), "tap-p99-added-µs")
			b.ReportMetric(added(0, 2), "proxy-p50-added-µs")
			b.ReportMetric(added(1, 2), "proxy-p99-added-µs")
			if emitter.n.Load() < int64(rounds*perRound) {
				b.Fatalf("the tap emitted %d events for %d calls", emitter.n.Load(), rounds*perRound)
			}
		})
	}
}

// BenchmarkTapThroughput measures calls/s at concurrency 32; b.N calls go to each target.
func BenchmarkTapThroughput(b *testing.B) {
	const concurrency = 32
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			targets, _ := benchTargets(b, mode)
			b.ResetTimer()
			rate := make([]float64, len(targets))
			cpu := make([]float64, len(targets)) // process CPU µs per call
			for k, t := range targets {
				var next atomic.Int64
				var wg sync.WaitGroup
				runtime.GC() // no target pays for garbage another left
				cpu0 := cpuTime()
				start := time.Now()
				for range concurrency {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if err := t.call(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				rate[k] = float64(b.N) / elapsed.Seconds()
				cpu[k] = float64((cpuTime() - cpu0).Microseconds()) / float64(b.N)
			}
			b.StopTimer()
			b.ReportMetric(rate[0], "direct-calls/s")
			b.ReportMetric(rate[1], "tap-calls/s")
			b.ReportMetric(rate[2], "proxy-calls/s")
			b.ReportMetric(cpu[1]-cpu[0], "tap-cpu-µs/call")
			b.ReportMetric(cpu[2]-cpu[0], "proxy-cpu-µs/call")
			if added := cpu[1] - cpu[0]; added > 0 {
				b.ReportMetric(1e6/added, "tap-calls/s/core")
			}
			b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pipeUpstream serves an upstream over in-memory pipes, so a benchmark measures the CPU of
// the proxy (HTTP/1 both ways included) and nothing of the kernel's network.
type pipeUpstream struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	srv   *http.Server
	wg    sync.WaitGroup
}

func startPipeUpstream(h http.Handler) *pipeUpstream {
	p := &pipeUpstream{conns: make(chan net.Conn), done: make(chan struct{}), srv: &http.Server{Handler: h}}
	p.wg.Go(func() { _ = p.srv.Serve(p) })
	return p
}

func (p *pipeUpstream) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeUpstream) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeUpstream) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

func (p *pipeUpstream) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeUpstream) stop() {
	_ = p.srv.Close()
	p.wg.Wait()
}

// BenchmarkTapOverhead measures the CPU and allocations of one tools/call through the tap's
// handler and through a plain ReverseProxy (with the tap's connection pooling), both in
// process against the same upstream served over in-memory pipes: the difference is what the
// tap's forwarding and its own work cost beside a plain proxy's. Allocations include the
// upstream server's.
func BenchmarkTapOverhead(b *testing.B) {
	for _, mode := range []string{"json", "sse"} {
		b.Run(mode, func(b *testing.B) {
			up := startPipeUpstream(benchUpstream(mode))
			defer up.stop()
			emitter := &countingEmitter{}
			tap, err := New(Config{CollectorID: "bench", Upstreams: []Upstream{{Name: "up", URL: "http://127.0.0.1:1/mcp"}}},
				emitter, testSettings(b))
			if err != nil {
				b.Fatal(err)
			}
			tap.routes["up"].h1.dial = up.dial
			target, _ := url.Parse("http://127.0.0.1:1/mcp")
			plainTransport := http.DefaultTransport.(*http.Transport).Clone()
			plainTransport.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
			plainTransport.DialContext = up.dial
			defer plainTransport.CloseIdleConnections()
			plain := &httputil.ReverseProxy{Transport: plainTransport, Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.URL.Path = target.Path
			}}
			for _, h := range []struct {
				name string
				h    http.Handler
			}{{"tap", tap.Handler()}, {"proxy", plain}} {
				b.Run(h.name, func(b *testing.B) {
					b.ReportAllocs()
					id := 0
					for b.Loop() {
						id++
						req := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":`+
							strconv.Itoa(id)+`,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}`)))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Accept", "application/json, text/event-stream")
						req.Header.Set("Mcp-Session-Id", "bench-session")
						rec := httptest.NewRecorder()
						h.h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte("Echo: hello")) {
							b.Fatal(rec.Code, rec.Body.String())
						}
					}
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tap.Shutdown(ctx)
		})
	}
}
