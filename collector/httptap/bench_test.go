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
	"github.com/mcpwatch/mcpwatch/internal/gcheadroom"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// The tap's benchmarks measure what the tap adds to an MCP call, side by side in one run:
// the same tools/call sent directly to the upstream, through the tap, and through a plain
// httputil.ReverseProxy (the floor for any HTTP proxy). Figures (scripts/bench.sh):
//
//   - BenchmarkTapLatency: sequential calls, the targets interleaved in rounds; the direct
//     call's p50 and p99, and what the tap, the plain proxy and the relay add to them (the
//     median over rounds of each round's difference; see the benchmark for why).
//   - BenchmarkTapThroughput: calls/s at concurrency 32 for each target, the CPU per call of
//     the process each target's calls reach first, and the calls/s one core sustains for
//     the tap's process.
//   - BenchmarkTapOverhead: the tap's handler and a plain proxy in this process, against an
//     upstream on in-memory pipes: CPU and allocations per call.
//
// Upstreams: "json" and "sse" are a lightweight server answering like a real MCP server (a
// session header, a JSON or an SSE response) so the figures are about the proxy; "gosdk" is
// the real go-sdk server. The client is a plain HTTP client posting the call. For latency and
// throughput the client runs in the test process and the upstream, the tap and the plain
// proxy each in a process of its own (benchproc_test.go), as in production: in one process
// they would share one heap, and every target would pay for the garbage the others make
// (the go-sdk server's ~280 KB a call above all). A fourth target, a TCP relay that copies
// bytes both ways in a process of its own, shows what a process hop costs on the machine
// before any HTTP: the floor for the tap and the plain proxy.

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

// benchTargets starts an upstream in mode and, in front of it, a tap, a plain reverse proxy
// and a TCP relay, each in a process of its own, and returns the four targets (direct, tap,
// proxy, relay) with the process each one's calls reach first (upstream, tap, proxy, relay).
func benchTargets(b *testing.B, mode string) ([]*benchTarget, []*benchProc) {
	up := startBenchProc(b, "upstream-"+mode)
	upURL := "http://" + up.addr + "/mcp"
	tap := startBenchProc(b, "tap", benchUpstreamEnv+"="+upURL)
	plain := startBenchProc(b, "proxy", benchUpstreamEnv+"="+upURL)
	relay := startBenchProc(b, "relay", benchUpstreamEnv+"="+upURL)
	targets := []*benchTarget{
		newBenchTarget(b, "direct", upURL),
		newBenchTarget(b, "tap", "http://"+tap.addr+"/mcp"),
		newBenchTarget(b, "proxy", "http://"+plain.addr+"/mcp"),
		newBenchTarget(b, "relay", "http://"+relay.addr+"/mcp"),
	}
	warmUp(b, targets)
	return targets, []*benchProc{up, tap, plain, relay}
}

// warmUp opens each target's MCP session and warms its connections and caches.
func warmUp(b *testing.B, targets []*benchTarget) {
	for _, t := range targets {
		t.initialize(b)
		for range 200 {
			if err := t.call(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

var benchModes = []string{"json", "sse", "gosdk"}

// latencyRounds is how many rounds BenchmarkTapLatency splits its calls into.
const latencyRounds = 10

// BenchmarkTapLatency measures sequential tools/call latency. b.N is the number of calls
// sent to each of direct, tap, proxy and relay (scripts/bench.sh uses 20,000, enough for a
// p99).
//
// Methodology, the same for all targets: client, upstream and proxies share the machine's
// cores (each in its own process), so scheduler noise is large next to what a proxy adds.
// To make that noise hit them alike, the calls are split into latencyRounds rounds; before
// each round the client's garbage collector runs to completion, and within a round the
// targets take turns call by call (who goes first rotates). Each round yields a p50 and a
// p99 per target and, for tap, proxy and relay, the latency added over direct in that
// round; the figures reported are the median over rounds. Warm-up calls (benchTargets) are
// not counted. Also reported: the CPU the tap's and the proxy's processes spend per call.
// Allocations are the client's.
func BenchmarkTapLatency(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			targets, procs := benchTargets(b, mode)
			// The tap's and the proxy's CPU over the rounds, when they serve nothing else.
			tapCPU0, events0, err := procs[1].stats()
			if err != nil {
				b.Fatal(err)
			}
			proxyCPU0, _, err := procs[2].stats()
			if err != nil {
				b.Fatal(err)
			}
			calls := latencyRuns(b, targets)
			tapCPU1, err := procs[1].awaitEvents(events0 + calls)
			if err != nil {
				b.Fatal(err)
			}
			proxyCPU1, _, err := procs[2].stats()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((tapCPU1-tapCPU0).Nanoseconds())/1e3/float64(calls), "tap-cpu-µs/call")
			b.ReportMetric(float64((proxyCPU1-proxyCPU0).Nanoseconds())/1e3/float64(calls), "proxy-cpu-µs/call")
		})
	}
}

// BenchmarkTapLatencyInProcess is BenchmarkTapLatency with the upstream, the tap and the
// plain proxy in the test process, beside the client: no process hop, so it shows what the
// tap's own work adds (an extra process on the path costs 58–84 µs on this VM, the relay
// shows, whatever runs in it), at the price of one heap and one garbage collector for all.
// The process runs with the collector's headroom, as mcpwatch run does (GOGC=100 in the
// environment measures without it): otherwise the go-sdk server's garbage makes the
// collector run every few calls, and the longer path through a proxy meets it more often.
func BenchmarkTapLatencyInProcess(b *testing.B) {
	if gcheadroom.Start(gcheadroom.DefaultHeadroom) {
		defer gcheadroom.Stop()
	}
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			latencyRuns(b, inProcessTargets(b, mode))
		})
	}
}

// latencyRuns sends b.N sequential calls to each target in latencyRounds rounds (see
// BenchmarkTapLatency), reports the direct call's p50 and p99 and what each other target
// adds to them, and returns the calls each target took.
func latencyRuns(b *testing.B, targets []*benchTarget) int64 {
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
	for k, t := range targets[1:] {
		b.ReportMetric(added(0, k+1), t.name+"-p50-added-µs")
		b.ReportMetric(added(1, k+1), t.name+"-p99-added-µs")
	}
	return int64(rounds * perRound)
}

// inProcessTargets starts an upstream in mode, a tap and a plain reverse proxy in front of
// it, all in the test process, and returns the three targets: direct, tap, proxy.
func inProcessTargets(b *testing.B, mode string) []*benchTarget {
	var handler http.Handler = benchUpstream(mode)
	if mode == "gosdk" {
		srv := newMCPServer()
		handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		b.Cleanup(func() {
			for ss := range srv.Sessions() {
				_ = ss.Close()
			}
		})
	}
	up := httptest.NewServer(handler)
	b.Cleanup(up.Close)
	tap, err := New(Config{Listen: "127.0.0.1:0", CollectorID: "bench", Upstreams: []Upstream{{Name: "up", URL: up.URL + "/mcp"}}},
		&countingEmitter{}, testSettings(b))
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
	h, tr, err := plainProxy(up.URL + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tr.CloseIdleConnections)
	plain := httptest.NewServer(h)
	b.Cleanup(plain.Close)
	targets := []*benchTarget{
		newBenchTarget(b, "direct", up.URL+"/mcp"),
		newBenchTarget(b, "tap", "http://"+tap.Addr()+"/mcp"),
		newBenchTarget(b, "proxy", plain.URL),
	}
	warmUp(b, targets)
	return targets
}

// BenchmarkTapThroughput measures calls/s at concurrency 32; b.N calls go to each target,
// one target after the other. The CPU per call is that of the process each target's calls
// reach first: the upstream's for direct calls, the tap's and the plain proxy's for theirs
// (their own work and both of their HTTP legs, kernel time included); calls/s per core is
// its inverse.
func BenchmarkTapThroughput(b *testing.B) {
	const concurrency = 32
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			targets, procs := benchTargets(b, mode)
			b.ResetTimer()
			rate := make([]float64, len(targets))
			cpu := make([]float64, len(targets)) // CPU µs per call of procs[k]
			for k, t := range targets {
				var next atomic.Int64
				var wg sync.WaitGroup
				runtime.GC() // the client pays for no garbage another target left
				cpu0, events0, err := procs[k].stats()
				if err != nil {
					b.Fatal(err)
				}
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
				// The tap's CPU includes building its events, which ends just after the calls.
				want := events0
				if targets[k].name == "tap" {
					want += int64(b.N)
				}
				cpu1, err := procs[k].awaitEvents(want)
				if err != nil {
					b.Fatal(err)
				}
				rate[k] = float64(b.N) / elapsed.Seconds()
				cpu[k] = float64((cpu1 - cpu0).Nanoseconds()) / 1e3 / float64(b.N)
			}
			b.StopTimer()
			b.ReportMetric(rate[0], "direct-calls/s")
			b.ReportMetric(rate[1], "tap-calls/s")
			b.ReportMetric(rate[2], "proxy-calls/s")
			b.ReportMetric(rate[3], "relay-calls/s")
			b.ReportMetric(cpu[0], "upstream-cpu-µs/call")
			b.ReportMetric(cpu[1], "tap-cpu-µs/call")
			b.ReportMetric(cpu[2], "proxy-cpu-µs/call")
			b.ReportMetric(cpu[3], "relay-cpu-µs/call")
			b.ReportMetric(1e6/cpu[1], "tap-calls/s/core")
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
