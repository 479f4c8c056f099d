package otlp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Agent attribution sources (Event.AgentSource) of OTLP events, besides client_info and unknown.
const (
	// AgentFromResource: gen_ai.agent.id / gen_ai.agent.name or service.name of the resource
	// that reported the span, when that resource is the agent's side of the call.
	AgentFromResource = "otlp_resource"
	// AgentFromSpan: gen_ai.agent.id / gen_ai.agent.name on the span itself.
	AgentFromSpan   = "otlp_span"
	agentClientInfo = "client_info"
	agentUnknown    = "unknown"
)

// Reasons an MCP span is rejected (the rejected metric's label).
const (
	rejectBadTraceID = "invalid_trace_id"
	rejectBadSpanID  = "invalid_span_id"
	rejectBadTime    = "invalid_time" // no start, an end before the start, or past 2262
)

// spanInput is one span with what surrounds it in the request.
type spanInput struct {
	span     *tracepb.Span
	attrs    attrMap
	resource attrMap
	scope    string
	role     role // what the reporting process is in the MCP session, when known
}

// result is what became of one span.
type result struct {
	ev schemas.Event
	eventMeta
	reject string // why an MCP span could not be used; "" when ev is good
}

// eventMeta is what the receiver needs to know of an event's span besides the event.
type eventMeta struct {
	dialect  string // "" when the span is not MCP
	instance string // the client instance of the session stitching key
	side     side   // the part the span plays in a call traced on both ends (calls.go)
	call     callKey
}

// batch is what became of one export request.
type batch struct {
	events   []schemas.Event
	meta     []eventMeta // per event
	spans    int
	ignored  int
	rejected map[string]int
}

func (b *batch) rejectedTotal() int {
	n := 0
	for _, c := range b.rejected {
		n += c
	}
	return n
}

// normalizer turns spans into events. It holds no state besides the collector id.
type normalizer struct {
	collectorID string
	capture     *capture.Policy // what of the payload attributes events carry (nil: nothing)
}

// request converts every span of an export request (TracesData is ExportTraceServiceRequest
// on the wire).
func (n normalizer) request(req *tracepb.TracesData) batch {
	var b batch
	var spans []classified
	for ri, rs := range req.GetResourceSpans() {
		res := newAttrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, sp := range ss.GetSpans() {
				in := spanInput{span: sp, attrs: newAttrMap(sp.GetAttributes()), resource: res, scope: scope}
				m, ok := classify(in)
				spans = append(spans, classified{in: in, m: m, mcp: ok, resource: ri})
			}
		}
	}
	setSenderRoles(spans)
	for _, c := range spans {
		b.spans++
		if !c.mcp {
			b.ignored++
			continue
		}
		r := n.event(c.in, c.m)
		if r.reject != "" {
			if b.rejected == nil {
				b.rejected = map[string]int{}
			}
			b.rejected[r.reject]++
			continue
		}
		b.events = append(b.events, r.ev)
		b.meta = append(b.meta, r.eventMeta)
	}
	return b
}

// match is what classify learnt about a span that is MCP.
type match struct {
	method, target string
	dialect        string
}

// classify decides whether a span describes an MCP operation, and which.
func classify(in spanInput) (match, bool) {
	a, name := in.attrs, in.span.GetName()
	nameMethod, nameTarget, nameOK := parseSpanName(name)
	// The span name's target counts only when it names the same method.
	withTarget := func(m match) (match, bool) {
		if m.target == "" {
			m.target = targetFor(m.method, a)
		}
		if m.target == "" && nameOK && nameMethod == m.method {
			m.target = nameTarget
		}
		return m, true
	}
	if method := a.str(keysMethod...); method != "" {
		return withTarget(match{method: method, dialect: dialectSemconv})
	}
	if strings.HasPrefix(in.scope, traceloopScope) {
		return classifyTraceloop(in)
	}
	if method := a.str(keysLegacyMethod...); method != "" {
		d := dialectPomerium
		if a.has("mcp.tool.name") {
			d = dialectMark3labs
		}
		return withTarget(match{method: method, dialect: d})
	}
	if method, ok := dockerSpans[name]; ok {
		if name == "mcp.initialize" || strings.HasPrefix(name, "mcp.list.") {
			// Generic-looking names: only Docker's own tracer counts.
			if in.scope != "github.com/docker/mcp-gateway" && !a.has("mcp.list.type") {
				return match{}, false
			}
		}
		return withTarget(match{method: method, dialect: dialectDocker})
	}
	if cf, ok := contextForgeSpans[name]; ok && (cf.needs == nil || a.has(cf.needs...)) {
		return withTarget(match{method: cf.method, dialect: dialectContextForge})
	}
	if nameOK {
		return withTarget(match{method: nameMethod, dialect: dialectSpanName})
	}
	return match{}, false
}

// classifyTraceloop reads spans of traceloop's MCP instrumentation.
func classifyTraceloop(in spanInput) (match, bool) {
	name := in.span.GetName()
	if in.attrs.str("traceloop.span.kind") == "tool" {
		if tool := in.attrs.str("traceloop.entity.name"); tool != "" {
			return match{method: "tools/call", target: tool, dialect: dialectTraceloop}, true
		}
	}
	if method, ok := strings.CutSuffix(name, ".mcp"); ok && (knownMethods[method] || isNotification(method)) {
		return match{method: method, target: targetFor(method, in.attrs), dialect: dialectTraceloop}, true
	}
	return match{}, false
}

// targetFor returns what the attributes say the operation names, for the methods that name
// something.
func targetFor(method string, a attrMap) string {
	switch method {
	case "tools/call":
		return a.str(keysTool...)
	case "prompts/get":
		return a.str(keysPrompt...)
	case "resources/read", "resources/subscribe", "resources/unsubscribe", "notifications/resources/updated":
		return a.str(keysResource...)
	}
	return ""
}

// span converts one span on its own (request reads a span's role from the others around it).
func (n normalizer) span(in spanInput) result {
	m, ok := classify(in)
	if !ok {
		return result{}
	}
	return n.event(in, m)
}

// event converts one MCP span.
func (n normalizer) event(in spanInput, m match) result {
	sp := in.span
	r := result{eventMeta: eventMeta{dialect: m.dialect}}
	switch {
	case !validID(sp.GetTraceId(), 16):
		r.reject = rejectBadTraceID
	case !validID(sp.GetSpanId(), 8):
		r.reject = rejectBadSpanID
	case sp.GetStartTimeUnixNano() == 0 || sp.GetEndTimeUnixNano() < sp.GetStartTimeUnixNano() ||
		sp.GetEndTimeUnixNano() > math.MaxInt64:
		r.reject = rejectBadTime
	}
	if r.reject != "" {
		return r
	}

	a := in.attrs
	start := time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC()
	dir := direction(m.method, sp.GetKind(), in.role)
	kind := schemas.KindRequest
	if isNotification(m.method) {
		kind = schemas.KindNotification
	}
	ev := schemas.Event{
		ID:              eventID(sp.GetTraceId(), sp.GetSpanId(), start),
		SchemaVersion:   schemas.EventSchemaVersion,
		ObservedAt:      start,
		CollectorID:     n.collectorID,
		Source:          schemas.SourceOTLP,
		Transport:       normalTransport(a.str(keysTransport...)),
		ProtocolVersion: a.str(keysProtocolVersion...),
		ClientName:      a.str(keysClientName...),
		ClientVersion:   a.str(keysClientVersion...),
		SessionID:       a.str(keysSession...),
		Direction:       dir,
		Kind:            kind,
		Method:          m.method,
		Target:          m.target,
		LatencyMicros:   int64(sp.GetEndTimeUnixNano()-sp.GetStartTimeUnixNano()) / 1000,
		TraceID:         hex.EncodeToString(sp.GetTraceId()),
		SpanID:          hex.EncodeToString(sp.GetSpanId()),
	}
	if kind == schemas.KindRequest {
		ev.JSONRPCID = jsonrpcID(a, keysRequestID...)
	}
	agentSide := isAgentSide(in, dir)
	ev.AgentID, ev.AgentSource = attributeAgent(in, agentSide, ev.ClientName)
	ev.ServerID = serverID(in, agentSide)
	r.instance = clientInstance(in, agentSide)
	switch {
	case sp.GetKind() != tracepb.Span_SPAN_KIND_SERVER:
		r.side, r.call = sideCaller, newCallKey(sp.GetTraceId(), sp.GetSpanId())
	case validID(sp.GetParentSpanId(), 8):
		r.side, r.call = sideCallee, newCallKey(sp.GetTraceId(), sp.GetParentSpanId())
	}

	var args, res []byte
	toolError := false
	if m.dialect == dialectTraceloop {
		args, res, toolError = traceloopPayload(a)
	} else {
		args, res = jsonText(a["gen_ai.tool.call.arguments"]), jsonText(a["gen_ai.tool.call.result"])
	}
	// The shape and hashes of payloads are kept; their values travel only as the capture
	// policy says (masked and capped for inspection, stored only where captured).
	ev.ArgsShape, ev.ArgsHash = jsonrpc.ShapeAndHash(args)
	if d := n.capture.Decide(ev.ServerID, ev.Method, ev.Target); d.MaxBytes > 0 {
		if text, cut := capture.Mask(args, d.MaxBytes, ""); text != "" {
			ev.Content = &schemas.Content{Arguments: text, Truncated: cut, Captured: d.Captured}
		}
		if len(res) > 0 {
			ev.Content = d.WithResult(ev.Content, res, nil)
		}
	}
	ev.ResultHash = jsonrpc.Hash(res)
	ev.Status, ev.ErrorCode = spanStatus(sp, a, toolError)
	if ev.Status != schemas.StatusOK && ev.Status != schemas.StatusToolError {
		ev.ResultHash = ""
	}
	r.ev = ev
	return r
}

// isAgentSide reports whether the process that reported the span is the agent's side of the
// call (so its resource describes the agent) rather than the MCP server's side.
func isAgentSide(in spanInput, dir schemas.Direction) bool {
	switch in.span.GetKind() {
	case tracepb.Span_SPAN_KIND_CLIENT:
		return dir == schemas.ClientToServer
	case tracepb.Span_SPAN_KIND_SERVER:
		return dir == schemas.ServerToClient
	}
	// Unspecified or internal kinds: the non-standard emitters are servers and gateways, except
	// traceloop on the client, which is the one without a "{server}.mcp" workflow.
	if strings.HasPrefix(in.scope, traceloopScope) {
		return !strings.HasSuffix(in.attrs.str("traceloop.workflow.name"), ".mcp")
	}
	return false
}

// attributeAgent names the agent: an agent id the span carries, else (on the agent's side) the
// reporting resource's agent id, else the MCP client's name, else (on the agent's side) the
// reporting service's name. Like every tap, it passes over names too long or not printable
// (identity.CleanAgent).
func attributeAgent(in spanInput, agentSide bool, clientName string) (id, source string) {
	if v := identity.CleanAgent(in.attrs.str(keysAgent...)); v != "" {
		return v, AgentFromSpan
	}
	if agentSide {
		if v := identity.CleanAgent(in.resource.str(keysAgent...)); v != "" {
			return v, AgentFromResource
		}
	}
	if v := identity.CleanAgent(clientName); v != "" {
		return v, agentClientInfo
	}
	if agentSide {
		// SDKs report "unknown_service[:process]" when nothing was configured; that names no one.
		if v := identity.CleanAgent(in.resource.str("service.name")); v != "" && !strings.HasPrefix(v, "unknown_service") {
			return v, AgentFromResource
		}
	}
	return agentUnknown, agentUnknown
}

// serverID names the MCP server: the name a gateway reports, else the reporting service's name
// when that is the server, else the address the client called.
func serverID(in spanInput, agentSide bool) string {
	if v := in.attrs.str(keysServerName...); v != "" {
		return v
	}
	if !agentSide {
		if wf, ok := strings.CutSuffix(in.attrs.str("traceloop.workflow.name"), ".mcp"); ok && wf != "" {
			return wf
		}
		if v := in.resource.str("service.name"); v != "" && !strings.HasPrefix(v, "unknown_service") {
			return v
		}
	}
	host := in.attrs.str("server.address")
	if host == "" {
		return ""
	}
	if port := in.attrs.str("server.port"); port != "" {
		return net.JoinHostPort(host, port)
	}
	return host
}

// clientInstance tells apart instances of one client for session stitching, as the client's IP
// address does for the HTTP tap: on the agent's side the reporting process (service.instance.id,
// else host.name), on the server's side the address the client called from.
func clientInstance(in spanInput, agentSide bool) string {
	if agentSide {
		return in.resource.str("service.instance.id", "host.name")
	}
	return in.attrs.str("client.address")
}

// spanStatus reads the outcome: tool_error for a tool result with isError, error with the JSON-RPC
// code when one is given, error for any other failure the span records.
func spanStatus(sp *tracepb.Span, a attrMap, toolError bool) (schemas.Status, int) {
	errType := a.str("error.type")
	if toolError || errType == "tool_error" {
		return schemas.StatusToolError, 0
	}
	for _, v := range []string{a.str("rpc.response.status_code"), errType} {
		if code, err := strconv.Atoi(v); err == nil && code != 0 {
			return schemas.StatusError, code
		}
	}
	if errType != "" || sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		return schemas.StatusError, 0
	}
	return schemas.StatusOK, 0
}

// traceloopPayload reads traceloop's entity input ({"tool_name":…,"arguments":{…}}) and output
// ({"result":…,"is_error":true}).
func traceloopPayload(a attrMap) (args, res []byte, toolError bool) {
	var in struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if raw := jsonText(a["traceloop.entity.input"]); json.Unmarshal(raw, &in) == nil {
		args = in.Arguments
	}
	res = jsonText(a["traceloop.entity.output"])
	var out struct {
		IsError bool `json:"is_error"`
	}
	if json.Unmarshal(res, &out) == nil {
		toolError = out.IsError
	}
	return args, res, toolError
}

// jsonrpcID renders a request id the way Event.JSONRPCID holds it (JSON text): numbers as they
// are, anything else as a JSON string. The conventions record ids as text, so an id that looks
// like an integer is taken to be one.
func jsonrpcID(a attrMap, keys ...string) string {
	s := a.str(keys...)
	if s == "" {
		return ""
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
		return s
	}
	b, err := json.Marshal(s)
	if err != nil {
		return ""
	}
	return string(b)
}

func validID(id []byte, n int) bool {
	return len(id) == n && !bytes.Equal(id, make([]byte, n))
}

// eventID derives a UUIDv7 from the span: its millisecond timestamp is the span's start and its
// random bits a hash of the trace and span ids, so a span an exporter sends twice (OTLP
// exporters retry) becomes the same event id, and the store keeps it once.
func eventID(traceID, spanID []byte, start time.Time) string {
	var u uuid.UUID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(start.UnixMilli()))
	copy(u[:6], ms[2:])
	h := sha256.Sum256(append(append([]byte{}, traceID...), spanID...))
	copy(u[6:], h[:10])
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u.String()
}
