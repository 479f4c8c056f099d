package schemas

import (
	"slices"
	"strings"
	"time"
)

// EventSchemaVersion is the value of Event.SchemaVersion for events written by this code.
const EventSchemaVersion = 1

// Source names the collector that observed an event.
type Source string

const (
	SourceHTTPTap  Source = "httptap"
	SourceStdioTap Source = "stdiotap"
	SourceOTLP     Source = "otlp"
)

// Direction says who sent the request or notification an event describes.
type Direction string

const (
	ClientToServer Direction = "c2s"
	ServerToClient Direction = "s2c"
)

// Kind is the JSON-RPC shape of the operation.
type Kind string

const (
	KindRequest      Kind = "request"      // a request paired with its response or timeout
	KindNotification Kind = "notification" // a one-way message
	KindUnparsed     Kind = "unparsed"     // traffic the collector could not parse
)

// Status is the outcome of an operation.
type Status string

const (
	StatusOK        Status = "ok"
	StatusError     Status = "error"      // a JSON-RPC error response, or an HTTP error
	StatusToolError Status = "tool_error" // a tools/call result with isError: true
	StatusTimeout   Status = "timeout"    // no response before the deadline
	StatusMalformed Status = "malformed"  // the collector could not parse the traffic
)

// Event v1 is one MCP operation, like an OpenTelemetry span: a request paired with its response
// (or its timeout), or a notification. Collectors fill the observation; the enricher adds
// identity resolution, labels and flags.
type Event struct {
	// ID is unique per event and sorts by time (a UUIDv7).
	ID string `json:"event_id"`
	// SchemaVersion is EventSchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// ObservedAt is when the collector saw the request (or the notification).
	ObservedAt time.Time `json:"observed_at"`
	// CollectorID names the collector instance that observed the event.
	CollectorID string `json:"collector_id"`
	// Source is the kind of collector.
	Source Source `json:"source"`
	// Transport is the MCP transport: streamable_http, sse, stdio, or what an OTLP span reported.
	Transport string `json:"transport"`
	// ProtocolVersion is the negotiated MCP protocol revision, when known.
	ProtocolVersion string `json:"protocol_version,omitempty"`

	// AgentID is the agent the operation is attributed to; the bus key.
	AgentID string `json:"agent_id"`
	// AgentSource says how AgentID was attributed: mtls, jwt, jwt_unverified, header, baggage,
	// client_info, or unknown.
	AgentSource string `json:"agent_source"`
	// DeclaredAgent is the agent id a client declared in the agent-id header, if any.
	DeclaredAgent string `json:"declared_agent,omitempty"`
	// ClientName and ClientVersion come from the client's clientInfo.
	ClientName    string `json:"client_name,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
	// ServerID names the MCP server (the upstream route name for the HTTP tap).
	ServerID string `json:"server_id"`
	// SessionID is the MCP session the operation belongs to.
	SessionID string `json:"session_id,omitempty"`

	// JSONRPCID is the canonical JSON text of the request's JSON-RPC id (jsonrpc.CanonicalID;
	// empty for notifications).
	JSONRPCID string    `json:"jsonrpc_id,omitempty"`
	Direction Direction `json:"direction"`
	Kind      Kind      `json:"kind"`
	// Method is the JSON-RPC method, e.g. tools/call.
	Method string `json:"method,omitempty"`
	// Target is the tool or prompt name, or the resource URI, the operation names.
	Target string `json:"target,omitempty"`
	Status Status `json:"status"`
	// ErrorCode is the JSON-RPC error code (or the HTTP status for transport errors).
	ErrorCode int `json:"error_code,omitempty"`
	// LatencyMicros is the time from request to response in microseconds.
	LatencyMicros int64 `json:"latency_us"`
	// RequestBytes and ResponseBytes are the sizes of the JSON-RPC messages on the wire.
	RequestBytes  int `json:"request_bytes"`
	ResponseBytes int `json:"response_bytes"`

	// ArgsShape is the shape of the arguments: keys and JSON types, never values.
	ArgsShape string `json:"args_shape,omitempty"`
	// ArgsHash and ResultHash are hex SHA-256 prefixes of the canonical arguments and result.
	ArgsHash   string `json:"args_hash,omitempty"`
	ResultHash string `json:"result_hash,omitempty"`

	// TraceID and SpanID are W3C trace context carried in params._meta, when present.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`

	// Content is the operation's arguments and result, size-capped and with secrets masked, for
	// the enricher's inspection on mcp.events. The enricher drops it before mcp.events.enriched
	// unless Captured, so only content an operator opted in to capture is ever stored.
	Content *Content `json:"content,omitempty"`

	// Labels are key/value context added by the enricher (team, environment, …).
	Labels map[string]string `json:"labels,omitempty"`
	// Flags are findings added by the enricher's inspection.
	Flags []Flag `json:"flags,omitempty"`
}

// Flag is one finding about an event's content or context.
type Flag struct {
	// Type names the finding, e.g. injection_phrase, secret, hidden_unicode.
	Type string `json:"type"`
	// Severity is one of the Severity values.
	Severity Severity `json:"severity"`
	// Path is the JSON path where the finding was made, e.g. $.arguments.query or $.result.content[0].text (the inspected content, see docs/inspection.md).
	Path string `json:"path,omitempty"`
	// Evidence describes the finding without revealing sensitive content (offsets, lengths, hashes).
	Evidence string `json:"evidence,omitempty"`
}

// Content is an operation's arguments and result as compact JSON text, with secrets masked
// ("***") and each cut at a size cap.
type Content struct {
	// Arguments is what ArgsShape describes, as JSON text.
	Arguments string `json:"arguments,omitempty"`
	// Result is the response's result, or its error object, as JSON text.
	Result string `json:"result,omitempty"`
	// Truncated says Arguments or Result was cut at the cap (and is then not valid JSON).
	Truncated bool `json:"truncated,omitempty"`
	// Captured says an operator opted in to capture this server or tool: the content may be
	// stored. Without it, content only travels on mcp.events for inspection.
	Captured bool `json:"captured,omitempty"`
}

// LabelTags is the event label holding the tags of the agent, server and tool involved
// (inventory and policy tool tags), comma-separated; anomalies raised by the event carry them
// in Anomaly.Tags.
const LabelTags = "tags"

// TagsOf returns the event's tags label as Anomaly.Tags wants them: trimmed, sorted, without
// duplicates or empties; nil when there are none.
func TagsOf(ev *Event) []string {
	v := ev.Labels[LabelTags]
	if v == "" {
		return nil
	}
	var tags []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return slices.Compact(tags)
}
