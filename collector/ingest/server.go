package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/freshconn"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Server serves the ingest endpoint on a listener of its own, for a collector that runs
// without the HTTP tap. It is a pipeline.Component.
type Server struct {
	listen    string
	h         http.Handler
	log       *slog.Logger
	tlsConfig *tls.Config // nil for plain HTTP

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	stopped bool
	fresh   freshconn.Tracker // connections that sent no request, for Shutdown to close
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithTLS serves HTTPS with cfg (nil keeps plain HTTP). With cfg.ClientAuth requiring a
// verified certificate, clients without one fail the handshake and never reach the endpoint.
func WithTLS(cfg *tls.Config) ServerOption {
	return func(s *Server) { s.tlsConfig = cfg }
}

// NewServer returns a server for h on listen (host:port).
func NewServer(listen string, h http.Handler, set pipeline.Settings, opts ...ServerOption) *Server {
	s := &Server{listen: listen, h: h, log: set.WithComponent("ingest").Logger}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.stopped {
		return errors.New("cannot start ingest server: already started or shut down")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s.h)
	s.ln, s.done = ln, make(chan struct{})
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ReadTimeout:       time.Minute, // a body trickling in cannot hold a connection forever
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig:         s.tlsConfig,
		ConnState:         s.fresh.ConnState,
	}
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		serve := srv.Serve
		if srv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ingest server stopped serving", "err", err)
		}
	}(s.srv, s.done)
	scheme := "http"
	if s.tlsConfig != nil {
		scheme = "https"
	}
	s.log.Info("event ingest listening", "url", scheme+"://"+ln.Addr().String()+Path,
		"mtls", s.tlsConfig != nil && s.tlsConfig.ClientCAs != nil)
	return nil
}

// Addr is the listening address once started, else "".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting requests and waits for those in flight until ctx ends. Safe to
// call twice and without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	s.fresh.Close()
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("cannot drain ingest requests: %w", err)
	}
	<-done
	return err
}
