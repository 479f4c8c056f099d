package otlp

import (
	"context"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// The spans of one tools/call traced on both ends: the agent's CLIENT span and the MCP server's
// SERVER span, whose parent is the client span.
const (
	callTrace    = "0af7651916cd43dd8448eb211c80319c"
	clientSpanID = "c1c1c1c1c1c1c1c1"
	serverSpanID = "5e5e5e5e5e5e5e5e"
	otherSpanID  = "0e0e0e0e0e0e0e0e"
)

// callSpans builds one export request holding the named spans:
//   - client: the agent's CLIENT span of tools/call;
//   - server: the server's SERVER span of it (parent: client);
//   - server-root: a SERVER span of tools/call without a parent;
//   - server-list: a SERVER span of tools/list whose parent is the client span (another call);
//   - server-2: a second SERVER span under the client span (another id).
func callSpans(t testing.TB, names ...string) *tracepb.TracesData {
	t.Helper()
	id := func(s string) []byte {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		return b
	}
	span := func(spanID string, kind tracepb.Span_SpanKind, parent, method string) *tracepb.Span {
		start := uint64(t0.UnixNano())
		return &tracepb.Span{
			TraceId: id(callTrace), SpanId: id(spanID), ParentSpanId: id(parent), Kind: kind,
			Name: method, StartTimeUnixNano: start, EndTimeUnixNano: start + 5e6,
			Attributes: []*commonpb.KeyValue{
				{Key: "mcp.method.name", Value: strValue(method)},
				{Key: "gen_ai.tool.name", Value: strValue("get_weather")},
			},
		}
	}
	resource := func(service string, spans ...*tracepb.Span) *tracepb.ResourceSpans {
		return &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: strValue(service)}}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
		}
	}
	td := &tracepb.TracesData{}
	for _, n := range names {
		var rs *tracepb.ResourceSpans
		switch n {
		case "client":
			rs = resource("travel-agent", span(clientSpanID, tracepb.Span_SPAN_KIND_CLIENT, "", "tools/call"))
		case "server":
			rs = resource("weather-server", span(serverSpanID, tracepb.Span_SPAN_KIND_SERVER, clientSpanID, "tools/call"))
		case "server-root":
			rs = resource("weather-server", span(serverSpanID, tracepb.Span_SPAN_KIND_SERVER, "", "tools/call"))
		case "server-list":
			rs = resource("weather-server", span(serverSpanID, tracepb.Span_SPAN_KIND_SERVER, clientSpanID, "tools/list"))
		case "server-2":
			rs = resource("weather-server", span(otherSpanID, tracepb.Span_SPAN_KIND_SERVER, clientSpanID, "tools/call"))
		default:
			t.Fatalf("unknown span %q", n)
		}
		td.ResourceSpans = append(td.ResourceSpans, rs)
	}
	return td
}

func spanIDs(evs []schemas.Event) []string {
	ids := []string{}
	for _, ev := range evs {
		ids = append(ids, ev.SpanID)
	}
	return ids
}

// TestOneEventPerCall: a call traced on both ends is one event, the client's, whichever span
// arrives first and whether or not they come in one export; a call with one traced end is one
// event too. A server span that may have a client span still to come is held until the window
// ends (wantLater), and only then emitted alone.
func TestOneEventPerCall(t *testing.T) {
	type export struct {
		after time.Duration // since the previous export
		spans []string
	}
	for _, tc := range []struct {
		name      string
		exports   []export
		wantNow   []string // span ids emitted before the window ends
		wantLater []string // span ids emitted when it ends
		dups      float64
	}{
		{name: "client only", exports: []export{{spans: []string{"client"}}}, wantNow: []string{clientSpanID}},
		{name: "server only", exports: []export{{spans: []string{"server"}}}, wantLater: []string{serverSpanID}},
		{name: "server without a parent", exports: []export{{spans: []string{"server-root"}}}, wantNow: []string{serverSpanID}},
		{name: "both in one export", exports: []export{{spans: []string{"server", "client"}}},
			wantNow: []string{clientSpanID}, dups: 1},
		{name: "client then server", exports: []export{{spans: []string{"client"}}, {after: 4 * time.Second, spans: []string{"server"}}},
			wantNow: []string{clientSpanID}, dups: 1},
		{name: "server then client", exports: []export{{spans: []string{"server"}}, {after: 9 * time.Second, spans: []string{"client"}}},
			wantNow: []string{clientSpanID}, dups: 1},
		{name: "server retried while held", exports: []export{{spans: []string{"server"}}, {after: time.Second, spans: []string{"server"}}},
			wantLater: []string{serverSpanID}},
		{name: "server under a client of another method", exports: []export{{spans: []string{"client", "server-list"}}},
			wantNow: []string{clientSpanID, serverSpanID}},
		{name: "two server spans under one client", exports: []export{{spans: []string{"server", "server-2"}}, {after: time.Second, spans: []string{"client"}}},
			wantNow: []string{otherSpanID, clientSpanID}, dups: 1},
		// The documented limit: spans of one call arriving more than the window apart both count.
		{name: "client after the window", exports: []export{{spans: []string{"server"}}, {after: defaultPairWindow, spans: []string{"client"}}},
			wantNow: []string{serverSpanID, clientSpanID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rec := newTestReceiver(t, Config{})
			start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
			clock := start
			r.now = func() time.Time { return clock }
			for _, e := range tc.exports {
				clock = clock.Add(e.after)
				rejected, _ := r.export(callSpans(t, e.spans...), "http")
				require.Zero(t, rejected)
			}
			now := rec.take()
			require.Equal(t, append([]string{}, tc.wantNow...), spanIDs(now), "emitted at once")
			for _, ev := range now {
				if ev.SpanID == clientSpanID {
					require.Equal(t, "travel-agent", ev.AgentID, "the client's span names the agent")
				}
			}
			// The window runs from the first span of the call.
			r.emitHeld(start.Add(defaultPairWindow - time.Nanosecond))
			require.Empty(t, rec.take(), "held for the whole window")
			r.emitHeld(start.Add(defaultPairWindow))
			require.Equal(t, append([]string{}, tc.wantLater...), spanIDs(rec.take()), "emitted when the window ends")
			r.emitHeld(clock.Add(defaultPairWindow))
			require.Empty(t, rec.take())
			require.Zero(t, r.pairs.len(), "every call forgotten after its window")
			require.Equal(t, tc.dups, testutil.ToFloat64(r.metrics.deduplicated))
		})
	}
}

// TestPairingIsBounded: past the bound the oldest call is forgotten early, and the server span
// it held is emitted then, not lost.
func TestPairingIsBounded(t *testing.T) {
	r, rec := newTestReceiver(t, Config{})
	r.pairs = newPairer(defaultPairWindow, 1)
	r.export(callSpans(t, "server"), "http")
	require.Empty(t, rec.take(), "held")
	other := callSpans(t, "server")
	other.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceId[0] ^= 0xff // the same call, in another trace
	r.export(other, "http")
	require.Equal(t, []string{serverSpanID}, spanIDs(rec.take()), "the first call's span, emitted to make room")
	require.Equal(t, 1, r.pairs.len(), "the second call is held")
}

// TestHeldSpansAreEmitted: a started receiver emits a held span when its window ends, and
// Shutdown emits what is still held.
func TestHeldSpansAreEmitted(t *testing.T) {
	body, err := protojson.Marshal(callSpans(t, "server"))
	require.NoError(t, err)
	post := func(t *testing.T, r *Receiver) {
		resp, out := postHTTP(t, nil, "http://"+r.HTTPAddr()+TracesPath, httpBody{contentType: "application/json", data: body})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", out)
	}

	t.Run("window", func(t *testing.T) {
		set, _ := testSettings(t)
		rec := &recorder{}
		r, err := New(Config{Enabled: true, GRPC: TransportConfig{Disabled: true}, HTTP: TransportConfig{Listen: "127.0.0.1:0"}}, rec, set)
		require.NoError(t, err)
		r.pairs = newPairer(50*time.Millisecond, defaultMaxCalls)
		require.NoError(t, r.Start(context.Background()))
		defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
		post(t, r)
		var got []schemas.Event
		require.Eventually(t, func() bool {
			got = append(got, rec.take()...)
			return len(got) > 0
		}, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, []string{serverSpanID}, spanIDs(got))
	})

	t.Run("shutdown", func(t *testing.T) {
		r, rec, _ := startReceiver(t, Config{})
		post(t, r)
		require.Empty(t, rec.take(), "held")
		require.NoError(t, r.Shutdown(context.Background()))
		require.Equal(t, []string{serverSpanID}, spanIDs(rec.take()))
	})
}
