package otlp

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mcpwatch/mcpwatch/collector/identity"
)

// newTestReceiver returns a receiver that is not started: tests hand it requests through export.
func newTestReceiver(t testing.TB, cfg Config) (*Receiver, *recorder) {
	t.Helper()
	cfg.CollectorID = testCollectorID
	set, _ := testSettings(t)
	rec := &recorder{}
	r, err := New(cfg, rec, set)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, rec
}

func requireStitchedID(t testing.TB, id string) {
	t.Helper()
	u, err := uuid.Parse(id)
	require.NoError(t, err, "a stitched session id")
	require.Equal(t, uuid.Version(5), u.Version(), "stitched session ids are UUIDv5")
}

// TestStitchedSessions: spans without a session id (the stateless 2026-07-28 revision) get the
// session identity.Stitcher gives them, keyed by server, agent, client and client instance:
// calls of one agent instance within the idle gap share one, a call after the gap starts
// another unless it continues a trace seen in the session, another instance of the same agent
// has its own, and a span that carries mcp.session.id keeps it.
func TestStitchedSessions(t *testing.T) {
	r, rec := newTestReceiver(t, Config{})
	rejected, _ := r.export(loadFixture(t, "stateless_sessions"), "http")
	require.Zero(t, rejected)
	got := map[string]string{} // span id: session id
	for _, ev := range rec.take() {
		got[ev.SpanID] = ev.SessionID
	}

	agent := func(instance string) identity.StitchKey {
		return identity.StitchKey{Server: "search.internal", Agent: "triage-agent", Instance: instance}
	}
	first := identity.StitchedID(agent("triage-1"), t0)
	afterGap := identity.StitchedID(agent("triage-1"), t0.Add(20*time.Minute))
	require.Equal(t, map[string]string{
		"1000000000000001": first,
		"1000000000000002": first,    // 2 minutes later
		"1000000000000003": afterGap, // 18 minutes later, another trace: a new session
		"1000000000000004": afterGap, // 20 minutes later, but the trace of the one before
		"1000000000000005": "sess-42",
		"2000000000000001": identity.StitchedID(agent("triage-2"), t0.Add(time.Minute)),
		// The server's side: the agent is the client's name, the instance its address.
		"3000000000000001": identity.StitchedID(identity.StitchKey{Server: "search-mcp", Agent: "claude-code",
			ClientName: "claude-code", ClientVersion: "2.1.0", Instance: "10.0.0.5"}, t0.Add(3*time.Minute)),
	}, got)
	requireStitchedID(t, first)
}

// TestStitchedSessionsSurviveRestart: the open sessions are saved at Shutdown to a file beside
// the tap's state file (not in it) and restored by the next receiver.
func TestStitchedSessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sessions: identity.SessionsConfig{StateFile: filepath.Join(dir, "collector-sessions.json")}}
	start := time.Now().Add(-time.Minute)
	export := func(r *Receiver, traceID string, at time.Time) string {
		sp := &tracepb.Span{
			TraceId: []byte(traceID), SpanId: []byte("span0001"), Name: "tools/call search", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(at.UnixNano()), EndTimeUnixNano: uint64(at.UnixNano()) + 1000,
		}
		r.export(&tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: strValue("triage-agent")}}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{sp}}},
		}}}, "http")
		return sessionOf(t, r)
	}

	set, _ := testSettings(t)
	r1, err := New(cfg, &recorder{}, set)
	require.NoError(t, err)
	before := export(r1, "trace-0000000001", start)
	require.NoError(t, r1.Shutdown(context.Background()))
	_, err = os.Stat(filepath.Join(dir, "collector-sessions-otlp.json"))
	require.NoError(t, err, "saved beside the tap's file")
	_, err = os.Stat(cfg.Sessions.StateFile)
	require.ErrorIs(t, err, os.ErrNotExist, "the tap's file is the tap's")

	r2, err := New(cfg, &recorder{}, set)
	require.NoError(t, err)
	after := export(r2, "trace-0000000002", start.Add(30*time.Second))
	require.NoError(t, r2.Shutdown(context.Background()))
	require.Equal(t, before, after, "the session in progress continues across the restart")
	requireStitchedID(t, after)
}

// sessionOf returns the session id of the one event r emitted since the last call.
func sessionOf(t testing.TB, r *Receiver) string {
	t.Helper()
	evs := r.emitter.(*recorder).take()
	require.Len(t, evs, 1)
	return evs[0].SessionID
}
