package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Agents summarises the agents seen in [Since, Until), riskiest first.
func (c *ClickHouse) Agents(ctx context.Context, q AgentQuery) ([]Agent, error) {
	return c.agents(ctx, "", q)
}

// Agent summarises one agent over [Since, Until), or ErrNotFound.
func (c *ClickHouse) Agent(ctx context.Context, id string, q AgentQuery) (Agent, error) {
	if id == "" {
		return Agent{}, ErrNotFound
	}
	return only(c.agents(ctx, id, q))
}

// agents aggregates events per agent (uniqExact over event_id ignores unmerged duplicates), then
// adds the scores of their anomalies' latest non-learning versions; Risk, the order and the
// limit are computed in Go (finishAgents), the same for both backends.
func (c *ClickHouse) agents(ctx context.Context, id string, q AgentQuery) ([]Agent, error) {
	where, args := eqWhere([]string{"agent_id != ''"}, []any{}, "agent_id", id)
	where, args = rangeWhere(where, args, "observed_us", q.Since, q.Until)
	rows, err := c.conn.Query(ctx, `SELECT agent_id, min(observed_us), max(observed_us), uniqExact(event_id),
		uniqExactIf(event_id, `+errorStatuses+`), uniqExactIf(session_id, session_id != ''),
		groupUniqArrayIf(server_id, server_id != ''), groupUniqArrayIf(target, method = 'tools/call' AND target != '')
		FROM `+c.t("events")+` WHERE `+strings.Join(where, " AND ")+` GROUP BY agent_id`, args...)
	out, err := queryAll(rows, err, "agents", func(a *Agent) error {
		var (
			first, last              int64
			events, errors, sessions uint64
		)
		if err := rows.Scan(&a.ID, &first, &last, &events, &errors, &sessions, &a.Servers, &a.Tools); err != nil {
			return err
		}
		a.FirstSeen, a.LastSeen = fromMicros(first), fromMicros(last)
		a.Events, a.Errors, a.Sessions = int(events), int(errors), int(sessions)
		return nil
	})
	if err != nil || len(out) == 0 {
		return out, err
	}

	inner, args := eqWhere([]string{"agent_id != ''"}, []any{}, "agent_id", id)
	outer, args := rangeWhere([]string{"w_learning = 0"}, args, "w_last", q.Since, q.Until)
	scores, err := c.conn.Query(ctx, "SELECT agent_id, w_score FROM ("+c.latestAnomalies(strings.Join(inner, " AND "), "")+
		") WHERE "+strings.Join(outer, " AND "), args...)
	byAgent, err := agentScores(scores, err)
	if err != nil {
		return nil, err
	}
	return finishAgents(out, byAgent, limitOf(q.Limit)), nil
}

// chSeriesSource is where a metric's rows come from: a table or a subquery with one row per
// record (latest versions), the microseconds column the buckets use, the condition every row
// meets, how to count rows, and the SQL of each By key and filter.
type chSeriesSource struct {
	from, time, where, count string
	keys                     map[string]string
	agent, server            string // filter columns
}

func (c *ClickHouse) seriesSource(metric string) chSeriesSource {
	events := map[string]string{"agent": "agent_id", "server": "server_id", "tool": "if(method = 'tools/call', target, '')"}
	switch metric {
	case MetricCalls, MetricErrors:
		where := "kind = 'request'"
		if metric == MetricErrors {
			where += " AND " + errorStatuses
		}
		return chSeriesSource{from: c.t("events"), time: "observed_us", where: where, count: "uniqExact(event_id)",
			keys: events, agent: "agent_id", server: "server_id"}
	case MetricAnomalies:
		return chSeriesSource{from: "(" + c.latestAnomalies("", "") + ")", time: "w_first", where: "w_learning = 0", count: "count()",
			keys:  map[string]string{"agent": "agent_id", "server": "w_server", "kind": "kind", "severity": "w_severity"},
			agent: "agent_id", server: "w_server"}
	case MetricDeliveries:
		return chSeriesSource{from: "(" + c.latestDeliveries() + ")", time: "w_time", where: "1", count: "count()",
			keys:  map[string]string{"agent": "w_agent", "kind": "w_kind", "severity": "w_severity", "sink": "w_sink", "status": "status"},
			agent: "w_agent"}
	}
	panic("BUG: unknown metric " + metric)
}

// TimeSeries counts a metric per Step, split by a dimension, in one pass; the Limit largest
// series are picked in Go (seriesBuilder).
func (c *ClickHouse) TimeSeries(ctx context.Context, q SeriesQuery) ([]Series, error) {
	p, err := planSeries(q)
	if err != nil {
		return nil, fmt.Errorf("cannot query time series: %w", err)
	}
	src := c.seriesSource(q.Metric)
	key := "'total'"
	if q.By != "" {
		key = src.keys[q.By]
	}
	where := []string{src.where, src.time + " >= ?", src.time + " < ?"}
	args := []any{p.since, p.until}
	where, args = eqWhere(where, args, src.agent, q.AgentID)
	where, args = eqWhere(where, args, src.server, q.ServerID)
	if q.Tool != "" {
		where, args = append(where, "method = 'tools/call' AND target = ?"), append(args, q.Tool)
	}
	from := " FROM " + src.from + " WHERE " + strings.Join(where, " AND ")
	bucket := fmt.Sprintf("toInt64(%d + intDiv(%s - %d, %d) * %d)", p.origin, src.time, p.origin, p.step, p.step)
	rows, err := c.conn.Query(ctx, "SELECT "+key+" AS k, "+bucket+" AS b, "+src.count+from+" GROUP BY k, b", args...)
	b := newSeriesBuilder()
	err = eachRow(rows, err, "time series", func() error {
		var (
			k      string
			bucket int64
			n      uint64
		)
		if err := rows.Scan(&k, &bucket, &n); err != nil {
			return err
		}
		b.add(k, bucket, int64(n))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b.result(p.limit), nil
}

// Values lists the distinct non-empty agents, servers or tools seen in [Since, Until), sorted.
func (c *ClickHouse) Values(ctx context.Context, field string, q ValuesQuery) ([]string, error) {
	if err := checkValuesField(field); err != nil {
		return nil, fmt.Errorf("cannot query values: %w", err)
	}
	col := map[string]string{"agent": "agent_id", "server": "server_id", "tool": "target"}[field]
	where, args := []string{col + " != ''"}, []any{}
	if field == "tool" {
		where = append(where, "method = 'tools/call'")
	}
	where, args = eqWhere(where, args, "agent_id", q.AgentID)
	where, args = rangeWhere(where, args, "observed_us", q.Since, q.Until)
	args = append(args, limitOf(q.Limit))
	rows, err := c.conn.Query(ctx, "SELECT "+col+" FROM "+c.t("events")+" WHERE "+strings.Join(where, " AND ")+
		" GROUP BY "+col+" ORDER BY "+col+" LIMIT ?", args...)
	return queryAll(rows, err, "values", func(v *string) error { return rows.Scan(v) })
}

// SaveDefinitions appends definition versions; per key, the greatest LastSeen wins in queries
// and merges.
func (c *ClickHouse) SaveDefinitions(ctx context.Context, defs []Definition) error {
	if len(defs) == 0 {
		return nil
	}
	return c.sendRows(ctx, "definitions", `server_id, kind, name, first_seen, first_seen_us, last_seen, last_seen_us,
		fingerprint, definition, version`, func(batch driver.Batch) error {
		for _, d := range defs {
			d = normDefinition(d)
			if err := batch.Append(d.ServerID, d.Kind, d.Name, chTime(d.FirstSeen), micros(d.FirstSeen), chTime(d.LastSeen),
				micros(d.LastSeen), d.Fingerprint, d.Definition, uint64(max(micros(d.LastSeen), 0))); err != nil {
				return fmt.Errorf("cannot append definition %s/%s/%s: %w", d.ServerID, d.Kind, d.Name, err)
			}
		}
		return nil
	})
}

// sendRows sends one batch filled row by row by fill.
func (c *ClickHouse) sendRows(ctx context.Context, table, columns string, fill func(driver.Batch) error) error {
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.t(table)+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("cannot prepare clickhouse %s batch: %w", table, err)
	}
	if err := fill(batch); err != nil {
		_ = batch.Abort()
		return err
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot send clickhouse %s batch: %w", table, err)
	}
	return nil
}

// Definitions lists definition versions, newest FirstSeen first. Versions of a key not yet
// merged collapse to the one with the greatest LastSeen.
func (c *ClickHouse) Definitions(ctx context.Context, q DefinitionQuery) ([]Definition, error) {
	where, args := eqWhere([]string{"1"}, []any{}, "server_id", q.ServerID)
	where, args = eqWhere(where, args, "kind", q.Kind)
	where, args = eqWhere(where, args, "name", q.Name)
	where, args = rangeWhere(where, args, "first_seen_us", q.Since, q.Until)
	args = append(args, limitOf(q.Limit))
	rows, err := c.conn.Query(ctx, `SELECT server_id, kind, name, first_seen_us, argMax(fingerprint, last_seen_us),
		argMax(definition, last_seen_us), max(last_seen_us)
		FROM `+c.t("definitions")+` WHERE `+strings.Join(where, " AND ")+`
		GROUP BY server_id, kind, name, first_seen_us ORDER BY first_seen_us DESC, server_id, kind, name LIMIT ?`, args...)
	return queryAll(rows, err, "definitions", func(d *Definition) error {
		var first, last int64
		if err := rows.Scan(&d.ServerID, &d.Kind, &d.Name, &first, &d.Fingerprint, &d.Definition, &last); err != nil {
			return err
		}
		d.FirstSeen, d.LastSeen = fromMicros(first), fromMicros(last)
		return nil
	})
}

// RecordDeliveries appends delivery outcomes; per (ID, Status), the latest Time wins in
// queries and merges.
func (c *ClickHouse) RecordDeliveries(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	return c.sendRows(ctx, "deliveries", `delivery_id, status, anomaly_id, agent_id, kind, severity, sink, attempts,
		error, time, time_us, version`, func(batch driver.Batch) error {
		for _, d := range ds {
			d = normDelivery(d)
			if err := batch.Append(d.ID, d.Status, d.AnomalyID, d.AgentID, d.Kind, d.Severity, d.Sink,
				uint32(max(d.Attempts, 0)), d.Error, chTime(d.Time), micros(d.Time), uint64(max(micros(d.Time), 0))); err != nil {
				return fmt.Errorf("cannot append delivery %s: %w", d.ID, err)
			}
		}
		return nil
	})
}

// latestDeliveries is a subquery with one row per (delivery_id, status): its latest record.
func (c *ClickHouse) latestDeliveries() string {
	return `SELECT delivery_id, status, argMax(anomaly_id, time_us) AS w_anomaly, argMax(agent_id, time_us) AS w_agent,
		argMax(kind, time_us) AS w_kind, argMax(severity, time_us) AS w_severity, argMax(sink, time_us) AS w_sink,
		argMax(attempts, time_us) AS w_attempts, argMax(error, time_us) AS w_error, max(time_us) AS w_time
		FROM ` + c.t("deliveries") + ` GROUP BY delivery_id, status`
}

// Deliveries lists delivery outcomes, newest Time first; filters apply to each outcome's latest
// record.
func (c *ClickHouse) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	where, args := eqWhere([]string{"1"}, []any{}, "w_anomaly", q.AnomalyID)
	where, args = eqWhere(where, args, "w_sink", q.Sink)
	where, args = eqWhere(where, args, "status", q.Status)
	where, args = rangeWhere(where, args, "w_time", q.Since, q.Until)
	args = append(args, limitOf(q.Limit))
	rows, err := c.conn.Query(ctx, `SELECT delivery_id, w_anomaly, w_agent, w_kind, w_severity, w_sink, status,
		w_attempts, w_error, w_time FROM (`+c.latestDeliveries()+`) WHERE `+strings.Join(where, " AND ")+`
		ORDER BY w_time DESC, delivery_id, status LIMIT ?`, args...)
	return queryAll(rows, err, "deliveries", func(d *Delivery) error {
		var (
			attempts uint32
			us       int64
		)
		if err := rows.Scan(&d.ID, &d.AnomalyID, &d.AgentID, &d.Kind, &d.Severity, &d.Sink, &d.Status,
			&attempts, &d.Error, &us); err != nil {
			return err
		}
		d.Attempts, d.Time = int(attempts), fromMicros(us)
		return nil
	})
}
