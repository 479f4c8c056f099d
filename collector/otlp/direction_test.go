package otlp

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// directionSpan is an MCP span of method with kind; parent may be nil.
func directionSpan(trace, span, parent string, kind tracepb.Span_SpanKind, name string, attrs ...*commonpb.KeyValue) *tracepb.Span {
	sp := &tracepb.Span{
		TraceId: []byte(trace), SpanId: []byte(span), Kind: kind, Name: name, Attributes: attrs,
		StartTimeUnixNano: uint64(t0.UnixNano()), EndTimeUnixNano: uint64(t0.UnixNano()) + 1000,
	}
	if parent != "" {
		sp.ParentSpanId = []byte(parent)
	}
	return sp
}

func resourceSpans(service string, spans ...*tracepb.Span) *tracepb.ResourceSpans {
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: strValue(service)}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}
}

func method(m string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: "mcp.method.name", Value: strValue(m)}
}

// Ping, progress and cancellation go either way, and the conventions give the sender a CLIENT
// span whichever end it is: the receiver reads who sent one from what its reporting process is.
func TestEitherSideMessages(t *testing.T) {
	const (
		callTrace  = "trace-of-a-call!"
		otherTrace = "another-trace..!"
	)
	client, server := tracepb.Span_SPAN_KIND_CLIENT, tracepb.Span_SPAN_KIND_SERVER
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{
		// A server reports its progress and a ping inside the span of the call it serves.
		resourceSpans("weather-mcp-server",
			directionSpan(callTrace, "srv-call", "cli-call", server, "tools/call get_weather", method("tools/call")),
			directionSpan(callTrace, "srv-prog", "srv-call", client, "notifications/progress", method("notifications/progress")),
			directionSpan(callTrace, "srv-ping", "srv-call", client, "ping", method("ping")),
			// The client's cancellation, as the server receives it.
			directionSpan(callTrace, "srv-canc", "cli-canc", server, "notifications/cancelled", method("notifications/cancelled")),
		),
		// The agent cancels its own call.
		resourceSpans("trip-planner",
			directionSpan(callTrace, "cli-call", "", client, "tools/call get_weather", method("tools/call")),
			directionSpan(callTrace, "cli-canc", "cli-call", client, "notifications/cancelled", method("notifications/cancelled")),
		),
		// A server's ping outside any call: its other spans say it is the server.
		resourceSpans("files-mcp-server",
			directionSpan(otherTrace, "fs-list1", "", server, "tools/list", method("tools/list")),
			directionSpan(otherTrace, "fs-ping1", "", client, "ping", method("ping")),
		),
		// Nothing else to go by: progress is the server's, a ping the client's.
		resourceSpans("lonely",
			directionSpan(otherTrace, "lone-prg", "", client, "notifications/progress", method("notifications/progress")),
			directionSpan(otherTrace, "lone-png", "", client, "ping", method("ping")),
		),
	}}
	b := normalizer{collectorID: testCollectorID}.request(td)
	require.Len(t, b.events, 10)
	type got struct {
		dir           schemas.Direction
		agent, server string
	}
	bySpan := map[string]got{}
	for _, ev := range b.events {
		span, err := hexDecode(ev.SpanID)
		require.NoError(t, err)
		bySpan[span] = got{ev.Direction, ev.AgentID, ev.ServerID}
	}
	s2c, c2s := schemas.ServerToClient, schemas.ClientToServer
	for span, want := range map[string]got{
		"srv-prog": {s2c, agentUnknown, "weather-mcp-server"},
		"srv-ping": {s2c, agentUnknown, "weather-mcp-server"},
		"srv-canc": {c2s, agentUnknown, "weather-mcp-server"},
		"cli-canc": {c2s, "trip-planner", ""},
		"fs-ping1": {s2c, agentUnknown, "files-mcp-server"},
		"lone-prg": {s2c, agentUnknown, "lonely"},
		"lone-png": {c2s, "lonely", ""},
	} {
		require.Equal(t, want, bySpan[span], span)
	}
}

// Agent ids from spans pass the same check as every tap's: too long or not printable, they
// name no one, and the next source is used.
func TestOTLPAgentIDsAreChecked(t *testing.T) {
	sp := directionSpan("0123456789abcdef", "01234567", "", tracepb.Span_SPAN_KIND_CLIENT, "tools/call x",
		method("tools/call"),
		&commonpb.KeyValue{Key: "gen_ai.agent.id", Value: strValue("evil\r\nCEF:0|x")},
		&commonpb.KeyValue{Key: "mcp.client.name", Value: strValue(strings.Repeat("n", 5000))})
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{resourceSpans("svc\nforged=1", sp)}}
	b := normalizer{collectorID: testCollectorID}.request(td)
	require.Len(t, b.events, 1)
	require.Equal(t, agentUnknown, b.events[0].AgentID)

	td.ResourceSpans[0] = resourceSpans("trip-planner", sp)
	b = normalizer{collectorID: testCollectorID}.request(td)
	require.Equal(t, "trip-planner", b.events[0].AgentID)
	require.Equal(t, AgentFromResource, b.events[0].AgentSource)
}

func hexDecode(s string) (string, error) {
	b, err := hex.DecodeString(s)
	return string(b), err
}
