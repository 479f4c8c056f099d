// Package otlp is mcpwatch's collector for applications that are already traced: an OTLP trace
// receiver (OTLP/gRPC TraceService/Export, and OTLP/HTTP POST /v1/traces in protobuf or JSON,
// optionally gzip-compressed) that turns the spans describing an MCP operation into
// schemas.Events, one per operation. Spans that follow the OpenTelemetry MCP semantic
// conventions are read as the conventions say; spans from emitters that name things their own
// way (Docker MCP Gateway, Pomerium, IBM ContextForge, mark3labs mcp-go hooks,
// traceloop/OpenLLMetry) are recognised by their attributes, span names and instrumentation
// scopes (emitters.go lists what each emits and where that was read). Every other span is
// ignored; an MCP span that cannot be used (invalid ids or times) is reported back to the
// sender as rejected in an OTLP partial success.
//
// Opt-in payload attributes (gen_ai.tool.call.arguments / result, traceloop.entity.input /
// output) become the arguments' shape and hashes, as with the taps; their values travel as the
// event's Content only as the capture policy says (masked and cut at collector.inspection_max_bytes
// for the enricher's inspection, kept where a collector.capture rule opts the server or tool in).
// An event's id is derived from the span's trace and span ids, so a span an exporter retries is
// stored once.
//
// One call traced on both ends (the caller's span, usually the agent's CLIENT span, and the
// other end's SERVER span, whose parent it is) becomes one event, the caller's: a SERVER span
// with a parent is held for a short window (calls.go) until the caller's span arrives, and is
// emitted alone only if none does.
// Events whose spans carry no session id (the stateless 2026-07-28 revision) get one stitched by
// identity.Stitcher, with the HTTP tap's rule (collector.sessions).
//
// Attribution: the process that reported a span is the agent's side for a CLIENT span of a
// client request (or a SERVER span of a server request), and the MCP server's side otherwise.
// The agent is the span's gen_ai.agent.id/name, else on the agent's side the resource's
// gen_ai.agent.id/name, else the MCP client's name (mcp.client.name), else on the agent's side
// the resource's service.name (AgentSource otlp_span, otlp_resource, client_info); the server is
// mcp.server.name, else on the server's side the resource's service.name, else
// server.address[:port].
//
// The receiver is opt-in (Config.Enabled), listens on loopback by default, and can require TLS,
// client certificates (mTLS) and bearer tokens. Metrics (prometheus, on settings.Registry):
// mcpwatch_otlp_requests_total{transport,outcome}, mcpwatch_otlp_spans_received_total{transport},
// mcpwatch_otlp_events_total{dialect}, mcpwatch_otlp_spans_deduplicated_total,
// mcpwatch_otlp_spans_ignored_total and mcpwatch_otlp_spans_rejected_total{reason}.
package otlp
