package httptap

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests       *prometheus.CounterVec // HTTP requests proxied, by upstream and HTTP method
	events         *prometheus.CounterVec // events emitted, by status
	malformed      *prometheus.CounterVec // unparsable traffic, by direction
	upstreamErrors *prometheus.CounterVec // upstream unreachable or failing mid-request
	untracked      *prometheus.CounterVec // messages that could not be paired, by reason
	inlineEvents   prometheus.Counter     // events built on a call's goroutine: the emit queue was full
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mcpwatch", Subsystem: "httptap", Name: "requests_total",
			Help: "HTTP requests proxied to MCP servers.",
		}, []string{"upstream", "method"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mcpwatch", Subsystem: "httptap", Name: "events_total",
			Help: "Events emitted, by status.",
		}, []string{"status"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mcpwatch", Subsystem: "httptap", Name: "malformed_total",
			Help: "Bodies or SSE events passed through unparsed (not JSON-RPC, or too large), by direction.",
		}, []string{"direction"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mcpwatch", Subsystem: "httptap", Name: "upstream_errors_total",
			Help: "Requests the upstream MCP server could not be reached for.",
		}, []string{"upstream"}),
		untracked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mcpwatch", Subsystem: "httptap", Name: "untracked_messages_total",
			Help: "Messages the tap could not pair: responses to unknown or expired requests, requests over the pending limit.",
		}, []string{"reason"}),
		inlineEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mcpwatch", Subsystem: "httptap", Name: "events_built_inline_total",
			Help: "Events built and handed to the bus on the call's own goroutine because the emit queue was full (the bus falls behind the traffic); each adds that work to the call's latency.",
		}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err == nil {
		m.events, err = register(reg, m.events)
	}
	if err == nil {
		m.malformed, err = register(reg, m.malformed)
	}
	if err == nil {
		m.upstreamErrors, err = register(reg, m.upstreamErrors)
	}
	if err == nil {
		m.untracked, err = register(reg, m.untracked)
	}
	if err == nil {
		m.inlineEvents, err = register(reg, m.inlineEvents)
	}
	return m, err
}

// register registers c, or returns the collector already registered with the same description
// so that two taps sharing a registry share their counters.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("cannot register httptap metrics: %w", err)
	}
	return c, nil
}
