package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestModernClickHouse(t *testing.T) {
	tests := []struct {
		version string
		modern  bool
	}{
		{"18.16.1", false},
		{"20.3.19.4", false},
		{"21.8.15.7", true},
		{"24.8.4.13", true},
		{"26.7.1.1", true},
	}
	for _, tc := range tests {
		got, err := modernClickHouse(tc.version)
		require.NoError(t, err)
		require.Equal(t, tc.modern, got, tc.version)
	}
	_, err := modernClickHouse("unknown")
	require.Error(t, err)
}

// anomalyVersion must order versions as the queries do: by count, then by LastSeen.
func TestAnomalyVersionOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	ordered := []uint64{
		anomalyVersion(0, t0),
		anomalyVersion(1, time.Time{}), // zero time clamps, count still orders
		anomalyVersion(1, t0),
		anomalyVersion(1, t0.Add(time.Millisecond)),
		anomalyVersion(2, t0.Add(-24*time.Hour)),
		anomalyVersion(2, t0),
		anomalyVersion(1<<23-1, t0),
		anomalyVersion(1<<40, t0.Add(time.Hour)), // count capped; LastSeen still orders
		anomalyVersion(1<<40, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	for i := 1; i < len(ordered); i++ {
		require.Less(t, ordered[i-1], ordered[i], "version %d", i)
	}
}

func TestDialectDDL(t *testing.T) {
	old := chDialect{db: "mw", modern: false, retentionDays: 30}.migrations()
	modern := chDialect{db: "mw", modern: true, retentionDays: 30}.migrations()
	require.Len(t, modern, len(old))
	for _, stmt := range old[0].stmts {
		require.NotContains(t, stmt, "DateTime64")
		require.NotContains(t, stmt, "LowCardinality")
		require.NotContains(t, stmt, "TTL")
		require.Contains(t, stmt, "IF NOT EXISTS mw.")
	}
	require.Contains(t, modern[0].stmts[0], "DateTime64(6, 'UTC')")
	require.Contains(t, modern[0].stmts[0], "LowCardinality(String)")
	require.Contains(t, modern[0].stmts[0], "TTL toDateTime(observed_at) + toIntervalDay(30)")
	require.Contains(t, modern[0].stmts[1], "TTL toDateTime(last_seen) + toIntervalDay(30)")
	require.NotContains(t, modern[0].stmts[2], "TTL", "baselines never expire")

	require.Equal(t, []chColumn{{table: "events", name: "content", typ: "String"}}, old[1].addColumns)
	require.Equal(t, []chColumn{{table: "events", name: "content", typ: "String CODEC(ZSTD(1))"}}, modern[1].addColumns)

	for _, stmt := range old[2].stmts {
		require.NotContains(t, stmt, "DateTime64")
		require.NotContains(t, stmt, "LowCardinality")
		require.NotContains(t, stmt, "TTL")
		require.NotContains(t, stmt, "CODEC")
		require.Contains(t, stmt, "IF NOT EXISTS mw.")
	}
	require.Contains(t, modern[2].stmts[0], "mw.definitions")
	require.NotContains(t, modern[2].stmts[0], "TTL", "definitions never expire")
	require.Contains(t, modern[2].stmts[1], "mw.deliveries")
	require.Contains(t, modern[2].stmts[1], "TTL toDateTime(time) + toIntervalDay(30)")
	for _, ms := range [][]migration{old, modern} {
		require.Equal(t, []chColumn{{table: "anomalies", name: "tags", typ: "Array(String)"}}, ms[2].addColumns)
	}
}

// Both backends' histories end at LatestSchemaVersion, numbered 1, 2, … without gaps.
func TestMigrationVersions(t *testing.T) {
	for name, ms := range map[string][]migration{
		"sqlite":            sqliteMigrations,
		"clickhouse 18.16":  chDialect{db: "mw"}.migrations(),
		"clickhouse modern": chDialect{db: "mw", modern: true, retentionDays: 30}.migrations(),
	} {
		require.Len(t, ms, LatestSchemaVersion, name)
		for i, m := range ms {
			require.Equal(t, i+1, m.version, name)
			require.NotEmpty(t, m.name, name)
		}
	}
}
