package stdiotap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Tap runs MCP servers over stdio and observes their traffic.
type Tap struct {
	cfg     Config
	capture *capture.Policy
	emitter pipeline.EventEmitter
	log     *slog.Logger

	events   *prometheus.CounterVec
	lost     prometheus.Counter
	untraced *prometheus.CounterVec
	// unobserved is lost's value, for the wrap command, which keeps no registry.
	unobserved atomic.Int64
}

// UnobservedBytes is how many bytes were relayed without being parsed because the parser fell
// behind (mcpwatch_stdiotap_unobserved_bytes_total).
func (t *Tap) UnobservedBytes() int64 { return t.unobserved.Load() }

func (t *Tap) addUnobserved(n int64) {
	t.lost.Add(float64(n))
	t.unobserved.Add(n)
}

// New returns a tap that sends its events to emitter.
func New(cfg Config, emitter pipeline.EventEmitter, set pipeline.Settings) (*Tap, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid stdiotap config: %w", err)
	}
	if emitter == nil {
		return nil, errors.New("cannot create stdiotap: no event emitter")
	}
	policy, err := capture.New(cfg.Capture)
	if err != nil {
		return nil, fmt.Errorf("invalid stdiotap config: %w", err)
	}
	set = set.WithComponent("stdiotap")
	return &Tap{
		cfg:     cfg.withDefaults(),
		capture: policy,
		emitter: emitter,
		log:     set.Logger,
		events: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_stdiotap_events_total", Help: "Events emitted by the stdio tap, by status.",
		}, []string{"status"})),
		lost: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_stdiotap_unobserved_bytes_total", Help: "Bytes relayed but not parsed because the parser fell behind.",
		})),
		untraced: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_stdiotap_untracked_messages_total", Help: "Messages not paired: unmatched_response, duplicate_id (a request reusing a pending id) or pending_limit.",
		}, []string{"reason"})),
	}, nil
}

// Process is a server to run and the streams it talks over.
type Process struct {
	// Cmd is the server. Run sets its Stdin and Stdout; its Stderr is left as the caller set it
	// (an *os.File is handed to the child directly).
	Cmd *exec.Cmd
	// Stdin is what the client writes; it is relayed to the child's stdin. At its end the
	// child's stdin is closed, which tells an MCP server to exit.
	Stdin io.Reader
	// Stdout receives the child's stdout.
	Stdout io.Writer
	// Signals, if set, are forwarded to the child.
	Signals <-chan os.Signal
	// OutputGrace is how long Run keeps relaying the child's stdout after the child exited,
	// for output still in the pipe or written by processes it left behind. Default 2s.
	OutputGrace time.Duration
}

// Exit codes Run returns when it cannot run the command, as shells do.
const (
	ExitCannotExecute = 126
	ExitNotFound      = 127
)

// Run starts the server and relays until it exits and its output is drained, then emits
// timeout events for requests left unanswered. It returns the child's exit code (128+signal
// when a signal killed it). ctx ending kills the child. The stdin relay may outlive Run until
// Stdin reaches its end (a process exits anyway; tests close their pipe).
func (t *Tap) Run(ctx context.Context, p Process) (int, error) {
	cmd := p.Cmd
	if cmd.Stdin != nil || cmd.Stdout != nil {
		return ExitCannotExecute, errors.New("cannot run server: Cmd.Stdin and Cmd.Stdout must be unset")
	}
	grace := p.OutputGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return ExitCannotExecute, fmt.Errorf("cannot create stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return ExitCannotExecute, fmt.Errorf("cannot create stdout pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	// The child has its own copies now.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		code := ExitCannotExecute
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = ExitNotFound
		}
		return code, fmt.Errorf("cannot start %s: %w", cmd.Path, err)
	}

	serverID := t.cfg.ServerID
	if serverID == "" {
		serverID = ServerName(cmd.Args)
	}
	obs := newObserver(t, serverID)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		obs.run()
	}()

	// Client → server. Ends at the client's EOF (closing the child's stdin) or when the child
	// no longer reads.
	go func() {
		defer inW.Close()
		relay(p.Stdin, inW, func(b []byte, at time.Time) { obs.feed(schemas.ClientToServer, b, at) })
	}()
	// Server → client.
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		if !relay(outR, p.Stdout, func(b []byte, at time.Time) { obs.feed(schemas.ServerToClient, b, at) }) {
			// The client stopped reading: the child gets EPIPE, as it would without the tap.
			outR.Close()
		}
	}()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var waitErr error
wait:
	for {
		select {
		case sig := <-p.Signals:
			if err := forwardSignal(cmd, sig); err != nil {
				t.log.Debug("cannot forward signal", "signal", sig, "err", err)
			}
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			waitErr = <-waited
			break wait
		case waitErr = <-waited:
			break wait
		}
	}
	select {
	case <-outDone:
	case <-time.After(grace):
		_ = outR.SetReadDeadline(time.Now())
		<-outDone
	}
	outR.Close()
	inW.Close() // unblocks a stdin relay writing to a child that is gone
	obs.stop()
	<-obsDone
	return exitCode(cmd, waitErr), nil
}

// relay copies src to dst read by read. Each chunk is handed to observe (which copies it and
// never waits) just before it is written, so the observer learns of a message before the peer
// can answer it. It reports false when dst failed (src's reader should stop too).
func relay(src io.Reader, dst io.Writer, observe func([]byte, time.Time)) bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			observe(buf[:n], time.Now())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

func exitCode(cmd *exec.Cmd, waitErr error) int {
	if cmd.ProcessState == nil {
		return ExitCannotExecute
	}
	if sig, ok := signaled(cmd.ProcessState); ok {
		return 128 + sig
	}
	return cmd.ProcessState.ExitCode()
}

// newSessionID mints the id shared by the events of one run.
func newSessionID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
