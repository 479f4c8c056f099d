package otlp

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

type metrics struct {
	requests     *prometheus.CounterVec // export requests, by transport and outcome
	received     *prometheus.CounterVec // spans received, by transport
	events       *prometheus.CounterVec // MCP spans turned into events, by dialect
	deduplicated prometheus.Counter     // MCP spans dropped for the other side's span of their call
	ignored      prometheus.Counter     // spans that are not MCP
	rejected     *prometheus.CounterVec // MCP spans that could not be used, by reason
}

// Outcomes of an export request (the requests metric's label).
const (
	outcomeOK              = "ok"
	outcomeUnauthenticated = "unauthenticated"
	outcomeBadRequest      = "bad_request"
	outcomeTooLarge        = "too_large"
	outcomeUnsupported     = "unsupported_media_type"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "mcpwatch", Subsystem: "otlp", Name: name, Help: help}
	}
	return &metrics{
		requests: pipeline.Register(reg, prometheus.NewCounterVec(opts("requests_total",
			"OTLP export requests, by transport (grpc, http) and outcome."), []string{"transport", "outcome"})),
		received: pipeline.Register(reg, prometheus.NewCounterVec(opts("spans_received_total",
			"Spans received in export requests that could be decoded, by transport."), []string{"transport"})),
		events: pipeline.Register(reg, prometheus.NewCounterVec(opts("events_total",
			"MCP spans turned into events, by the attribute dialect that recognised them."), []string{"dialect"})),
		deduplicated: pipeline.Register(reg, prometheus.NewCounter(opts("spans_deduplicated_total",
			"MCP spans not turned into events because the span of the other end of the same call was."))),
		ignored: pipeline.Register(reg, prometheus.NewCounter(opts("spans_ignored_total",
			"Spans that do not describe an MCP operation."))),
		rejected: pipeline.Register(reg, prometheus.NewCounterVec(opts("spans_rejected_total",
			"MCP spans that could not be turned into events (reported to the sender as rejected), by reason."), []string{"reason"})),
	}
}
