package otlp

import (
	"slices"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// role is what the process that reported a span is in its MCP session.
type role uint8

const (
	roleUnknown role = iota
	roleClient
	roleServer
)

// eitherSide are the messages both client and server send. The conventions give the sender a
// CLIENT span and the receiver a SERVER span, whichever end each is, so a span of one of these
// says who sent it only together with what its reporting process is.
var eitherSide = map[string]bool{"ping": true, "notifications/progress": true, "notifications/cancelled": true}

// direction tells who sent the message a span describes; r is what the span's reporting
// process is, when known.
func direction(method string, kind tracepb.Span_SpanKind, r role) schemas.Direction {
	switch {
	case serverInitiated[method]:
		return schemas.ServerToClient
	case !eitherSide[method]:
		return schemas.ClientToServer
	}
	sender := roleUnknown
	switch kind {
	case tracepb.Span_SPAN_KIND_CLIENT:
		sender = r
	case tracepb.Span_SPAN_KIND_SERVER:
		sender = r.peer()
	}
	switch {
	case sender == roleServer:
		return schemas.ServerToClient
	case sender == roleUnknown && method == "notifications/progress":
		// Progress nearly always comes from a server working on a client's request;
		// cancellations and pings mostly from the client.
		return schemas.ServerToClient
	}
	return schemas.ClientToServer
}

func (r role) peer() role {
	switch r {
	case roleClient:
		return roleServer
	case roleServer:
		return roleClient
	}
	return roleUnknown
}

// roleOf is what the reporter of a span of method is, as its kind and the method tell alone:
// the sender of a message only one side sends, or its receiver.
func roleOf(method string, kind tracepb.Span_SpanKind) role {
	if eitherSide[method] || (kind != tracepb.Span_SPAN_KIND_CLIENT && kind != tracepb.Span_SPAN_KIND_SERVER) {
		return roleUnknown
	}
	if serverInitiated[method] == (kind == tracepb.Span_SPAN_KIND_CLIENT) {
		return roleServer
	}
	return roleClient
}

// classified is one span of an export request with what classify found.
type classified struct {
	in       spanInput
	m        match
	mcp      bool // classify found it describes an MCP operation
	resource int  // index of its resource in the request
}

// setSenderRoles sets in.role for each span of an export request that describes a message
// either side sends: what its parent span in the same process says (a server reports its
// progress and pings inside the span of the call it is serving), else what the other MCP spans
// of its resource say when they agree (a gateway is both).
func setSenderRoles(spans []classified) {
	if !slices.ContainsFunc(spans, func(c classified) bool { return c.mcp && eitherSide[c.m.method] }) {
		return
	}
	type spanKey struct {
		resource    int
		trace, span string
	}
	bySpan := map[spanKey]role{}
	byResource := map[int]role{}
	mixed := map[int]bool{}
	for _, c := range spans {
		if !c.mcp {
			continue
		}
		r := roleOf(c.m.method, c.in.span.GetKind())
		if r == roleUnknown {
			continue
		}
		bySpan[spanKey{c.resource, string(c.in.span.GetTraceId()), string(c.in.span.GetSpanId())}] = r
		if prev, ok := byResource[c.resource]; ok && prev != r {
			mixed[c.resource] = true
		}
		byResource[c.resource] = r
	}
	for i := range spans {
		c := &spans[i]
		if !c.mcp || !eitherSide[c.m.method] {
			continue
		}
		if r, ok := bySpan[spanKey{c.resource, string(c.in.span.GetTraceId()), string(c.in.span.GetParentSpanId())}]; ok {
			c.in.role = r
		} else if !mixed[c.resource] {
			c.in.role = byResource[c.resource]
		}
	}
}
