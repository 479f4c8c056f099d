package httptap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/gcheadroom"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// BenchmarkTapLatency and BenchmarkTapThroughput run the upstream, the tap, the plain proxy
// and the relay each in a process of its own, as they run in production, so that no target's
// latency absorbs the garbage collection another one causes. A child is this test binary
// run again with benchRoleEnv naming its role (TestMain hands it to runBenchRole): it
// listens on 127.0.0.1:0, prints its address on stdout, answers each "stats" line on stdin
// with its CPU time and the events it emitted, and exits when stdin closes.
const (
	benchRoleEnv     = "HTTPTAP_BENCH_ROLE"     // upstream-json, upstream-sse, upstream-gosdk, tap, proxy or relay
	benchUpstreamEnv = "HTTPTAP_BENCH_UPSTREAM" // the upstream's URL, for tap, proxy and relay
	// benchProfileEnv, set when running the benchmarks, makes the tap and proxy children
	// write a CPU profile of their whole life into that directory (<role>-<benchmark>.pprof).
	benchProfileEnv = "HTTPTAP_BENCH_CPUPROFILE"
	benchLabelEnv   = "HTTPTAP_BENCH_LABEL" // the benchmark's name, for the profile's file name
)

// runBenchRole runs this process as a benchmark's child and returns its exit code.
func runBenchRole(role string) int {
	if err := serveBenchRole(role, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		return 1
	}
	return 0
}

func serveBenchRole(role string, stdin io.Reader, stdout io.Writer) error {
	upstreamURL := os.Getenv(benchUpstreamEnv)
	events := func() int64 { return 0 }
	var addr string
	var stop func() error
	switch role {
	case "upstream-json", "upstream-sse", "upstream-gosdk":
		mode := strings.TrimPrefix(role, "upstream-")
		handler := benchUpstream(mode)
		var srv *mcp.Server
		if mode == "gosdk" {
			srv = newMCPServer()
			handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		}
		a, closeServer, err := serveBench(handler)
		if err != nil {
			return err
		}
		addr = a
		stop = func() error {
			if srv != nil {
				for ss := range srv.Sessions() {
					_ = ss.Close()
				}
			}
			return closeServer()
		}
	case "tap":
		// As mcpwatch runs it (internal/app), with an emitter that keeps up.
		emitter := &countingEmitter{}
		set := pipeline.Settings{
			Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Registry: prometheus.NewRegistry(),
		}
		tap, err := New(Config{Listen: "127.0.0.1:0", CollectorID: "bench", Upstreams: []Upstream{{Name: "up", URL: upstreamURL}}},
			emitter, set)
		if err != nil {
			return err
		}
		if err := tap.Start(context.Background()); err != nil {
			return err
		}
		addr, events = tap.Addr(), emitter.n.Load
		stop = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return tap.Shutdown(ctx)
		}
	case "proxy":
		h, tr, err := plainProxy(upstreamURL)
		if err != nil {
			return err
		}
		a, closeServer, err := serveBench(h)
		if err != nil {
			return err
		}
		addr = a
		stop = func() error {
			err := closeServer()
			tr.CloseIdleConnections()
			return err
		}
	case "relay":
		target, err := url.Parse(upstreamURL)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go relayBench(ln, target.Host)
		addr, stop = ln.Addr().String(), ln.Close
	default:
		return fmt.Errorf("unknown role %q", role)
	}

	if role == "tap" || role == "proxy" {
		// As mcpwatch run does; the plain proxy too, so that the two differ by their work.
		gcheadroom.Start(gcheadroom.DefaultHeadroom)
	}
	if dir := os.Getenv(benchProfileEnv); dir != "" && (role == "tap" || role == "proxy") {
		f, err := os.Create(filepath.Join(dir, role+"-"+os.Getenv(benchLabelEnv)+".pprof"))
		if err != nil {
			return errors.Join(err, stop())
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return errors.Join(err, stop())
		}
		defer pprof.StopCPUProfile()
	}

	if _, err := fmt.Fprintln(stdout, addr); err != nil {
		return errors.Join(err, stop())
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		if sc.Text() == "stats" {
			_, _ = fmt.Fprintln(stdout, cpuTime().Nanoseconds(), events())
		}
	}
	return stop()
}

// relayBench copies bytes between each connection accepted on ln and one it opens to
// upstream, both ways, until ln is closed: the least any proxy in a process of its own adds
// (two more loopback legs and the wake-ups of one more process), with no HTTP at all.
func relayBench(ln net.Listener, upstream string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

// serveBench serves h on a free loopback port.
func serveBench(h http.Handler) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return ln.Addr().String(), func() error {
		err := srv.Close()
		if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		return err
	}, nil
}

// benchProc is a benchmark's child process.
type benchProc struct {
	role   string
	addr   string // host:port it listens on
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer // read only after Wait
}

// startBenchProc starts this test binary as a child in role, and stops it (stdin closed,
// killed if it has not exited 10 s later, waited for) when b ends.
func startBenchProc(b *testing.B, role string, env ...string) *benchProc {
	b.Helper()
	p := &benchProc{role: role}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), benchRoleEnv+"="+role,
		benchLabelEnv+"="+strings.NewReplacer("/", "-", " ", "_").Replace(b.Name()))
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("cannot start the %s process: %v", role, err)
	}
	b.Cleanup(func() {
		if err := p.stop(); err != nil {
			b.Error(err)
		}
	})
	line, err := p.out.ReadString('\n')
	if err != nil {
		b.Fatalf("the %s process did not say its address: %v", role, err)
	}
	p.addr = strings.TrimSpace(line)
	return p
}

// stop closes the child's stdin, which makes it exit, and waits for it.
func (p *benchProc) stop() error {
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the %s process: %w: %s", p.role, err, p.stderr.String())
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("the %s process did not exit within 10 s of its stdin closing; killed: %s", p.role, p.stderr.String())
	}
}

// stats returns the CPU time (user and system) the child has used and the events it has
// emitted so far.
func (p *benchProc) stats() (time.Duration, int64, error) {
	if _, err := io.WriteString(p.stdin, "stats\n"); err != nil {
		return 0, 0, fmt.Errorf("the %s process: %w", p.role, err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("the %s process: %w", p.role, err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("the %s process: unexpected stats %q", p.role, line)
	}
	cpu, err1 := strconv.ParseInt(f[0], 10, 64)
	events, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("the %s process: unexpected stats %q: %w", p.role, line, err)
	}
	return time.Duration(cpu), events, nil
}

// awaitEvents waits until the child has emitted at least n events (the tap emits off the
// call's path, so the last ones may come just after the last answer), and returns its CPU
// time then.
func (p *benchProc) awaitEvents(n int64) (time.Duration, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		cpu, events, err := p.stats()
		if err != nil || events >= n {
			return cpu, err
		}
		if time.Now().After(deadline) {
			return cpu, fmt.Errorf("the %s process emitted %d events, want %d", p.role, events, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// plainProxy is the plain httputil.ReverseProxy the tap is compared with, to upstreamURL. It
// gets the tap's connection pooling (close the transport's idle connections when done), so
// the two differ by the tap's work.
func plainProxy(upstreamURL string) (http.Handler, *http.Transport, error) {
	target, err := url.Parse(upstreamURL)
	if err != nil {
		return nil, nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
	rp := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path = target.Path
	}}
	// Full duplex: the go-sdk server answers before the transport has finished with the
	// streamed request body, and without it the HTTP/1 server closes that body under the
	// transport, which cuts the answer now and then (golang/go#40747). The tap reads the body
	// first, so it needs no such thing.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}), tr, nil
}
