package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/store/storetest"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// clickHouseConfig returns a config for a fresh, randomly named database on the server named by
// MCPWATCH_TEST_CLICKHOUSE_ADDR (start one with scripts/clickhouse.sh). Without the variable the
// test is skipped, unless MCPWATCH_REQUIRE_CLICKHOUSE=1 makes that a failure (CI).
func clickHouseConfig(t testing.TB) store.Config {
	t.Helper()
	addr := os.Getenv("MCPWATCH_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		if os.Getenv("MCPWATCH_REQUIRE_CLICKHOUSE") == "1" {
			t.Fatal("MCPWATCH_REQUIRE_CLICKHOUSE=1 but MCPWATCH_TEST_CLICKHOUSE_ADDR is unset")
		}
		t.Skip("MCPWATCH_TEST_CLICKHOUSE_ADDR is unset; start a server with scripts/clickhouse.sh")
	}
	cfg := store.DefaultConfig()
	cfg.Backend = store.BackendClickHouse
	cfg.ClickHouse.Addr = []string{addr}
	cfg.ClickHouse.Database = "mcpwatch_test_" + randomHex(t)
	return cfg
}

func randomHex(t testing.TB) string {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// openClickHouse opens a store on a fresh database that is dropped when the test ends.
func openClickHouse(t testing.TB) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), clickHouseConfig(t), pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() {
		// t.Context is done by now: drop the database with a fresh one.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, store.ExecClickHouse(ctx, s, "DROP DATABASE IF EXISTS {db}"))
		require.NoError(t, s.Close())
	})
	return s
}

var chTables = []string{"events", "anomalies", "baselines", "definitions", "deliveries"}

// unmerged keeps ClickHouse from merging parts, so every duplicate and stale version written by
// the suite stays visible to the queries, which must still answer as if merged.
type unmerged struct{ store.Store }

func (u unmerged) Migrate(ctx context.Context) error {
	if err := u.Store.Migrate(ctx); err != nil {
		return err
	}
	for _, table := range chTables {
		if err := store.ExecClickHouse(ctx, u.Store, "SYSTEM STOP MERGES {db}."+table); err != nil {
			return err
		}
	}
	return nil
}

// merged forces a full merge after every write, so the suite also checks that merges keep the
// version the queries choose (highest anomaly count, latest baseline).
type merged struct{ store.Store }

func (m merged) optimize(ctx context.Context, table string) error {
	return store.ExecClickHouse(ctx, m.Store, "OPTIMIZE TABLE {db}."+table+" FINAL")
}

func (m merged) InsertEvents(ctx context.Context, events []schemas.Event) error {
	if err := m.Store.InsertEvents(ctx, events); err != nil {
		return err
	}
	return m.optimize(ctx, "events")
}

func (m merged) UpsertAnomalies(ctx context.Context, anomalies []schemas.Anomaly) error {
	if err := m.Store.UpsertAnomalies(ctx, anomalies); err != nil {
		return err
	}
	return m.optimize(ctx, "anomalies")
}

func (m merged) SaveBaselines(ctx context.Context, snapshots []store.Baseline) error {
	if err := m.Store.SaveBaselines(ctx, snapshots); err != nil {
		return err
	}
	return m.optimize(ctx, "baselines")
}

func (m merged) SaveDefinitions(ctx context.Context, defs []store.Definition) error {
	if err := m.Store.SaveDefinitions(ctx, defs); err != nil {
		return err
	}
	return m.optimize(ctx, "definitions")
}

func (m merged) RecordDeliveries(ctx context.Context, ds []store.Delivery) error {
	if err := m.Store.RecordDeliveries(ctx, ds); err != nil {
		return err
	}
	return m.optimize(ctx, "deliveries")
}

func TestClickHouseConformance(t *testing.T) {
	t.Run("Unmerged", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return unmerged{openClickHouse(t)} })
	})
	t.Run("Merged", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return merged{openClickHouse(t)} })
	})
}

// TestClickHouseDuplicatesStored proves the unmerged run exercises deduplication: the rows are
// really there twice, yet the store counts them once.
func TestClickHouseDuplicatesStored(t *testing.T) {
	ctx := t.Context()
	s := unmerged{openClickHouse(t)}
	require.NoError(t, s.Migrate(ctx))
	events := benchEvents(10, 0)
	require.NoError(t, s.InsertEvents(ctx, events))
	require.NoError(t, s.InsertEvents(ctx, events))

	raw, err := store.CountClickHouse(ctx, s.Store, "SELECT count() FROM {db}.events")
	require.NoError(t, err)
	require.Equal(t, uint64(20), raw)
	sess, err := s.Session(ctx, "bench-0")
	require.NoError(t, err)
	require.Equal(t, 10, sess.Events)
}

// TestClickHouseOpenErrors checks that a bad address fails at Open, not at first use.
func TestClickHouseOpenErrors(t *testing.T) {
	cfg := store.DefaultConfig()
	cfg.Backend = store.BackendClickHouse
	cfg.ClickHouse.Addr = []string{"127.0.0.1:1"} // nothing listens on port 1
	cfg.ClickHouse.DialTimeout = time.Second
	_, err := store.Open(t.Context(), cfg, pipeline.Settings{})
	require.ErrorContains(t, err, "cannot connect to clickhouse")
}

// openChdb opens a ClickHouse store on the modern engine embedded in npm's chdb (ClickHouse
// 26.x), when MCPWATCH_TEST_CHDB names a directory with node_modules/chdb (npm install
// chdb@3.4.0). It proves the modern DDL (DateTime64, LowCardinality, TTL) and every query on a
// current server, which cannot be installed here as a TCP server.
func openChdb(t *testing.T) store.Store {
	t.Helper()
	dir := os.Getenv("MCPWATCH_TEST_CHDB")
	if dir == "" {
		t.Skip("MCPWATCH_TEST_CHDB is unset; npm install chdb@3.4.0 in a directory and point it there")
	}
	s, _, err := store.OpenChdb(dir, t.TempDir(), "mcpwatch", 30)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// hexState hex-encodes baseline state on the way in and out: the Node bridge to chdb carries
// text, and would mangle the suite's deliberately non-UTF-8 state. (Binary safety of the String
// column over the native protocol is covered by the TCP server tests.)
type hexState struct{ store.Store }

func (h hexState) SaveBaselines(ctx context.Context, snapshots []store.Baseline) error {
	enc := make([]store.Baseline, len(snapshots))
	for i, b := range snapshots {
		b.State = []byte(hex.EncodeToString(b.State))
		enc[i] = b
	}
	return h.Store.SaveBaselines(ctx, enc)
}

func (h hexState) LoadBaselines(ctx context.Context, model string) ([]store.Baseline, error) {
	out, err := h.Store.LoadBaselines(ctx, model)
	for i := range out {
		if out[i].State, err = hex.DecodeString(string(out[i].State)); err != nil {
			return nil, err
		}
	}
	return out, err
}

func (h hexState) LoadBaselinesOf(ctx context.Context, model string, keys []string) ([]store.Baseline, error) {
	out, err := h.Store.LoadBaselinesOf(ctx, model, keys)
	for i := range out {
		if out[i].State, err = hex.DecodeString(string(out[i].State)); err != nil {
			return nil, err
		}
	}
	return out, err
}

func TestClickHouseModernConformance(t *testing.T) {
	t.Run("Unmerged", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return hexState{unmerged{openChdb(t)}} })
	})
	t.Run("Merged", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return hexState{merged{openChdb(t)}} })
	})
}

// TestClickHouseModernTTL checks that Migrate keeps the TTL in line with RetentionDays on a
// modern server, and leaves it alone when it already is.
func TestClickHouseModernTTL(t *testing.T) {
	chdb := os.Getenv("MCPWATCH_TEST_CHDB")
	if chdb == "" {
		t.Skip("MCPWATCH_TEST_CHDB is unset")
	}
	ctx := t.Context()
	dir := t.TempDir()
	modifies := func(stmts []string) int {
		n := 0
		for _, s := range stmts {
			if strings.Contains(s, "MODIFY TTL") {
				n++
			}
		}
		return n
	}

	s, stmts, err := store.OpenChdb(chdb, dir, "mcpwatch", 30)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.Migrate(ctx))
	require.Zero(t, modifies(stmts()), "TTL created with the tables must be recognised as current")
	require.NoError(t, s.Close())

	s, stmts, err = store.OpenChdb(chdb, dir, "mcpwatch", 7)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
	require.Equal(t, 3, modifies(stmts()), "events, anomalies and deliveries get the new TTL")
	require.NoError(t, s.Migrate(ctx))
	require.Equal(t, 3, modifies(stmts()), "and keep it")
}

// BenchmarkClickHouseInsertEvents measures batches against the server named by
// MCPWATCH_TEST_CLICKHOUSE_ADDR. Every batch becomes a part on the server, so per-event cost
// falls steeply with batch size; the writer should batch generously for ClickHouse.
func BenchmarkClickHouseInsertEvents(b *testing.B) {
	for _, batch := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openClickHouse(b)
			require.NoError(b, s.Migrate(b.Context()))
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
		})
	}
}
