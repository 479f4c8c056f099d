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

// testUpgradeFromV2 builds a schema version 2 database holding events and anomalies (one of
// them learning, one moved between versions), as the release before version 3 left it, then
// migrates it: old anomalies read back unchanged and count in the v3 queries as what they are
// (learning ones not in agents' risk, severities in the series), and tags, definitions and
// deliveries written afterwards round trip. It returns the anomalies as they must read back.
func testUpgradeFromV2(t *testing.T, s store.Store) []schemas.Anomaly {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, store.MigrateTo(ctx, s, 2))
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, v)

	events := benchEvents(20, 0) // sessions bench-0 and bench-1; agents agent-0 … agent-19
	for i := range events {
		events[i].ObservedAt = events[i].ObservedAt.Truncate(time.Microsecond)
	}
	require.NoError(t, s.InsertEvents(ctx, events))
	at := events[0].ObservedAt
	mk := func(id, agent, session string, score float64, count int, learning bool) schemas.Anomaly {
		return schemas.Anomaly{ID: id, SchemaVersion: 1, Time: at, AgentID: agent, SessionID: session, Kind: "rate",
			Score: score, Severity: schemas.SeverityForScore(score), Title: id, EvidenceEventIDs: []string{},
			FirstSeen: at, LastSeen: at.Add(time.Duration(count) * time.Millisecond), Count: count, Learning: learning}
	}
	old := []schemas.Anomaly{
		mk("an-1", "agent-1", "bench-0", 80, 1, false),
		mk("an-2", "agent-1", "bench-0", 95, 1, true), // learning: no risk
		mk("an-3", "agent-2", "bench-0", 99, 1, false),
		mk("an-3", "agent-2", "bench-1", 30, 2, false), // the latest version moved to bench-1
	}
	require.NoError(t, store.InsertAnomaliesV2(ctx, s, old))

	require.NoError(t, s.Migrate(ctx))
	v, err = s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, store.LatestSchemaVersion, v)

	want := []schemas.Anomaly{old[3], old[0], old[1]} // last seen desc, then id
	got, err := s.Anomalies(ctx, store.AnomalyQuery{})
	require.NoError(t, err)
	require.Equal(t, want, got, "version 2 anomalies read back unchanged")

	agent, err := s.Agent(ctx, "agent-1", store.AgentQuery{})
	require.NoError(t, err)
	require.Equal(t, 1, agent.Anomalies, "the learning anomaly stored by version 2 stays out of risk")
	require.Equal(t, 80.0, agent.Risk)
	sess, err := s.Session(ctx, "bench-1")
	require.NoError(t, err)
	require.Equal(t, 1, sess.Anomalies)
	require.Equal(t, 30.0, sess.MaxScore)
	series, err := s.TimeSeries(ctx, store.SeriesQuery{Metric: "anomalies", By: "severity", Step: time.Hour,
		Since: at.Add(-time.Hour), Until: at.Add(time.Hour)})
	require.NoError(t, err)
	require.Len(t, series, 2)
	require.Equal(t, []string{"high", "low"}, []string{series[0].Key, series[1].Key}, "severities of version 2 anomalies")

	// Written after the upgrade: tags, definitions, deliveries.
	tagged := mk("an-4", "agent-3", "bench-1", 50, 1, false)
	tagged.Tags = []string{"pii", "prod"}
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{tagged}))
	gotTagged, err := s.Anomaly(ctx, "an-4")
	require.NoError(t, err)
	require.Equal(t, tagged, gotTagged)
	def := store.Definition{ServerID: "github", Kind: "tool", Name: "create_issue", Fingerprint: "fp", Definition: "{}", FirstSeen: at, LastSeen: at}
	require.NoError(t, s.SaveDefinitions(ctx, []store.Definition{def}))
	defs, err := s.Definitions(ctx, store.DefinitionQuery{})
	require.NoError(t, err)
	require.Equal(t, []store.Definition{def}, defs)
	del := store.Delivery{ID: "d1", AnomalyID: "an-4", AgentID: "agent-3", Kind: "rate", Severity: "medium", Sink: "webhook", Status: "delivered", Attempts: 1, Time: at}
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{del}))
	dels, err := s.Deliveries(ctx, store.DeliveryQuery{})
	require.NoError(t, err)
	require.Equal(t, []store.Delivery{del}, dels)

	// A repeated Migrate finds nothing to do.
	require.NoError(t, s.Migrate(ctx))
	got, err = s.Anomalies(ctx, store.AnomalyQuery{})
	require.NoError(t, err)
	want = append(want, tagged) // last seen with an-1 and an-2, sorts after them by id
	require.Equal(t, want, got)
	return want
}

func TestSQLiteUpgradeFromV2(t *testing.T) {
	testUpgradeFromV2(t, openSQLite(t))
}

// testClickHouseUpgradeV2 runs the upgrade, then merges the anomaly parts written before and
// after the tags column was added, and reads again.
func testClickHouseUpgradeV2(t *testing.T, s store.Store) {
	want := testUpgradeFromV2(t, s)
	require.NoError(t, store.ExecClickHouse(t.Context(), s, "OPTIMIZE TABLE {db}.anomalies FINAL"))
	got, err := s.Anomalies(t.Context(), store.AnomalyQuery{})
	require.NoError(t, err)
	require.Equal(t, want, got, "after merging old and new parts")
}

// testClickHouseInterruptedUpgradeV2: migration 3 created its tables and added the tags column,
// but died before recording itself; it runs again without failing.
func testClickHouseInterruptedUpgradeV2(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, store.MigrateTo(ctx, s, 2))
	require.NoError(t, store.ExecClickHouse(ctx, s, "ALTER TABLE {db}.anomalies ADD COLUMN tags Array(String)"))
	require.NoError(t, store.ExecClickHouse(ctx, s, "CREATE TABLE {db}.deliveries (delivery_id String, status String, "+
		"anomaly_id String, agent_id String, kind String, severity String, sink String, attempts UInt32, error String, "+
		"time DateTime('UTC'), time_us Int64, version UInt64) ENGINE = ReplacingMergeTree(version) "+
		"PARTITION BY toDate(time) ORDER BY (delivery_id, status)"))
	require.NoError(t, s.Migrate(ctx))
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, store.LatestSchemaVersion, v)
	a := schemas.Anomaly{ID: "an-1", AgentID: "a1", Kind: "rate", Severity: schemas.SeverityLow, Score: 25,
		EvidenceEventIDs: []string{}, Count: 1, Tags: []string{"t"}}
	require.NoError(t, s.UpsertAnomalies(ctx, []schemas.Anomaly{a}))
	got, err := s.Anomaly(ctx, "an-1")
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.NoError(t, s.RecordDeliveries(ctx, []store.Delivery{{ID: "d", Status: "delivered", Time: time.Now().UTC().Truncate(time.Microsecond)}}))
	ds, err := s.Deliveries(ctx, store.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
}

func TestClickHouseUpgradeFromV2(t *testing.T) {
	t.Run("Upgrade", func(t *testing.T) { testClickHouseUpgradeV2(t, openClickHouse(t)) })
	t.Run("Interrupted", func(t *testing.T) { testClickHouseInterruptedUpgradeV2(t, openClickHouse(t)) })
}

func TestClickHouseModernUpgradeFromV2(t *testing.T) {
	t.Run("Upgrade", func(t *testing.T) { testClickHouseUpgradeV2(t, openChdb(t)) })
	t.Run("Interrupted", func(t *testing.T) { testClickHouseInterruptedUpgradeV2(t, openChdb(t)) })
}
