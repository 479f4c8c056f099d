package pipeline

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Component is a long-running part of mcpwatch (a stage, the API, the writer).
//
// Start returns quickly once the component is running; background work stops when Shutdown is
// called, not when Start's ctx ends. Shutdown drains in-flight work until ctx expires, and is
// safe to call twice and without Start.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Settings are the process-wide facilities handed to every constructor; never globals.
type Settings struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// WithComponent returns a copy whose logger carries component=name.
func (s Settings) WithComponent(name string) Settings {
	l := s.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	s.Logger = l.With("component", name)
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	return s
}

// EventEmitter accepts events from a collector. Emit never blocks the caller on I/O: an
// implementation queues, spools or (as a last resort) counts a drop.
type EventEmitter interface {
	Emit(e schemas.Event)
}

// NowEmitter is an EventEmitter that can also take an event without waiting for anything (a
// spool's disk above all), for a caller on a path that must not wait: the HTTP tap when its
// own queue is full.
type NowEmitter interface {
	EmitNow(e schemas.Event)
}

// Register registers c on reg and returns it, or returns the collector already registered under
// the same descriptor, so components sharing a metric (with different label values) can each
// ask for it.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic("BUG: cannot register metric: " + err.Error())
	}
	return c
}
