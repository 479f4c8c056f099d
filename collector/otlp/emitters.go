package otlp

import (
	"strings"
)

// What real emitters put on their spans, and where that was read (2026-11). The receiver
// recognises a span as MCP by the first rule that matches, in this order:
//
//  1. OpenTelemetry MCP semantic conventions (semantic-conventions-genai, docs/gen-ai/mcp.md and
//     model/mcp/spans.yaml): mcp.method.name, gen_ai.tool.name, gen_ai.prompt.name,
//     mcp.resource.uri, jsonrpc.request.id, error.type (JSON-RPC code as text, or tool_error),
//     rpc.response.status_code, mcp.protocol.version, mcp.session.id, network.transport
//     (pipe, tcp), server.address/port, client.address/port, opt-in gen_ai.tool.call.arguments
//     and gen_ai.tool.call.result. Spans are named "{mcp.method.name} {target}".
//  2. traceloop / OpenLLMetry (traceloop/openllmetry,
//     packages/opentelemetry-instrumentation-mcp: instrumentation.py, fastmcp_instrumentation.py).
//     Tracer scope "opentelemetry.instrumentation.mcp…". Client tools/call spans are named
//     "{tool}.tool" with traceloop.span.kind=tool, traceloop.entity.name={tool},
//     traceloop.entity.input={"tool_name":…,"arguments":{…}} and
//     traceloop.entity.output={"result":…,"is_error":true}; other client requests are spans
//     named "{method}.mcp" without a span kind attribute. On FastMCP servers a wrapper span
//     "mcp.server" (traceloop.span.kind=server) holds the "{tool}.tool" span, which carries
//     traceloop.workflow.name="{server}.mcp". The wrapper repeats the tool span, so it is ignored.
//     The traceloop SDK's own @tool spans use traceloop.span.kind=tool too, but another scope:
//     they are not MCP and are ignored.
//  3. mcp.method (non-standard): Pomerium records mcp-method / mcp-tool / mcp-tool-parameters
//     for each authorize check (pomerium/pomerium#5668, authorize/evaluator/mcp.go); its span
//     attributes are said to be mcp.method / mcp.tool (the code read here only showed the log
//     fields), which is what is matched. Yokai's fxmcpserver (ankorstore/yokai, on mark3labs
//     mcp-go) names spans "MCP {method} {target}" with mcp.method, mcp.tool, mcp.transport;
//     tracing hooks written for mark3labs/mcp-go use mcp.method (or mcp.method.name) with
//     mcp.tool.name and mcp.session.id (mark3labs/mcp-go has hooks, not spans of its own).
//  4. Docker MCP Gateway (docker/mcp-gateway, pkg/telemetry/telemetry.go, pkg/gateway/handlers.go):
//     tracer "github.com/docker/mcp-gateway", service.name docker-mcp-gateway. CLIENT spans
//     "mcp.tool.call" (mcp.tool.name, mcp.server.name, mcp.server.type), "mcp.prompt.get"
//     (mcp.prompt.name), "mcp.resource.read" (mcp.resource.uri, mcp.server.origin),
//     "mcp.resource_template.read" (mcp.resource_template.uri); SERVER spans "mcp.initialize"
//     and "mcp.list.{tools,prompts,resources,resourceTemplates}" (mcp.list.type). Failures set
//     the span status to Error. mcp.client.name is on its metrics and taken when on a span.
//  5. IBM ContextForge (IBM/mcp-context-forge, mcpgateway/observability.py and
//     docs/manage/observability): spans "tool.invoke" (tool.name), "prompt.render"
//     (prompt.name, prompt.id), "resource.read" (resource.uri), "tool.list", "prompt.list",
//     "resource.list", "resource_template.list"; error=true plus span status Error on failure.
//     Other builds use mcp.tool.name and mcp.session_id. "tool.invoke" and friends are generic
//     names, so they count only with their name attribute present.
//  6. Span names alone: "{method} {target}" or "MCP {method} {target}" where method is a known
//     MCP method with a slash in it (tools/call, resources/read, notifications/…). A bare
//     "initialize" or "ping" span name is too common to count.
//
// Everything else is ignored (not rejected): a receiver fed a whole application's traces sees
// mostly spans that are not MCP.

// Dialects name the rule that recognised a span; they label the events metric.
const (
	dialectSemconv      = "semconv"
	dialectTraceloop    = "traceloop"
	dialectPomerium     = "pomerium"  // mcp.method with mcp.tool (also Yokai)
	dialectMark3labs    = "mark3labs" // mcp.method with mcp.tool.name
	dialectDocker       = "docker"
	dialectContextForge = "contextforge"
	dialectSpanName     = "span_name"
)

// traceloopScope prefixes the instrumentation scope of traceloop's MCP instrumentation.
const traceloopScope = "opentelemetry.instrumentation.mcp"

// Attribute keys, grouped by what they say; the first one set wins.
var (
	keysMethod          = []string{"mcp.method.name"}
	keysLegacyMethod    = []string{"mcp.method"}
	keysTool            = []string{"gen_ai.tool.name", "mcp.tool.name", "mcp.tool", "tool.name"}
	keysPrompt          = []string{"gen_ai.prompt.name", "mcp.prompt.name", "prompt.name", "prompt.id"}
	keysResource        = []string{"mcp.resource.uri", "mcp.resource_template.uri", "resource.uri"}
	keysRequestID       = []string{"jsonrpc.request.id", "rpc.jsonrpc.request_id", "mcp.request.id"}
	keysSession         = []string{"mcp.session.id", "mcp.session_id"}
	keysProtocolVersion = []string{"mcp.protocol.version", "mcp.protocol_version"}
	keysServerName      = []string{"mcp.server.name", "mcp.server.origin"}
	keysClientName      = []string{"mcp.client.name"}
	keysClientVersion   = []string{"mcp.client.version"}
	keysAgent           = []string{"gen_ai.agent.id", "gen_ai.agent.name"}
	keysTransport       = []string{"network.transport", "mcp.transport"}
)

// dockerSpans maps Docker MCP Gateway span names to MCP methods.
var dockerSpans = map[string]string{
	"mcp.tool.call":              "tools/call",
	"mcp.prompt.get":             "prompts/get",
	"mcp.resource.read":          "resources/read",
	"mcp.resource_template.read": "resources/read",
	"mcp.initialize":             "initialize",
	"mcp.list.tools":             "tools/list",
	"mcp.list.prompts":           "prompts/list",
	"mcp.list.resources":         "resources/list",
	"mcp.list.resourceTemplates": "resources/templates/list",
}

// contextForgeSpans maps ContextForge span names to MCP methods, with the attributes that must
// be present for the span to count (none for the list spans, whose names are specific enough).
var contextForgeSpans = map[string]struct {
	method string
	needs  []string
}{
	"tool.invoke":            {"tools/call", []string{"tool.name", "mcp.tool.name"}},
	"prompt.render":          {"prompts/get", []string{"prompt.name", "prompt.id"}},
	"resource.read":          {"resources/read", []string{"resource.uri"}},
	"tool.list":              {"tools/list", nil},
	"prompt.list":            {"prompts/list", nil},
	"resource.list":          {"resources/list", nil},
	"resource_template.list": {"resources/templates/list", nil},
}

// knownMethods are the MCP request methods (every revision up to 2026-07-28); notifications are
// recognised by their prefix.
var knownMethods = map[string]bool{
	"initialize": true, "ping": true,
	"tools/list": true, "tools/call": true,
	"prompts/list": true, "prompts/get": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"completion/complete": true, "logging/setLevel": true,
	"sampling/createMessage": true, "elicitation/create": true, "roots/list": true,
	"tasks/get": true, "tasks/result": true, "tasks/list": true, "tasks/cancel": true,
	"server/discover": true, "subscriptions/listen": true,
}

// serverInitiated are the methods the MCP server sends to the client.
var serverInitiated = map[string]bool{
	"sampling/createMessage": true, "elicitation/create": true, "roots/list": true,
	"notifications/message": true, "notifications/resources/updated": true,
	"notifications/resources/list_changed": true, "notifications/tools/list_changed": true,
	"notifications/prompts/list_changed": true, "notifications/elicitation/complete": true,
}

func isNotification(method string) bool { return strings.HasPrefix(method, "notifications/") }

// parseSpanName reads "{method} {target}" or "MCP {method} {target}" span names.
func parseSpanName(name string) (method, target string, ok bool) {
	s := strings.TrimPrefix(strings.TrimSpace(name), "MCP ")
	method, target, _ = strings.Cut(s, " ")
	if !strings.Contains(method, "/") || (!knownMethods[method] && !isNotification(method)) {
		return "", "", false
	}
	return method, strings.TrimSpace(target), true
}

// normalTransport maps what spans say about the transport onto the names the taps use; values
// it does not know are kept as reported.
func normalTransport(v string) string {
	switch strings.ToLower(v) {
	case "pipe", "stdio":
		return "stdio"
	case "tcp", "http", "streamable_http", "streamable-http", "streamablehttp":
		return "streamable_http"
	case "sse":
		return "sse"
	}
	return v
}
