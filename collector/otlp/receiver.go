package otlp

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP/gRPC exporters compress with gzip by default

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/internal/freshconn"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Receiver is the OTLP collector: an OTLP/gRPC and OTLP/HTTP trace receiver that emits an event
// per MCP call it sees a span of.
type Receiver struct {
	cfg     Config
	emitter pipeline.EventEmitter
	log     *slog.Logger
	metrics *metrics
	norm    normalizer
	tls     *tls.Config // nil without TLS
	tokens  [][]byte
	stitch  *identity.Stitcher // session ids for events without one
	pairs   *pairer            // one event for a call traced on both ends (calls.go)
	now     func() time.Time   // when spans arrive, for pairing; time.Now but in tests

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	fresh    freshconn.Tracker // OTLP/HTTP connections that sent no request, for Shutdown to close
	grpcLn   net.Listener
	httpLn   net.Listener
	serveWG  sync.WaitGroup
	grpcAddr string
	httpAddr string
	tickStop chan struct{} // closed by Shutdown to stop emitting held spans whose window ended
	tickDone chan struct{}
}

// New returns a receiver for cfg that sends its events to emitter. It reads the TLS files, so a
// bad certificate is reported here rather than at Start.
func New(cfg Config, emitter pipeline.EventEmitter, settings pipeline.Settings) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid otlp receiver config: %w", err)
	}
	if emitter == nil {
		return nil, errors.New("cannot create otlp receiver: no event emitter")
	}
	cfg = cfg.withDefaults()
	policy, err := capture.New(cfg.Capture)
	if err != nil {
		return nil, fmt.Errorf("invalid otlp receiver config: %w", err)
	}
	settings = settings.WithComponent("otlp")
	r := &Receiver{
		cfg:     cfg,
		emitter: emitter,
		log:     settings.Logger,
		metrics: newMetrics(settings.Registry),
		norm:    normalizer{collectorID: cfg.CollectorID, capture: policy},
		pairs:   newPairer(defaultPairWindow, defaultMaxCalls),
		now:     time.Now,
	}
	sessions := cfg.Sessions
	if f := sessions.StateFile; f != "" {
		// Beside the HTTP tap's file rather than in it: each would overwrite the other's.
		sessions.StateFile = strings.TrimSuffix(f, filepath.Ext(f)) + "-otlp" + filepath.Ext(f)
	}
	if r.stitch, err = identity.NewStitcher(sessions); err != nil {
		if r.stitch == nil {
			return nil, fmt.Errorf("invalid otlp receiver config: %w", err)
		}
		// A damaged state file costs the ids of sessions in progress, not the receiver.
		r.log.Warn("starting without the saved stitched sessions", "err", err)
	}
	for _, t := range cfg.BearerTokens {
		r.tokens = append(r.tokens, []byte(t))
	}
	if cfg.TLS.enabled() {
		if r.tls, err = loadTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func loadTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load collector.otlp.tls certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read collector.otlp.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot load collector.otlp.tls.client_ca_file %q: no PEM certificate in it", c.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// GRPCAddr is the OTLP/gRPC listening address once started, else "".
func (r *Receiver) GRPCAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grpcAddr
}

// HTTPAddr is the OTLP/HTTP listening address once started, else "".
func (r *Receiver) HTTPAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.httpAddr
}

// Start listens on the configured addresses and serves in the background.
func (r *Receiver) Start(ctx context.Context) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return errors.New("cannot start otlp receiver: already started or shut down")
	}
	var lc net.ListenConfig
	defer func() {
		if err != nil {
			for _, ln := range []net.Listener{r.grpcLn, r.httpLn} {
				if ln != nil {
					_ = ln.Close()
				}
			}
			r.grpcLn, r.httpLn = nil, nil
		}
	}()
	if !r.cfg.GRPC.Disabled {
		if r.grpcLn, err = lc.Listen(ctx, "tcp", r.cfg.GRPC.Listen); err != nil {
			return fmt.Errorf("cannot listen for OTLP/gRPC on %s: %w", r.cfg.GRPC.Listen, err)
		}
	}
	if !r.cfg.HTTP.Disabled {
		if r.httpLn, err = lc.Listen(ctx, "tcp", r.cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("cannot listen for OTLP/HTTP on %s: %w", r.cfg.HTTP.Listen, err)
		}
	}
	r.started = true
	if r.grpcLn != nil {
		opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(r.cfg.MaxMessageBytes)}
		if r.tls != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(r.tls)))
		}
		srv, ln := grpc.NewServer(opts...), r.grpcLn
		srv.RegisterService(&traceServiceDesc, r)
		r.grpcSrv, r.grpcAddr = srv, ln.Addr().String()
		r.serve("OTLP/gRPC", func() error { return srv.Serve(ln) })
	}
	if r.httpLn != nil {
		srv := &http.Server{
			Handler:           r.httpHandler(),
			ReadHeaderTimeout: 30 * time.Second,
			// Exporters time out after 10 s by default; a sender slower than this is stuck.
			ReadTimeout: time.Minute,
			IdleTimeout: 2 * time.Minute,
			ErrorLog:    slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
			ConnState:   r.fresh.ConnState,
		}
		ln := r.httpLn
		if r.tls != nil {
			ln = tls.NewListener(ln, r.tls)
		}
		r.httpSrv, r.httpAddr = srv, r.httpLn.Addr().String()
		r.serve("OTLP/HTTP", func() error { return srv.Serve(ln) })
	}
	r.tickStop, r.tickDone = make(chan struct{}), make(chan struct{})
	go r.emitExpired(r.tickStop, r.tickDone)
	r.log.Info("OTLP receiver listening", "grpc", r.grpcAddr, "http", r.httpAddr, "tls", r.tls != nil,
		"mtls", r.tls != nil && r.tls.ClientCAs != nil, "bearer_auth", len(r.tokens) > 0)
	if len(r.tokens) > 0 && r.tls == nil {
		for _, ln := range []net.Listener{r.grpcLn, r.httpLn} {
			if ln != nil && !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
				r.log.Warn("OTLP bearer tokens travel in clear text to a listener other machines can reach: set collector.otlp.tls, or terminate TLS in front of it",
					"listen", ln.Addr().String())
			}
		}
	}
	return nil
}

func (r *Receiver) serve(what string, serve func() error) {
	r.serveWG.Add(1)
	go func() {
		defer r.serveWG.Done()
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			r.log.Error("OTLP receiver stopped serving", "transport", what, "err", err)
		}
	}()
}

// emitExpired emits, until stop is closed, the held spans whose pairing window ended.
func (r *Receiver) emitExpired(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.pairs.window / 10)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.emitHeld(r.now())
		}
	}
}

// emitHeld emits the held spans whose pairing window ended before now.
func (r *Receiver) emitHeld(now time.Time) {
	for _, p := range r.pairs.expire(now, nil) {
		r.emit(p)
	}
}

// Shutdown stops accepting exports and waits for those in flight until ctx ends, then cuts
// what is left. Every span accepted before it returns has been handed to the emitter, held
// ones included, and the open stitched sessions are saved. It is safe to call twice and
// without Start.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	grpcSrv, httpSrv := r.grpcSrv, r.httpSrv
	tickStop, tickDone := r.tickStop, r.tickDone
	r.mu.Unlock()

	var errs []error
	if httpSrv != nil {
		r.fresh.Close()
		if err := httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot drain OTLP/HTTP exports: %w", err))
			_ = httpSrv.Close()
		}
	}
	if grpcSrv != nil {
		done := make(chan struct{})
		go func() {
			grpcSrv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			grpcSrv.Stop()
			<-done
			errs = append(errs, fmt.Errorf("cannot drain OTLP/gRPC exports: %w", ctx.Err()))
		}
	}
	r.serveWG.Wait()
	if tickStop != nil {
		close(tickStop)
		<-tickDone
	}
	for _, p := range r.pairs.flush(nil) {
		r.emit(p)
	}
	if err := r.stitch.Save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// authorized checks an Authorization value against the configured bearer tokens.
func (r *Receiver) authorized(values ...string) bool {
	if len(r.tokens) == 0 {
		return true
	}
	ok := false
	for _, v := range values {
		const scheme = "bearer "
		if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
			continue
		}
		tok := []byte(strings.TrimSpace(v[len(scheme):]))
		for _, want := range r.tokens {
			// Every token is compared, so timing says nothing about which one matched.
			if subtle.ConstantTimeCompare(tok, want) == 1 {
				ok = true
			}
		}
	}
	return ok
}

// emit stitches a session for an event without one and hands it to the emitter.
func (r *Receiver) emit(p pending) {
	ev := p.ev
	if ev.SessionID == "" {
		key := identity.StitchKey{
			Server: ev.ServerID, Agent: ev.AgentID, ClientName: ev.ClientName, ClientVersion: ev.ClientVersion,
			Instance: p.meta.instance,
		}
		ev.SessionID = r.stitch.SessionID(key, ev.TraceID, ev.ObservedAt)
	}
	r.emitter.Emit(ev)
	r.metrics.events.WithLabelValues(p.meta.dialect).Inc()
}

// export turns the spans of one decoded request into events and returns what to tell the
// sender about the spans it rejected.
func (r *Receiver) export(td *tracepb.TracesData, transport string) (rejected int, msg string) {
	b := r.norm.request(td)
	r.metrics.received.WithLabelValues(transport).Add(float64(b.spans))
	var out []pending
	now, dups := r.now(), 0
	for i, ev := range b.events {
		var dup int
		out, dup = r.pairs.add(now, pending{ev: ev, meta: b.meta[i]}, out)
		dups += dup
	}
	for _, p := range out {
		r.emit(p)
	}
	r.metrics.deduplicated.Add(float64(dups))
	r.metrics.ignored.Add(float64(b.ignored))
	rejected = b.rejectedTotal()
	if rejected == 0 {
		return 0, ""
	}
	parts := make([]string, 0, len(b.rejected))
	for _, reason := range slices.Sorted(maps.Keys(b.rejected)) {
		r.metrics.rejected.WithLabelValues(reason).Add(float64(b.rejected[reason]))
		parts = append(parts, fmt.Sprintf("%s: %d", reason, b.rejected[reason]))
	}
	msg = "mcpwatch could not use some MCP spans (" + strings.Join(parts, ", ") + ")"
	r.log.Debug("rejected MCP spans", "transport", transport, "rejected", rejected, "reasons", strings.Join(parts, ", "))
	return rejected, msg
}
