package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/store/storetest"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func openSQLite(t testing.TB) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "mcpwatch.db"), 30, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openSQLite(t) })
}

// TestSQLiteReopen checks that data and schema version survive closing and reopening the file.
func TestSQLiteReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sub", "dir", "mcpwatch.db")
	s, err := store.OpenSQLite(ctx, path, 30, pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.InsertEvents(ctx, benchEvents(10, 0)))
	require.NoError(t, s.Close())
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(f); err == nil {
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
		}
	}
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the database is owner-only")

	s, err = store.OpenSQLite(ctx, path, 30, pipeline.Settings{})
	require.NoError(t, err)
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, store.LatestSchemaVersion, v)
	got, err := s.SessionEvents(ctx, "bench-0", 0)
	require.NoError(t, err)
	require.Len(t, got, 10)
}

// benchEvents returns n realistic events starting at sequence number from, ten per session.
func benchEvents(n, from int) []schemas.Event {
	base := time.Now().UTC().Add(-time.Hour)
	out := make([]schemas.Event, n)
	for i := range out {
		seq := from + i
		out[i] = schemas.Event{
			ID:              fmt.Sprintf("0198a1b2-%04x-7000-8000-%012x", seq>>48, seq),
			SchemaVersion:   schemas.EventSchemaVersion,
			ObservedAt:      base.Add(time.Duration(seq) * time.Millisecond),
			CollectorID:     "tap-1",
			Source:          schemas.SourceHTTPTap,
			Transport:       "streamable_http",
			ProtocolVersion: "2025-11-25",
			AgentID:         fmt.Sprintf("agent-%d", seq%50),
			AgentSource:     "header",
			ClientName:      "claude-code",
			ClientVersion:   "2.1.0",
			ServerID:        "github",
			SessionID:       fmt.Sprintf("bench-%d", seq/10),
			JSONRPCID:       fmt.Sprint(seq),
			Direction:       schemas.ClientToServer,
			Kind:            schemas.KindRequest,
			Method:          "tools/call",
			Target:          "search_issues",
			Status:          schemas.StatusOK,
			LatencyMicros:   int64(1000 + seq%5000),
			RequestBytes:    300 + seq%200,
			ResponseBytes:   4000 + seq%3000,
			ArgsShape:       `{"query":"string","limit":"number"}`,
			ArgsHash:        "9f86d081884c7d65",
			ResultHash:      "60303ae22b998861",
			TraceID:         "4bf92f3577b34da6a3ce929d0e0e4736",
			SpanID:          "00f067aa0ba902b7",
			Labels:          map[string]string{"team": "payments", "env": "prod"},
		}
	}
	return out
}

// BenchmarkSQLiteInsertEvents measures the store alone on batches of 1000 events, the writer's
// batch size; events/s is the figure to compare with the pipeline's 20,000 events/s target.
func BenchmarkSQLiteInsertEvents(b *testing.B) {
	s := openSQLite(b)
	require.NoError(b, s.Migrate(b.Context()))
	const batch = 1000
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		events := benchEvents(batch, i*batch)
		b.StartTimer()
		if err := s.InsertEvents(b.Context(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSQLiteQueries measures the API's queries on 100,000 events (50 agents, 10,000
// sessions) and 1,000 anomalies.
func BenchmarkSQLiteQueries(b *testing.B) {
	ctx := b.Context()
	s := openSQLite(b)
	require.NoError(b, s.Migrate(ctx))
	const n = 100_000
	for i := 0; i < n; i += 5000 {
		events := benchEvents(5000, i)
		for j := range events {
			if j%7 == 0 {
				events[j].Target = "read_file"
			}
		}
		require.NoError(b, s.InsertEvents(ctx, events))
	}
	now := time.Now().UTC()
	var anomalies []schemas.Anomaly
	for i := range 1000 {
		anomalies = append(anomalies, schemas.Anomaly{ID: fmt.Sprintf("an-%d", i), AgentID: fmt.Sprintf("agent-%d", i%50),
			SessionID: fmt.Sprintf("bench-%d", i*7), Kind: "rate", Score: float64(i % 100), Severity: schemas.SeverityForScore(float64(i % 100)),
			FirstSeen: now.Add(-time.Duration(i) * time.Second), LastSeen: now.Add(-time.Duration(i) * time.Second), Count: 1})
	}
	require.NoError(b, s.UpsertAnomalies(ctx, anomalies))
	since, until := now.Add(-24*time.Hour), now
	benches := []struct {
		name string
		fn   func() error
	}{
		{"Agents", func() error { _, err := s.Agents(ctx, store.AgentQuery{Since: since, Until: until}); return err }},
		{"Agent", func() error {
			_, err := s.Agent(ctx, "agent-7", store.AgentQuery{Since: since, Until: until})
			return err
		}},
		{"TimeSeries/calls_by_agent_1m", func() error {
			_, err := s.TimeSeries(ctx, store.SeriesQuery{Metric: "calls", By: "agent", Step: time.Minute, Since: now.Add(-2 * time.Hour), Until: until})
			return err
		}},
		{"TimeSeries/anomalies_by_severity_1h", func() error {
			_, err := s.TimeSeries(ctx, store.SeriesQuery{Metric: "anomalies", By: "severity", Step: time.Hour, Since: since, Until: until})
			return err
		}},
		{"Sessions/page", func() error { _, err := s.Sessions(ctx, store.SessionQuery{Since: since}); return err }},
		{"Sessions/tool", func() error { _, err := s.Sessions(ctx, store.SessionQuery{Tool: "read_file"}); return err }},
		{"Sessions/min_score", func() error { _, err := s.Sessions(ctx, store.SessionQuery{MinScore: 90}); return err }},
		{"Values/tool", func() error { _, err := s.Values(ctx, "tool", store.ValuesQuery{Since: since}); return err }},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bb.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
