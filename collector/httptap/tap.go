package httptap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/internal/freshconn"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Tap is the Streamable HTTP collector: a reverse proxy that emits an event per MCP operation.
type Tap struct {
	cfg       Config
	emitter   pipeline.EventEmitter
	log       *slog.Logger
	metrics   *metrics
	routes    map[string]*upstream
	defaultUp *upstream
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	sessions  *sessionStore
	inflight  inflight
	index     callIndex      // open requests by id and progress token, across exchanges
	deadlines deadlineList   // open requests by deadline (exchange.go)
	emitQ     emitQueue      // events on their way to the emitter (exchange.go)
	legacy    legacyRegistry // legacy HTTP+SSE sessions and their endpoints (legacy.go)
	ident     *identity.Resolver
	stitch    *identity.Stitcher // session ids for traffic without one
	capture   *capture.Policy    // which content events carry
	tlsConfig *tls.Config        // the listener's, nil for plain HTTP

	mu        sync.Mutex
	srv       *http.Server
	ln        net.Listener
	serveDone chan struct{}
	started   bool
	stopped   bool
	active    map[*exchange]activeRequest // requests in flight, for Shutdown to cut
	extra     map[string]http.Handler     // other endpoints on the tap's listener, by path (Handle)
	fresh     freshconn.Tracker           // connections that sent no request, for Shutdown to close
}

type activeRequest struct {
	cancel     context.CancelFunc
	standalone bool // a GET stream, which never ends by itself
}

type upstream struct {
	name      string
	url       *url.URL
	transport *http.Transport // nil: the tap's shared one
	h1        *h1Pool         // the tap's own connections to a plain-HTTP upstream (forward.go), or nil
}

type exchangeKey struct{}

// New returns a tap for cfg that sends its events to emitter.
func New(cfg Config, emitter pipeline.EventEmitter, settings pipeline.Settings) (*Tap, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid httptap config: %w", err)
	}
	if emitter == nil {
		return nil, errors.New("cannot create httptap: no event emitter")
	}
	cfg = cfg.withDefaults()
	settings = settings.WithComponent("httptap")
	m, err := newMetrics(settings.Registry)
	if err != nil {
		return nil, err
	}
	t := &Tap{
		cfg:      cfg,
		emitter:  emitter,
		log:      settings.Logger,
		metrics:  m,
		routes:   map[string]*upstream{},
		sessions: newSessionStore(cfg.SessionIdleTimeout, cfg.MaxSessions),
		active:   map[*exchange]activeRequest{},
	}
	if t.ident, err = identity.New(cfg.Identity, settings); err != nil {
		return nil, err
	}
	if t.capture, err = capture.New(cfg.Capture); err != nil {
		return nil, err
	}
	if t.stitch, err = identity.NewStitcher(cfg.Sessions); err != nil {
		// A damaged state file costs the ids of sessions in progress, not the tap.
		t.log.Warn("starting without the saved stitched sessions", "err", err)
	}
	if t.tlsConfig, err = ServerTLS(cfg.TLS, t.log); err != nil {
		return nil, err
	}
	t.transport = http.DefaultTransport.(*http.Transport).Clone()
	// The tap must read bodies, so it asks for them unencoded (see rewrite).
	t.transport.DisableCompression = true
	// Many clients share the tap's connections to an upstream: keep enough of them open
	// (the default keeps 2, so concurrent calls would each open a new one).
	t.transport.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
	for i, u := range cfg.Upstreams {
		pu, err := url.Parse(u.URL)
		if err != nil {
			return nil, fmt.Errorf("cannot parse upstream %q url: %w", u.Name, err)
		}
		up := &upstream{name: u.Name, url: pu}
		tc, err := upstreamTLS(u.TLS, fmt.Sprintf("collector.http.upstreams[%d].tls", i), t.log)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			up.transport = t.transport.Clone()
			up.transport.TLSClientConfig = tc
		}
		up.h1 = t.ownConnections(pu)
		t.routes[u.Name] = up
	}
	t.defaultUp = t.routes["default"]
	if t.defaultUp == nil {
		t.defaultUp = t.routes[cfg.Upstreams[0].Name]
	}

	// Protocol upgrades (not MCP) are passed on by ReverseProxy; everything else by forward.
	t.proxy = &httputil.ReverseProxy{
		Rewrite:        t.rewrite,
		Transport:      upstreamTransport{t},
		ModifyResponse: t.modifyResponse,
		BufferPool:     proxyBuffers{},
		ErrorHandler:   t.proxyError,
		ErrorLog:       slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
	}
	return t, nil
}

// Handler serves the tap's routes; Start serves it on cfg.Listen.
func (t *Tap) Handler() http.Handler { return http.HandlerFunc(t.serveHTTP) }

// Addr is the address the tap listens on once started, else "".
func (t *Tap) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return ""
	}
	return t.ln.Addr().String()
}

// Start listens on cfg.Listen and serves in the background.
func (t *Tap) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.stopped {
		return errors.New("cannot start httptap: already started or shut down")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", t.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", t.cfg.Listen, err)
	}
	if err := t.ident.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	t.started, t.ln, t.serveDone = true, ln, make(chan struct{})
	t.emitQ.start(t)
	t.srv = &http.Server{
		Handler:           t.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
		TLSConfig:         t.tlsConfig,
		ConnState:         t.fresh.ConnState,
	}
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		serve := srv.Serve
		if srv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("MCP tap stopped serving", "err", err)
		}
	}(t.srv, t.serveDone)
	t.log.Info("MCP tap listening", "addr", ln.Addr().String(), "upstreams", len(t.routes), "tls", t.tlsConfig != nil,
		"mtls", t.tlsConfig != nil && t.tlsConfig.ClientCAs != nil)
	return nil
}

// Shutdown stops accepting connections, ends standalone GET streams (clients reconnect to them),
// waits for requests in flight until ctx ends, then cuts what is left. Unanswered requests are
// emitted as timeouts. It is safe to call twice and without Start.
func (t *Tap) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	srv, done := t.srv, t.serveDone
	t.mu.Unlock()
	t.cancelActive(true)
	t.fresh.Close()

	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot drain MCP tap requests: %w", err))
			t.cancelActive(false)
			_ = srv.Close()
		}
		<-done
	}
	if err := t.inflight.closeAndWait(ctx); err != nil {
		// Requests served through Handler by another server: cut them, and give their handlers
		// a moment to notice so no goroutine outlives Shutdown.
		t.cancelActive(false)
		grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := t.inflight.closeAndWait(grace); err != nil {
			errs = append(errs, fmt.Errorf("cannot drain MCP tap requests: %w", err))
		}
	}
	t.transport.CloseIdleConnections()
	for _, up := range t.routes {
		if up.transport != nil {
			up.transport.CloseIdleConnections()
		}
		if up.h1 != nil {
			up.h1.closeIdle(true)
		}
	}
	t.expireAll(t.sessions.drain())
	t.expireAll(t.index.drain()) // requests of cut streams still waiting for a cancellation
	t.deadlines.stop()
	t.emitQ.stop() // hands over what is queued
	if err := t.stitch.Save(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, t.ident.Shutdown(ctx))
	return errors.Join(errs...)
}

// cancelActive cuts the standalone streams, or every request, in flight.
func (t *Tap) cancelActive(standaloneOnly bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.active {
		if a.standalone || !standaloneOnly {
			a.cancel()
		}
	}
}

// Handle serves h at path on the tap's listener beside the MCP routes (the event ingest
// endpoint); call it before Start.
func (t *Tap) Handle(path string, h http.Handler) {
	if t.extra == nil {
		t.extra = map[string]http.Handler{}
	}
	t.extra[path] = h
}

func (t *Tap) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := t.extra[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	up, suffix, ok := t.route(r.URL.Path)
	if !ok {
		writeRouteNotFound(w)
		return
	}
	if !t.inflight.enter() {
		http.Error(w, "mcpwatch tap is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer t.inflight.leave()
	t.metrics.requests.WithLabelValues(up.name, r.Method).Inc()

	ex := t.newExchange(r, up, suffix)
	defer ex.finish()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !t.track(ex, activeRequest{cancel: cancel, standalone: r.Method == http.MethodGet}) {
		http.Error(w, "mcpwatch tap is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer t.untrack(ex)
	var body []byte
	held := false
	if r.Method == http.MethodPost {
		body, held = ex.observeRequest(r)
	}
	if r.Header.Get("Upgrade") != "" {
		// A protocol switch (WebSocket, h2c): not MCP, passed on by ReverseProxy, which can.
		if held {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		t.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, exchangeKey{}, ex)))
		return
	}
	t.forward(ctx, w, r, ex, body, held)
}

// ownConnections returns an h1Pool for a plain-HTTP upstream that http.Transport would reach
// directly (not through a proxy from the environment), else nil. TLS upstreams stay with
// http.Transport, which speaks HTTP/2 to those that offer it.
func (t *Tap) ownConnections(u *url.URL) *h1Pool {
	if u.Scheme != "http" || u.Host == "" {
		return nil
	}
	if proxy, err := t.transport.Proxy(&http.Request{URL: u}); err != nil || proxy != nil {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return newH1Pool(net.JoinHostPort(u.Hostname(), port))
}

// route maps /mcp and /mcp/{name}[/rest] to an upstream and the path suffix to forward.
func (t *Tap) route(path string) (*upstream, string, bool) {
	rest, ok := strings.CutPrefix(path, "/mcp")
	if !ok {
		return nil, "", false
	}
	if rest == "" || rest == "/" {
		return t.defaultUp, "", true
	}
	if rest[0] != '/' {
		return nil, "", false
	}
	name, suffix, _ := strings.Cut(rest[1:], "/")
	up := t.routes[name]
	if up == nil {
		return nil, "", false
	}
	if suffix != "" {
		suffix = "/" + suffix
	}
	if !t.legacy.routable(up.name, suffix) {
		return nil, "", false
	}
	return up, suffix, true
}

func writeRouteNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error": map[string]any{
			"code":    -32000,
			"message": "mcpwatch: no MCP server is configured at this path",
		},
	})
}

func (t *Tap) rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.SetURL(ex.up.url) // also makes Host the upstream's, which its DNS-rebinding check wants
	pr.Out.URL.Path, pr.Out.URL.RawPath = ex.up.url.Path, ex.up.url.RawPath
	if ex.suffix != "" {
		pr.Out.URL.Path = upstreamPath(ex.up, ex.suffix)
		pr.Out.URL.RawPath = ""
	}
	// Be transparent: keep the forwarding headers the client sent, which Rewrite drops.
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[h]; ok {
			pr.Out.Header[h] = v
		}
	}
	// Ask for an identity-encoded body, which every client accepts, so the tap can read it.
	pr.Out.Header.Del("Accept-Encoding")
}

// upstreamTransport sends each request with its upstream's transport (its own TLS settings).
type upstreamTransport struct{ t *Tap }

func (u upstreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if ex, ok := r.Context().Value(exchangeKey{}).(*exchange); ok && ex.up.transport != nil {
		return ex.up.transport.RoundTrip(r)
	}
	return u.t.transport.RoundTrip(r)
}

func (t *Tap) modifyResponse(resp *http.Response) error {
	if ex, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange); ok {
		ex.observeResponse(resp)
	}
	return nil
}

func (t *Tap) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if ex, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
		t.upstreamError(w, ex, err)
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

func (t *Tap) track(ex *exchange, a activeRequest) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.active[ex] = a
	return true
}

func (t *Tap) untrack(ex *exchange) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.active, ex)
}

// inflight counts requests being served so Shutdown can wait for them, also when they come
// through Handler rather than the tap's own server.
type inflight struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n drops to 0 after closing
}

func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// closeAndWait refuses new requests and waits for those in flight; it may be called again.
func (f *inflight) closeAndWait(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
