package store

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
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

// clampScore bounds a score for Risk: 0…99.9, so that one anomaly never makes the product 0.
func clampScore(s float64) float64 { return min(max(s, 0), 99.9) }

// riskOf is Agent.Risk for the given anomaly scores: 100·(1 − Π(1 − s/100)), rounded to 0.1.
// Scores are multiplied in sorted order so that every backend gets the same bits.
func riskOf(scores []float64) float64 {
	if len(scores) == 0 {
		return 0
	}
	sorted := slices.Clone(scores)
	slices.Sort(sorted)
	p := 1.0
	for _, s := range sorted {
		p *= 1 - clampScore(s)/100
	}
	return math.Round(1000*(1-p)) / 10
}

// finishAgents adds the anomaly scores (by agent) to agents, sorts them riskiest first and
// applies the limit.
func finishAgents(agents []Agent, scores map[string][]float64, limit int) []Agent {
	for i := range agents {
		a := &agents[i]
		sc := scores[a.ID]
		a.Anomalies = len(sc)
		a.MaxScore = 0
		for _, s := range sc {
			a.MaxScore = max(a.MaxScore, s)
		}
		a.Risk = riskOf(sc)
		if a.Servers == nil {
			a.Servers = []string{}
		}
		if a.Tools == nil {
			a.Tools = []string{}
		}
		slices.Sort(a.Servers)
		slices.Sort(a.Tools)
	}
	slices.SortFunc(agents, func(x, y Agent) int {
		if c := cmp.Compare(y.Risk, x.Risk); c != 0 {
			return c
		}
		if c := y.LastSeen.Compare(x.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	if len(agents) > limit {
		agents = agents[:limit]
	}
	return agents
}

// Metrics and dimensions of TimeSeries.
const (
	MetricCalls      = "calls"
	MetricErrors     = "errors"
	MetricAnomalies  = "anomalies"
	MetricDeliveries = "deliveries"
)

// seriesDims lists, per metric, the By values and filters it has.
var seriesDims = map[string]struct {
	by           []string
	server, tool bool // ServerID and Tool filters
}{
	MetricCalls:      {by: []string{"", "agent", "server", "tool"}, server: true, tool: true},
	MetricErrors:     {by: []string{"", "agent", "server", "tool"}, server: true, tool: true},
	MetricAnomalies:  {by: []string{"", "agent", "server", "kind", "severity"}, server: true},
	MetricDeliveries: {by: []string{"", "agent", "kind", "severity", "sink", "status"}},
}

// seriesPlan is a validated SeriesQuery in microseconds. Bucket b of time t (t ≥ origin) is
// origin + (t − origin) / step · step: origin is the multiple of step at or before since, so
// the integer division never sees a negative number and every backend agrees.
type seriesPlan struct {
	SeriesQuery
	since, until, step, origin int64
	limit                      int
}

func planSeries(q SeriesQuery) (seriesPlan, error) {
	dims, ok := seriesDims[q.Metric]
	switch {
	case !ok:
		return seriesPlan{}, fmt.Errorf("unknown metric %q (want calls, errors, anomalies or deliveries)", q.Metric)
	case !slices.Contains(dims.by, q.By):
		return seriesPlan{}, fmt.Errorf("metric %s cannot be split by %q", q.Metric, q.By)
	case q.ServerID != "" && !dims.server:
		return seriesPlan{}, fmt.Errorf("metric %s has no server filter", q.Metric)
	case q.Tool != "" && !dims.tool:
		return seriesPlan{}, fmt.Errorf("metric %s has no tool filter", q.Metric)
	case q.Step < time.Second:
		return seriesPlan{}, fmt.Errorf("step %s is below 1s", q.Step)
	case q.Step%time.Microsecond != 0:
		return seriesPlan{}, fmt.Errorf("step %s is not a whole number of microseconds", q.Step)
	case q.Since.IsZero() || q.Until.IsZero():
		return seriesPlan{}, fmt.Errorf("since and until are required")
	case !q.Until.After(q.Since):
		return seriesPlan{}, fmt.Errorf("until %s is not after since %s", q.Until, q.Since)
	}
	p := seriesPlan{SeriesQuery: q, since: micros(q.Since), until: micros(q.Until), step: q.Step.Microseconds()}
	p.origin = p.since - ((p.since%p.step)+p.step)%p.step // floor, also before 1970
	if n := (p.until - p.origin + p.step - 1) / p.step; n > MaxLimit {
		return seriesPlan{}, fmt.Errorf("%d buckets of %s exceed %d", n, q.Step, MaxLimit)
	}
	p.limit = q.Limit
	switch {
	case p.limit <= 0:
		p.limit = DefaultSeriesLimit
	case p.limit > MaxLimit:
		p.limit = MaxLimit
	}
	return p, nil
}

// seriesBuilder collects (key, bucket, count) rows into Series, then keeps the limit largest.
type seriesBuilder struct {
	index  map[string]int
	series []Series
	totals []float64
}

func newSeriesBuilder() *seriesBuilder { return &seriesBuilder{index: map[string]int{}} }

func (b *seriesBuilder) add(key string, bucketUS int64, n int64) {
	i, ok := b.index[key]
	if !ok {
		i = len(b.series)
		b.index[key] = i
		b.series = append(b.series, Series{Key: key, Points: []Point{}})
		b.totals = append(b.totals, 0)
	}
	b.series[i].Points = append(b.series[i].Points, Point{Time: fromMicros(bucketUS), Value: float64(n)})
	b.totals[i] += float64(n)
}

// result sorts the series by total desc, then key asc, keeps the first limit, and sorts each
// one's points by time.
func (b *seriesBuilder) result(limit int) []Series {
	order := make([]int, len(b.series))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		if c := cmp.Compare(b.totals[y], b.totals[x]); c != 0 {
			return c
		}
		return strings.Compare(b.series[x].Key, b.series[y].Key)
	})
	out := make([]Series, 0, min(len(order), limit))
	for _, i := range order[:min(len(order), limit)] {
		s := b.series[i]
		slices.SortFunc(s.Points, func(x, y Point) int { return x.Time.Compare(y.Time) })
		out = append(out, s)
	}
	return out
}

// Values fields.
var valueFields = []string{"agent", "server", "tool"}

func checkValuesField(field string) error {
	if !slices.Contains(valueFields, field) {
		return fmt.Errorf("unknown field %q (want agent, server or tool)", field)
	}
	return nil
}

func normDefinition(d Definition) Definition {
	d.FirstSeen, d.LastSeen = normTime(d.FirstSeen), normTime(d.LastSeen)
	return d
}

func normDelivery(d Delivery) Delivery {
	d.Time = normTime(d.Time)
	return d
}

// rangeWhere appends [since, until) conditions on a microseconds column; zero times are unbounded.
func rangeWhere(where []string, args []any, col string, since, until time.Time) ([]string, []any) {
	if !since.IsZero() {
		where, args = append(where, col+" >= ?"), append(args, micros(since))
	}
	if !until.IsZero() {
		where, args = append(where, col+" < ?"), append(args, micros(until))
	}
	return where, args
}

// eqWhere appends col = v unless v is empty (an unset filter).
func eqWhere(where []string, args []any, col, v string) ([]string, []any) {
	if v == "" {
		return where, args
	}
	return append(where, col+" = ?"), append(args, v)
}

// baselineKeys checks LoadBaselinesOf's keys and returns the condition " AND key IN (?, …)"
// that selects them, with its arguments.
func baselineKeys(keys []string) (string, []any, error) {
	if len(keys) > MaxBaselineKeys {
		return "", nil, fmt.Errorf("cannot load baselines of %d keys: at most %d (MaxBaselineKeys) per call", len(keys), MaxBaselineKeys)
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	return " AND key IN (?" + strings.Repeat(", ?", max(len(keys)-1, 0)) + ")", args, nil
}

// rowScanner is what both drivers' query results offer (*sql.Rows and clickhouse driver.Rows).
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// eachRow calls fn for every row of a query's result and closes it; err is the query's own
// error, and every error says "cannot query <what>".
func eachRow(rows rowScanner, err error, what string, fn func() error) error {
	if err != nil {
		return fmt.Errorf("cannot query %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return fmt.Errorf("cannot query %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot query %s: %w", what, err)
	}
	return nil
}

// queryAll collects a query's rows, each filled in by scan; never nil.
func queryAll[T any](rows rowScanner, err error, what string, scan func(*T) error) ([]T, error) {
	out := []T{}
	err = eachRow(rows, err, what, func() error {
		var v T
		if err := scan(&v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// only is the result of a lookup by id: its first row, or ErrNotFound.
func only[T any](out []T, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(out) == 0 {
		return zero, ErrNotFound
	}
	return out[0], nil
}

// agentScores reads (agent_id, score) rows into scores by agent, for finishAgents.
func agentScores(rows rowScanner, err error) (map[string][]float64, error) {
	byAgent := map[string][]float64{}
	err = eachRow(rows, err, "agent anomalies", func() error {
		var (
			agent string
			score float64
		)
		if err := rows.Scan(&agent, &score); err != nil {
			return err
		}
		byAgent[agent] = append(byAgent[agent], score)
		return nil
	})
	return byAgent, err
}

// errorStatuses are the statuses Agent.Errors and the errors metric count, as SQL both backends
// understand.
const errorStatuses = "status IN ('error', 'tool_error', 'timeout')"
