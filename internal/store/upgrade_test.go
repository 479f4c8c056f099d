package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// testUpgradeFromV1 builds a schema version 1 database holding events, as the release before
// content was stored left it, then migrates it: the old events read back unchanged and without
// content, and events written after the upgrade keep theirs. It returns the session's events as
// they must read back from now on.
func testUpgradeFromV1(t *testing.T, s store.Store) []schemas.Event {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, store.MigrateTo(ctx, s, 1))
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, v)

	events := benchEvents(10, 0) // one session, bench-0
	for i := range events {
		events[i].ObservedAt = events[i].ObservedAt.Truncate(time.Microsecond)
	}
	old, newer := events[:6], events[6:]
	require.NoError(t, store.InsertEventsV1(ctx, s, old))

	require.NoError(t, s.Migrate(ctx))
	v, err = s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, store.LatestSchemaVersion, v)

	got, err := s.SessionEvents(ctx, "bench-0", 0)
	require.NoError(t, err)
	require.Equal(t, old, got, "version 1 events read back unchanged, without content")

	newer[0].Content = &schemas.Content{Arguments: `{"query":"is:open label:bug","limit":10}`, Result: `{"total":3}`, Captured: true}
	newer[2].Content = &schemas.Content{Arguments: `{"query":"is:clo`, Truncated: true, Captured: true}
	require.NoError(t, s.InsertEvents(ctx, newer))
	// A repeated Migrate finds nothing to do.
	require.NoError(t, s.Migrate(ctx))
	got, err = s.SessionEvents(ctx, "bench-0", 0)
	require.NoError(t, err)
	require.Equal(t, events, got)
	return events
}

func TestSQLiteUpgradeFromV1(t *testing.T) {
	testUpgradeFromV1(t, openSQLite(t))
}

// testClickHouseUpgrade runs the upgrade, then merges the parts written before and after the
// column was added, and reads again.
func testClickHouseUpgrade(t *testing.T, s store.Store) {
	want := testUpgradeFromV1(t, s)
	require.NoError(t, store.ExecClickHouse(t.Context(), s, "OPTIMIZE TABLE {db}.events FINAL"))
	got, err := s.SessionEvents(t.Context(), "bench-0", 0)
	require.NoError(t, err)
	require.Equal(t, want, got, "after merging old and new parts")
}

// testClickHouseInterruptedUpgrade: a migration that added the column but died before recording
// itself runs again without failing on the existing column.
func testClickHouseInterruptedUpgrade(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, store.MigrateTo(ctx, s, 1))
	require.NoError(t, store.ExecClickHouse(ctx, s, "ALTER TABLE {db}.events ADD COLUMN content String"))
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.NoError(t, s.Migrate(ctx))
	v, err = s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, store.LatestSchemaVersion, v)

	e := benchEvents(1, 0)[0]
	e.ObservedAt = e.ObservedAt.Truncate(time.Microsecond)
	e.Content = &schemas.Content{Result: `{"ok":true}`, Captured: true}
	require.NoError(t, s.InsertEvents(ctx, []schemas.Event{e}))
	got, err := s.SessionEvents(ctx, "bench-0", 0)
	require.NoError(t, err)
	require.Equal(t, []schemas.Event{e}, got)
}

func TestClickHouseUpgradeFromV1(t *testing.T) {
	t.Run("Upgrade", func(t *testing.T) { testClickHouseUpgrade(t, openClickHouse(t)) })
	t.Run("Interrupted", func(t *testing.T) { testClickHouseInterruptedUpgrade(t, openClickHouse(t)) })
}

func TestClickHouseModernUpgradeFromV1(t *testing.T) {
	t.Run("Upgrade", func(t *testing.T) { testClickHouseUpgrade(t, openChdb(t)) })
	t.Run("Interrupted", func(t *testing.T) { testClickHouseInterruptedUpgrade(t, openChdb(t)) })
}
