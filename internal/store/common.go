package store

import (
	"fmt"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// migration is one schema step. Versions start at 1 and never change once released.
type migration struct {
	version int
	name    string
	stmts   []string
	// addColumns (ClickHouse only) are added after stmts, each only when missing: ClickHouse
	// 18.16 has no ADD COLUMN IF NOT EXISTS, and its DDL is not transactional, so a migration
	// interrupted before it was recorded must be able to run again.
	addColumns []chColumn
}

// chColumn is a column that a ClickHouse migration adds to an existing table.
type chColumn struct {
	table, name, typ string
}

// limitOf applies DefaultLimit and MaxLimit.
func limitOf(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// Both backends keep time at microsecond precision in UTC; normalising before writing makes what
// is read back identical to what was written, whatever the backend.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func normEvent(e schemas.Event) schemas.Event {
	e.ObservedAt = normTime(e.ObservedAt)
	return e
}

func normAnomaly(a schemas.Anomaly) schemas.Anomaly {
	a.Time = normTime(a.Time)
	a.FirstSeen = normTime(a.FirstSeen)
	a.LastSeen = normTime(a.LastSeen)
	return a
}

// minSeverityRank validates an AnomalyQuery's MinSeverity; "" means no filter (rank -1).
func minSeverityRank(s schemas.Severity) (int, error) {
	if s == "" {
		return -1, nil
	}
	r := s.Rank()
	if r < 0 {
		return 0, fmt.Errorf("unknown severity %q", s)
	}
	return r, nil
}

// retentionCutoff is the oldest time still retained at now.
func retentionCutoff(now time.Time, days int) time.Time {
	return now.UTC().Add(-time.Duration(days) * 24 * time.Hour)
}
