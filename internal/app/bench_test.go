package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// BenchmarkPipelineEmbedded measures events per second from the tap's emission point (the
// EventEmitter every collector uses) through the embedded broker, enricher and detector to the
// embedded SQLite store, on the default configuration. Run with a fixed count, e.g.
// -benchtime=100000x; the figure is the events/s metric.
func BenchmarkPipelineEmbedded(b *testing.B) {
	dataDir := b.TempDir()
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = dataDir
		c.API.Listen = "127.0.0.1:0"
		c.Bus.Embedded.Port = freePort(b)
		return nil
	})
	require.NoError(b, err)
	a := app.New(cfg, []string{app.TargetWriter, app.TargetDetector, app.TargetEnricher}, slogDiscard())
	ctx := context.Background()
	require.NoError(b, a.Start(ctx))
	defer func() { require.NoError(b, a.Shutdown(ctx)) }()

	// The collector's emitter, as `run` makes it: events are written ahead to the spool.
	em, err := bus.NewSpooledEventEmitter(a.Brokers(), cfg.Bus, cfg.Collector.Spool, pipeline.Settings{})
	require.NoError(b, err)
	require.NoError(b, em.Start(ctx))
	defer func() { require.NoError(b, em.Shutdown(ctx)) }()

	// Realistic events: 50 agents, 10 sessions each, 8 tools.
	now := time.Now().UTC()
	template := schemas.Event{
		SchemaVersion: schemas.EventSchemaVersion, CollectorID: "bench", Source: schemas.SourceHTTPTap,
		Transport: "streamable_http", ProtocolVersion: "2025-06-18", AgentSource: "client_info",
		ClientName: "bench-agent", ClientVersion: "1.0", ServerID: "default", Direction: schemas.ClientToServer,
		Kind: schemas.KindRequest, Method: "tools/call", Status: schemas.StatusOK, LatencyMicros: 1234,
		RequestBytes: 180, ResponseBytes: 2400, ArgsShape: `{"path":"string","recursive":"bool"}`,
		ArgsHash: "0123456789abcdef0123456789abcdef", ResultHash: "fedcba9876543210fedcba9876543210",
	}
	stored := func() float64 { return counterValue(b, a, "mcpwatch_store_written_total", "kind", "event") }
	base := stored()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ev := template
		ev.ID = uuid.Must(uuid.NewV7()).String()
		ev.ObservedAt = now.Add(time.Duration(i) * time.Microsecond)
		ev.AgentID = fmt.Sprintf("agent-%d", i%50)
		ev.SessionID = fmt.Sprintf("session-%d", i%500)
		ev.JSONRPCID = fmt.Sprint(i)
		ev.Target = fmt.Sprintf("tool-%d", i%8)
		em.Emit(ev)
	}
	for stored()-base < float64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	require.Zero(b, counterValue(b, nil, "mcpwatch_collector_events_dropped_total", "", ""), "no event may be dropped")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
