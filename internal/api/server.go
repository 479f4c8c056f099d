package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpwatch/mcpwatch/detector"
	"github.com/mcpwatch/mcpwatch/internal/freshconn"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Server is the HTTP API component.
type Server struct {
	cfg      Config
	st       store.Store
	gatherer prometheus.Gatherer
	ready    func() error
	log      *slog.Logger
	tls      *tls.Config
	tokens   [][sha256.Size]byte
	now      func() time.Time
	handler  http.Handler
	profiler *detector.Profiler
	openapi  []byte

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	served   chan struct{} // closed when Serve returns
	shutdown bool
	fresh    freshconn.Tracker // connections that sent no request, for Shutdown to close
}

var _ pipeline.Component = (*Server)(nil)

// Option adjusts a Server built by New.
type Option func(*options)

type options struct {
	detector detector.Config
}

// WithDetectorConfig names the detector configuration the baselines in the store were saved
// under, so that agent profiles can decode them (default: the detector's defaults).
func WithDetectorConfig(cfg detector.Config) Option {
	return func(o *options) { o.detector = cfg }
}

// New builds the API server. gatherer backs /metrics; when nil, settings.Registry is used if it
// is also a Gatherer (a *prometheus.Registry is). ready backs /readyz; nil means always ready.
// Request metrics are registered on settings.Registry.
func New(cfg Config, st store.Store, gatherer prometheus.Gatherer, ready func() error, settings pipeline.Settings, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("cannot create api server: store is nil")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	settings = settings.WithComponent("api")
	if gatherer == nil {
		gatherer, _ = settings.Registry.(prometheus.Gatherer)
	}
	if ready == nil {
		ready = func() error { return nil }
	}
	profiler, err := detector.NewProfiler(o.detector, settings.Logger)
	if err != nil {
		return nil, fmt.Errorf("cannot create api server: %w", err)
	}
	doc, err := openAPIDocument()
	if err != nil {
		panic("BUG: " + err.Error())
	}
	s := &Server{
		cfg:      cfg,
		st:       st,
		gatherer: gatherer,
		ready:    ready,
		log:      settings.Logger,
		now:      time.Now,
		profiler: profiler,
		openapi:  doc,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_api_requests_total",
			Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcpwatch_api_request_duration_seconds",
			Help:    "HTTP API request latency by route.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	for _, t := range cfg.Tokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	if cfg.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load api.tls certificate: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for _, c := range []prometheus.Collector{s.requests, s.duration} {
		if err := settings.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register api metrics: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// route is one API endpoint. Every /api/ route is registered from apiRoutes, which the
// OpenAPI test checks against the document.
type route struct {
	pattern string // a ServeMux pattern: "GET /api/v1/sessions/{id}"
	handler func(*Server, http.ResponseWriter, *http.Request)
}

var apiRoutes = []route{
	{"GET /api/v1/openapi.json", (*Server).openAPI},
	{"GET /api/v1/sessions", (*Server).listSessions},
	{"GET /api/v1/sessions/{id}", (*Server).getSession},
	{"GET /api/v1/sessions/{id}/events", (*Server).sessionEvents},
	{"GET /api/v1/anomalies", (*Server).listAnomalies},
	{"GET /api/v1/anomalies/{id}", (*Server).getAnomaly},
	{"GET /api/v1/agents", (*Server).listAgents},
	{"GET /api/v1/agents/{id}", (*Server).getAgent},
	{"GET /api/v1/agents/{id}/profile", (*Server).agentProfile},
	{"GET /api/v1/timeseries", (*Server).timeSeries},
	{"GET /api/v1/values/{field}", (*Server).values},
	{"GET /api/v1/definitions", (*Server).definitions},
	{"GET /api/v1/deliveries", (*Server).deliveries},
}

// processRoutes are the open endpoints beside the API (documented in the OpenAPI document too).
var processRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(processRoutes[0], func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc(processRoutes[1], func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ready")
	})
	if s.gatherer != nil {
		mux.Handle(processRoutes[2], promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	for _, rt := range apiRoutes {
		mux.Handle(rt.pattern, s.auth(func(w http.ResponseWriter, r *http.Request) { rt.handler(s, w, r) }))
	}
	// Unknown /api/ paths answer JSON, like every other API error (behind auth: a client
	// without a token learns nothing about the routes).
	mux.Handle("GET /api/", s.auth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s; see /api/v1/openapi.json", r.Method, r.URL.Path))
	}))
	return s.instrument(mux)
}

// Handler returns the API's handler, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the bound address once started (useful with port 0), else the configured one.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.listen()
}

// Start binds the listener and serves in the background. A bind failure is returned.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return errors.New("cannot start api server: already shut down")
	}
	if s.srv != nil {
		return errors.New("cannot start api server: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.listen())
	if err != nil {
		return fmt.Errorf("cannot listen on api.listen %s: %w", s.cfg.listen(), err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute, // a 10,000-event timeline can take a while to read
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         s.fresh.ConnState,
	}
	s.served = make(chan struct{})
	go func(srv *http.Server, served chan struct{}) {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	}(s.srv, s.served)
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("api listening", "addr", ln.Addr().String(), "scheme", scheme, "auth", len(s.tokens) > 0)
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests until ctx ends, then
// closes what is left. Safe to call twice and without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return nil
	}
	s.shutdown = true
	if s.srv == nil {
		return nil
	}
	s.fresh.Close()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("cannot drain api server: %w", err), s.srv.Close())
	}
	<-s.served
	return err
}

// auth requires a configured bearer token when there are any.
func (s *Server) auth(h http.HandlerFunc) http.Handler {
	if len(s.tokens) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.validToken(token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		h(w, r)
	})
}

// validToken compares hashes in constant time and checks every token, so neither the length
// nor the position of a match leaks through timing.
func (s *Server) validToken(token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range s.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], s.tokens[i][:])
	}
	return token != "" && ok == 1
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument counts requests by the mux pattern that served them (the mux sets r.Pattern),
// which keeps the route label bounded whatever paths clients send.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := "unmatched"
		if r.Pattern != "" {
			_, route, _ = strings.Cut(r.Pattern, " ")
		}
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// storeFailed logs the detail and answers a generic 500: store errors may carry SQL or paths.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		s.log.Debug("api request cancelled", "route", r.Pattern, "err", err)
	} else {
		s.log.Error("api store query failed", "route", r.Pattern, "err", err)
	}
	writeError(w, http.StatusInternalServerError, "internal error querying the store; see the mcpwatch log")
}

// nonNil makes empty lists encode as [] rather than null, so clients need no null checks.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// e.g. a NaN score from the store; answer something a client can parse.
		code = http.StatusInternalServerError
		body, _ = json.Marshal(ErrorResponse{Error: "cannot encode response: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}
