package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// Agents summarises the agents seen in [Since, Until), riskiest first.
func (s *SQLite) Agents(ctx context.Context, q AgentQuery) ([]Agent, error) {
	return s.agents(ctx, "", q)
}

// Agent summarises one agent over [Since, Until), or ErrNotFound.
func (s *SQLite) Agent(ctx context.Context, id string, q AgentQuery) (Agent, error) {
	if id == "" {
		return Agent{}, ErrNotFound
	}
	return only(s.agents(ctx, id, q))
}

// agents aggregates events per agent, then adds the scores of their non-learning anomalies;
// Risk, the order and the limit are computed in Go (finishAgents), the same for both backends.
func (s *SQLite) agents(ctx context.Context, id string, q AgentQuery) ([]Agent, error) {
	where, args := eqWhere([]string{"agent_id <> ''"}, []any{}, "agent_id", id)
	where, args = rangeWhere(where, args, "observed_at", q.Since, q.Until)
	rows, err := s.r.QueryContext(ctx, `SELECT agent_id, min(observed_at), max(observed_at), count(*),
		coalesce(sum(`+errorStatuses+`), 0), count(DISTINCT nullif(session_id, '')),
		json_group_array(DISTINCT server_id) FILTER (WHERE server_id <> ''),
		json_group_array(DISTINCT target) FILTER (WHERE method = 'tools/call' AND target <> '')
		FROM events WHERE `+strings.Join(where, " AND ")+` GROUP BY agent_id`, args...)
	out, err := queryAll(rows, err, "agents", func(a *Agent) error {
		var (
			first, last    int64
			servers, tools string
		)
		if err := rows.Scan(&a.ID, &first, &last, &a.Events, &a.Errors, &a.Sessions, &servers, &tools); err != nil {
			return err
		}
		a.FirstSeen, a.LastSeen = fromMicros(first), fromMicros(last)
		if err := json.Unmarshal([]byte(servers), &a.Servers); err != nil {
			return fmt.Errorf("cannot decode agent servers: %w", err)
		}
		if err := json.Unmarshal([]byte(tools), &a.Tools); err != nil {
			return fmt.Errorf("cannot decode agent tools: %w", err)
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		return out, err
	}

	where, args = eqWhere([]string{"learning = 0"}, []any{}, "agent_id", id)
	where, args = rangeWhere(where, args, "last_seen", q.Since, q.Until)
	scores, err := s.r.QueryContext(ctx, "SELECT agent_id, score FROM anomalies WHERE "+strings.Join(where, " AND "), args...)
	byAgent, err := agentScores(scores, err)
	if err != nil {
		return nil, err
	}
	return finishAgents(out, byAgent, limitOf(q.Limit)), nil
}

// sqliteSeriesSource is where a metric's rows come from: the table, the microseconds column
// the buckets use, the condition every row meets, and the SQL of each By key.
type sqliteSeriesSource struct {
	table, time, where string
	keys               map[string]string
}

var sqliteSeriesSources = map[string]sqliteSeriesSource{
	MetricCalls:  {table: "events", time: "observed_at", where: "kind = 'request'", keys: sqliteEventKeys},
	MetricErrors: {table: "events", time: "observed_at", where: "kind = 'request' AND " + errorStatuses, keys: sqliteEventKeys},
	MetricAnomalies: {table: "anomalies", time: "first_seen", where: "learning = 0", keys: map[string]string{
		"agent": "agent_id", "server": "server_id", "kind": "kind", "severity": "severity"}},
	MetricDeliveries: {table: "deliveries", time: "time", where: "1", keys: map[string]string{
		"agent": "agent_id", "kind": "kind", "severity": "severity", "sink": "sink", "status": "status"}},
}

var sqliteEventKeys = map[string]string{
	"agent": "agent_id", "server": "server_id", "tool": "CASE WHEN method = 'tools/call' THEN target ELSE '' END"}

// TimeSeries counts a metric per Step, split by a dimension, in one pass; the Limit largest
// series are picked in Go (seriesBuilder).
func (s *SQLite) TimeSeries(ctx context.Context, q SeriesQuery) ([]Series, error) {
	p, err := planSeries(q)
	if err != nil {
		return nil, fmt.Errorf("cannot query time series: %w", err)
	}
	src := sqliteSeriesSources[q.Metric]
	key := "'total'"
	if q.By != "" {
		key = src.keys[q.By]
	}
	where := []string{src.where, src.time + " >= ?", src.time + " < ?"}
	args := []any{p.since, p.until}
	where, args = eqWhere(where, args, "agent_id", q.AgentID)
	where, args = eqWhere(where, args, "server_id", q.ServerID)
	if q.Tool != "" {
		where, args = append(where, "method = 'tools/call' AND target = ?"), append(args, q.Tool)
	}
	from := " FROM " + src.table + " WHERE " + strings.Join(where, " AND ")
	bucket := fmt.Sprintf("%d + (%s - %d) / %d * %d", p.origin, src.time, p.origin, p.step, p.step)
	rows, err := s.r.QueryContext(ctx, "SELECT "+key+" AS k, "+bucket+" AS b, count(*)"+from+" GROUP BY k, b", args...)
	b := newSeriesBuilder()
	err = eachRow(rows, err, "time series", func() error {
		var (
			k         string
			bucket, n int64
		)
		if err := rows.Scan(&k, &bucket, &n); err != nil {
			return err
		}
		b.add(k, bucket, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b.result(p.limit), nil
}

// Values lists the distinct non-empty agents, servers or tools seen in [Since, Until), sorted.
func (s *SQLite) Values(ctx context.Context, field string, q ValuesQuery) ([]string, error) {
	if err := checkValuesField(field); err != nil {
		return nil, fmt.Errorf("cannot query values: %w", err)
	}
	col := map[string]string{"agent": "agent_id", "server": "server_id", "tool": "target"}[field]
	where, args := []string{col + " <> ''"}, []any{}
	if field == "tool" {
		where = append(where, "method = 'tools/call'")
	}
	where, args = eqWhere(where, args, "agent_id", q.AgentID)
	where, args = rangeWhere(where, args, "observed_at", q.Since, q.Until)
	args = append(args, limitOf(q.Limit))
	rows, err := s.r.QueryContext(ctx, "SELECT DISTINCT "+col+" FROM events WHERE "+strings.Join(where, " AND ")+
		" ORDER BY "+col+" LIMIT ?", args...)
	return queryAll(rows, err, "values", func(v *string) error { return rows.Scan(v) })
}

// A definition version replaces the stored one with the same key when it was seen later.
const sqliteSaveDefinition = `INSERT INTO definitions (server_id, kind, name, first_seen, last_seen, fingerprint,
	definition) VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (server_id, kind, name, first_seen) DO UPDATE SET last_seen = excluded.last_seen,
		fingerprint = excluded.fingerprint, definition = excluded.definition
	WHERE excluded.last_seen > definitions.last_seen`

// SaveDefinitions stores definition versions, keeping the greatest LastSeen of each.
func (s *SQLite) SaveDefinitions(ctx context.Context, defs []Definition) error {
	if len(defs) == 0 {
		return nil
	}
	return s.inTx(ctx, sqliteSaveDefinition, func(stmt *sql.Stmt) error {
		for _, d := range defs {
			d = normDefinition(d)
			if _, err := stmt.ExecContext(ctx, d.ServerID, d.Kind, d.Name, micros(d.FirstSeen), micros(d.LastSeen),
				d.Fingerprint, d.Definition); err != nil {
				return fmt.Errorf("cannot save definition %s/%s/%s: %w", d.ServerID, d.Kind, d.Name, err)
			}
		}
		return nil
	})
}

// Definitions lists definition versions, newest FirstSeen first.
func (s *SQLite) Definitions(ctx context.Context, q DefinitionQuery) ([]Definition, error) {
	where, args := eqWhere([]string{"1"}, []any{}, "server_id", q.ServerID)
	where, args = eqWhere(where, args, "kind", q.Kind)
	where, args = eqWhere(where, args, "name", q.Name)
	where, args = rangeWhere(where, args, "first_seen", q.Since, q.Until)
	args = append(args, limitOf(q.Limit))
	rows, err := s.r.QueryContext(ctx, `SELECT server_id, kind, name, fingerprint, definition, first_seen, last_seen
		FROM definitions WHERE `+strings.Join(where, " AND ")+`
		ORDER BY first_seen DESC, server_id, kind, name LIMIT ?`, args...)
	return queryAll(rows, err, "definitions", func(d *Definition) error {
		var first, last int64
		if err := rows.Scan(&d.ServerID, &d.Kind, &d.Name, &d.Fingerprint, &d.Definition, &first, &last); err != nil {
			return err
		}
		d.FirstSeen, d.LastSeen = fromMicros(first), fromMicros(last)
		return nil
	})
}

// A delivery outcome replaces the stored one with the same (ID, Status) when it happened later.
const sqliteRecordDelivery = `INSERT INTO deliveries (delivery_id, status, anomaly_id, agent_id, kind, severity,
	sink, attempts, error, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (delivery_id, status) DO UPDATE SET anomaly_id = excluded.anomaly_id,
		agent_id = excluded.agent_id, kind = excluded.kind, severity = excluded.severity, sink = excluded.sink,
		attempts = excluded.attempts, error = excluded.error, time = excluded.time
	WHERE excluded.time > deliveries.time`

// RecordDeliveries stores delivery outcomes, once per (ID, Status).
func (s *SQLite) RecordDeliveries(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	return s.inTx(ctx, sqliteRecordDelivery, func(stmt *sql.Stmt) error {
		for _, d := range ds {
			d = normDelivery(d)
			if _, err := stmt.ExecContext(ctx, d.ID, d.Status, d.AnomalyID, d.AgentID, d.Kind, d.Severity, d.Sink,
				d.Attempts, d.Error, micros(d.Time)); err != nil {
				return fmt.Errorf("cannot record delivery %s: %w", d.ID, err)
			}
		}
		return nil
	})
}

// Deliveries lists delivery outcomes, newest Time first.
func (s *SQLite) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	where, args := eqWhere([]string{"1"}, []any{}, "anomaly_id", q.AnomalyID)
	where, args = eqWhere(where, args, "sink", q.Sink)
	where, args = eqWhere(where, args, "status", q.Status)
	where, args = rangeWhere(where, args, "time", q.Since, q.Until)
	args = append(args, limitOf(q.Limit))
	rows, err := s.r.QueryContext(ctx, `SELECT delivery_id, anomaly_id, agent_id, kind, severity, sink, status,
		attempts, error, time FROM deliveries WHERE `+strings.Join(where, " AND ")+`
		ORDER BY time DESC, delivery_id, status LIMIT ?`, args...)
	return queryAll(rows, err, "deliveries", func(d *Delivery) error {
		var us int64
		if err := rows.Scan(&d.ID, &d.AnomalyID, &d.AgentID, &d.Kind, &d.Severity, &d.Sink, &d.Status,
			&d.Attempts, &d.Error, &us); err != nil {
			return err
		}
		d.Time = fromMicros(us)
		return nil
	})
}
