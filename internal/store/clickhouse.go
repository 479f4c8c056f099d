package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// ClickHouse is the Store on a ClickHouse server, over the native protocol. It works on Debian's
// 18.16 and on modern servers: Migrate reads version() and picks the DDL, and the queries stay in
// the SQL both understand (no CTEs, window functions or server-side parameters; inserts are
// batches, never INSERT … VALUES).
type ClickHouse struct {
	conn          driver.Conn
	db            string
	retentionDays int
	logger        *slog.Logger
}

var _ Store = (*ClickHouse)(nil)

// OpenClickHouse connects and pings the server. The database need not exist yet: every statement
// names it explicitly and Migrate creates it.
func OpenClickHouse(ctx context.Context, cfg ClickHouseConfig, retentionDays int, settings pipeline.Settings) (*ClickHouse, error) {
	if err := (Config{Backend: BackendClickHouse, ClickHouse: cfg, RetentionDays: retentionDays}).Validate(); err != nil {
		return nil, err
	}
	opts := &clickhouse.Options{
		Protocol:     clickhouse.Native,
		Addr:         cfg.Addr,
		Auth:         clickhouse.Auth{Username: cfg.Username, Password: cfg.Password},
		DialTimeout:  cfg.DialTimeout,
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ClientInfo:   clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "mcpwatch"}}},
		MaxOpenConns: 8,
		MaxIdleConns: 4,
	}
	if cfg.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse store: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cannot connect to clickhouse %v: %w", cfg.Addr, err)
	}
	settings = settings.WithComponent("store")
	return &ClickHouse{
		conn: conn, db: cfg.Database, retentionDays: retentionDays,
		logger: settings.Logger.With("backend", BackendClickHouse, "database", cfg.Database),
	}, nil
}

// Close closes the connection pool.
func (c *ClickHouse) Close() error { return c.conn.Close() }

// t qualifies a table name with the database (validated as an identifier by Config.Validate).
func (c *ClickHouse) t(table string) string { return c.db + "." + table }

func (c *ClickHouse) dialect(ctx context.Context) (chDialect, error) {
	var version string
	if err := c.conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return chDialect{}, fmt.Errorf("cannot read clickhouse version: %w", err)
	}
	modern, err := modernClickHouse(version)
	if err != nil {
		return chDialect{}, err
	}
	return chDialect{db: c.db, modern: modern, retentionDays: c.retentionDays}, nil
}

// Migrate creates the database when missing, applies missing migrations in order with DDL for
// this server's version, and on modern servers keeps the tables' TTL in line with the configured
// retention.
func (c *ClickHouse) Migrate(ctx context.Context) error { return c.migrate(ctx, LatestSchemaVersion) }

// migrate applies the missing migrations up to version upTo (below the latest only in tests,
// which build older databases to upgrade).
func (c *ClickHouse) migrate(ctx context.Context, upTo int) error {
	d, err := c.dialect(ctx)
	if err != nil {
		return err
	}
	if err := c.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+c.db); err != nil {
		return fmt.Errorf("cannot create clickhouse database %s: %w", c.db, err)
	}
	if err := c.conn.Exec(ctx, d.migrationsTable()); err != nil {
		return fmt.Errorf("cannot create schema_migrations: %w", err)
	}
	applied, err := c.appliedVersions(ctx)
	if err != nil {
		return err
	}
	for _, m := range d.migrations() {
		if m.version > upTo {
			break
		}
		if applied[m.version] {
			continue
		}
		for _, stmt := range m.stmts {
			if err := c.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("cannot apply clickhouse migration %d (%s): %w", m.version, m.name, err)
			}
		}
		for _, col := range m.addColumns {
			if err := c.addColumn(ctx, col); err != nil {
				return fmt.Errorf("cannot apply clickhouse migration %d (%s): %w", m.version, m.name, err)
			}
		}
		batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.t("schema_migrations")+" (version, name, applied_at)")
		if err != nil {
			return fmt.Errorf("cannot record clickhouse migration %d: %w", m.version, err)
		}
		if err := batch.Append(uint32(m.version), m.name, time.Now().UTC()); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("cannot record clickhouse migration %d: %w", m.version, err)
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("cannot record clickhouse migration %d: %w", m.version, err)
		}
		c.logger.Info("applied schema migration", "version", m.version, "name", m.name, "modern_ddl", d.modern)
	}
	if d.modern {
		return c.syncTTL(ctx, d)
	}
	return nil
}

// addColumn adds a column unless the table already has it (from an interrupted run of the same
// migration, or a concurrent migrator that got there first).
func (c *ClickHouse) addColumn(ctx context.Context, col chColumn) error {
	exists := func() (bool, error) {
		var n uint64
		if err := c.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
			c.db, col.table, col.name).Scan(&n); err != nil {
			return false, fmt.Errorf("cannot look up column %s.%s: %w", col.table, col.name, err)
		}
		return n > 0, nil
	}
	ok, err := exists()
	if err != nil || ok {
		return err
	}
	if err := c.conn.Exec(ctx, "ALTER TABLE "+c.t(col.table)+" ADD COLUMN "+col.name+" "+col.typ); err != nil {
		if ok, _ := exists(); ok {
			return nil // added concurrently
		}
		return fmt.Errorf("cannot add column %s.%s: %w", col.table, col.name, err)
	}
	return nil
}

func (c *ClickHouse) appliedVersions(ctx context.Context) (map[int]bool, error) {
	rows, err := c.conn.Query(ctx, "SELECT DISTINCT version FROM "+c.t("schema_migrations"))
	if err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
		}
		applied[int(v)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	return applied, nil
}

// syncTTL changes a table's TTL when RetentionDays changed since the table was created. Tables
// a partial migration has not created yet are skipped.
func (c *ClickHouse) syncTTL(ctx context.Context, d chDialect) error {
	rows, err := c.conn.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = ?", c.db)
	if err != nil {
		return fmt.Errorf("cannot read table TTLs: %w", err)
	}
	engines := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			rows.Close()
			return fmt.Errorf("cannot read table TTLs: %w", err)
		}
		engines[name] = engine
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read table TTLs: %w", err)
	}
	for _, tc := range chTTLColumns {
		engine, ok := engines[tc.table]
		want := d.ttlExpr(tc.column)
		if !ok || strings.Contains(engine, "TTL "+want) {
			continue
		}
		if err := c.conn.Exec(ctx, "ALTER TABLE "+c.t(tc.table)+" MODIFY TTL "+want); err != nil {
			return fmt.Errorf("cannot set %s TTL: %w", tc.table, err)
		}
		c.logger.Info("changed retention TTL", "table", tc.table, "days", d.retentionDays)
	}
	return nil
}

// SchemaVersion reports the latest applied migration, 0 before Migrate.
func (c *ClickHouse) SchemaVersion(ctx context.Context) (int, error) {
	var n uint64
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'",
		c.db).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read schema version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v uint32
	if err := c.conn.QueryRow(ctx, "SELECT max(version) FROM "+c.t("schema_migrations")).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read schema version: %w", err)
	}
	return int(v), nil
}

// chEventColumns is the events insert/select column list, in the order of eventColumns' slices.
const chEventColumns = `event_id, schema_version, observed_at, observed_us, collector_id, source, transport,
	protocol_version, agent_id, agent_source, declared_agent, client_name, client_version, server_id,
	session_id, jsonrpc_id, direction, kind, method, target, status, error_code, latency_us,
	request_bytes, response_bytes, args_shape, args_hash, result_hash, trace_id, span_id,
	label_keys, label_values, flag_types, flag_severities, flag_paths, flag_evidence, content`

// eventColumns holds a batch column-wise, which is how the native protocol sends it (and the
// fastest way to append with clickhouse-go).
type eventColumns struct {
	id                                                      []string
	schemaVersion                                           []uint8
	observedAt                                              []time.Time
	observedUS, latency, reqBytes, respBytes                []int64
	collector, source, transport, protoVer, agent, agentSrc []string
	declared, clientName, clientVer, server, session, rpcID []string
	direction, kind, method, target, status                 []string
	errorCode                                               []int32
	argsShape, argsHash, resultHash, traceID, spanID        []string
	labelKeys, labelValues                                  [][]string
	flagTypes, flagSeverities, flagPaths, flagEvidence      [][]string
	content                                                 []string // JSON, empty when absent
}

// DateTime columns hold 1970…2105; out-of-range times (a zero ObservedAt) are clamped there so a
// bad event cannot fail its batch. observed_us keeps the real value.
var (
	chMinTime = time.Unix(0, 0).UTC()
	chMaxTime = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

func chTime(t time.Time) time.Time {
	switch {
	case t.Before(chMinTime):
		return chMinTime
	case t.After(chMaxTime):
		return chMaxTime
	}
	return t
}

func (c *eventColumns) add(e schemas.Event) error {
	c.id = append(c.id, e.ID)
	c.schemaVersion = append(c.schemaVersion, uint8(e.SchemaVersion))
	c.observedAt = append(c.observedAt, chTime(e.ObservedAt))
	c.observedUS = append(c.observedUS, micros(e.ObservedAt))
	c.collector = append(c.collector, e.CollectorID)
	c.source = append(c.source, string(e.Source))
	c.transport = append(c.transport, e.Transport)
	c.protoVer = append(c.protoVer, e.ProtocolVersion)
	c.agent = append(c.agent, e.AgentID)
	c.agentSrc = append(c.agentSrc, e.AgentSource)
	c.declared = append(c.declared, e.DeclaredAgent)
	c.clientName = append(c.clientName, e.ClientName)
	c.clientVer = append(c.clientVer, e.ClientVersion)
	c.server = append(c.server, e.ServerID)
	c.session = append(c.session, e.SessionID)
	c.rpcID = append(c.rpcID, e.JSONRPCID)
	c.direction = append(c.direction, string(e.Direction))
	c.kind = append(c.kind, string(e.Kind))
	c.method = append(c.method, e.Method)
	c.target = append(c.target, e.Target)
	c.status = append(c.status, string(e.Status))
	c.errorCode = append(c.errorCode, int32(e.ErrorCode))
	c.latency = append(c.latency, e.LatencyMicros)
	c.reqBytes = append(c.reqBytes, int64(e.RequestBytes))
	c.respBytes = append(c.respBytes, int64(e.ResponseBytes))
	c.argsShape = append(c.argsShape, e.ArgsShape)
	c.argsHash = append(c.argsHash, e.ArgsHash)
	c.resultHash = append(c.resultHash, e.ResultHash)
	c.traceID = append(c.traceID, e.TraceID)
	c.spanID = append(c.spanID, e.SpanID)

	keys := make([]string, 0, len(e.Labels))
	for k := range e.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = e.Labels[k]
	}
	c.labelKeys = append(c.labelKeys, keys)
	c.labelValues = append(c.labelValues, values)

	types := make([]string, len(e.Flags))
	sevs := make([]string, len(e.Flags))
	paths := make([]string, len(e.Flags))
	evidence := make([]string, len(e.Flags))
	for i, f := range e.Flags {
		types[i], sevs[i], paths[i], evidence[i] = f.Type, string(f.Severity), f.Path, f.Evidence
	}
	c.flagTypes = append(c.flagTypes, types)
	c.flagSeverities = append(c.flagSeverities, sevs)
	c.flagPaths = append(c.flagPaths, paths)
	c.flagEvidence = append(c.flagEvidence, evidence)

	var content []byte
	if e.Content != nil {
		var err error
		if content, err = json.Marshal(e.Content); err != nil {
			return fmt.Errorf("cannot encode event %s content: %w", e.ID, err)
		}
	}
	c.content = append(c.content, string(content))
	return nil
}

func (c *eventColumns) columns() []any {
	return []any{
		c.id, c.schemaVersion, c.observedAt, c.observedUS, c.collector, c.source, c.transport,
		c.protoVer, c.agent, c.agentSrc, c.declared, c.clientName, c.clientVer, c.server,
		c.session, c.rpcID, c.direction, c.kind, c.method, c.target, c.status, c.errorCode, c.latency,
		c.reqBytes, c.respBytes, c.argsShape, c.argsHash, c.resultHash, c.traceID, c.spanID,
		c.labelKeys, c.labelValues, c.flagTypes, c.flagSeverities, c.flagPaths, c.flagEvidence, c.content,
	}
}

// InsertEvents sends the batch as one native-protocol insert. Duplicates (same event ID) are
// stored but collapse on merge and are never counted twice by the queries.
func (c *ClickHouse) InsertEvents(ctx context.Context, events []schemas.Event) error {
	if len(events) == 0 {
		return nil
	}
	var cols eventColumns
	for i := range events {
		if err := cols.add(normEvent(events[i])); err != nil {
			return err
		}
	}
	return c.sendColumns(ctx, "events", chEventColumns, cols.columns())
}

func (c *ClickHouse) sendColumns(ctx context.Context, table, columns string, data []any) error {
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.t(table)+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("cannot prepare clickhouse %s batch: %w", table, err)
	}
	for i, col := range data {
		if err := batch.Column(i).Append(col); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("cannot append clickhouse %s column %d: %w", table, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot send clickhouse %s batch: %w", table, err)
	}
	return nil
}

const chAnomalyColumns = `anomaly_id, schema_version, time_us, agent_id, session_id, server_id, kind, subject,
	score, severity, severity_rank, title, model, first_seen, first_seen_us, last_seen, last_seen_us,
	count, learning, data, version, tags`

// anomalyVersion orders an anomaly's versions for ReplacingMergeTree as the queries do, by
// (Count, LastSeen), packed in 64 bits: the count (capped at 2^23-1) above the milliseconds since
// 2024 (41 bits, until 2093). Queries compare the exact (count, last_seen_us) instead; the two
// disagree only for versions with equal counts within the same millisecond.
func anomalyVersion(count int, lastSeen time.Time) uint64 {
	const countBits, msBits = 23, 41
	n := uint64(min(max(count, 0), 1<<countBits-1))
	ms := lastSeen.Sub(anomalyEpoch).Milliseconds()
	ms = min(max(ms, 0), 1<<msBits-1)
	return n<<msBits | uint64(ms)
}

var anomalyEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// chAnomalyRow is an anomaly's values in chAnomalyColumns order.
func chAnomalyRow(a schemas.Anomaly) ([]any, error) {
	a = normAnomaly(a)
	data, err := json.Marshal(&a)
	if err != nil {
		return nil, fmt.Errorf("cannot encode anomaly: %w", err)
	}
	var learning uint8
	if a.Learning {
		learning = 1
	}
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	return []any{a.ID, uint8(a.SchemaVersion), micros(a.Time), a.AgentID, a.SessionID, a.ServerID,
		a.Kind, a.Subject, a.Score, string(a.Severity), int8(a.Severity.Rank()), a.Title, a.Explanation.Model,
		chTime(a.FirstSeen), micros(a.FirstSeen), chTime(a.LastSeen), micros(a.LastSeen), uint64(max(a.Count, 0)),
		learning, string(data), anomalyVersion(a.Count, a.LastSeen), tags}, nil
}

// UpsertAnomalies appends every version; queries pick the one with the highest (Count, LastSeen)
// and merges keep the same one.
func (c *ClickHouse) UpsertAnomalies(ctx context.Context, anomalies []schemas.Anomaly) error {
	if len(anomalies) == 0 {
		return nil
	}
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.t("anomalies")+" ("+chAnomalyColumns+")")
	if err != nil {
		return fmt.Errorf("cannot prepare clickhouse anomalies batch: %w", err)
	}
	for i := range anomalies {
		row, err := chAnomalyRow(anomalies[i])
		if err == nil {
			err = batch.Append(row...)
		}
		if err != nil {
			_ = batch.Abort()
			return fmt.Errorf("cannot append anomaly %s: %w", anomalies[i].ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot send clickhouse anomalies batch: %w", err)
	}
	return nil
}

// SaveBaselines appends snapshots; the one with the latest UpdatedAt wins in queries and merges.
func (c *ClickHouse) SaveBaselines(ctx context.Context, snapshots []Baseline) error {
	if len(snapshots) == 0 {
		return nil
	}
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.t("baselines")+" (model, key, updated_at, updated_us, version, state)")
	if err != nil {
		return fmt.Errorf("cannot prepare clickhouse baselines batch: %w", err)
	}
	for _, b := range snapshots {
		at := normTime(b.UpdatedAt)
		if err := batch.Append(b.Model, b.Key, chTime(at), micros(at), uint64(max(micros(at), 0)), string(b.State)); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("cannot append baseline %s/%s: %w", b.Model, b.Key, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot send clickhouse baselines batch: %w", err)
	}
	return nil
}

// LoadBaselines returns every key's latest snapshot of a model, ordered by key.
func (c *ClickHouse) LoadBaselines(ctx context.Context, model string) ([]Baseline, error) {
	return c.loadBaselines(ctx, model, "", nil)
}

// LoadBaselinesOf returns the latest snapshot of a model's keys that have one, ordered by key.
// Each key is its own ? placeholder (clickhouse-go would bind a slice as an array, [...]).
func (c *ClickHouse) LoadBaselinesOf(ctx context.Context, model string, keys []string) ([]Baseline, error) {
	cond, args, err := baselineKeys(keys)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return c.loadBaselines(ctx, model, cond, args)
}

// loadBaselines returns each key's latest snapshot of a model; cond narrows the rows read (with
// args), e.g. to some keys. argMax over version ignores not-yet-merged older snapshots.
func (c *ClickHouse) loadBaselines(ctx context.Context, model, cond string, args []any) ([]Baseline, error) {
	rows, err := c.conn.Query(ctx, "SELECT key, argMax(updated_us, version) AS u, argMax(state, version) AS st FROM "+
		c.t("baselines")+" WHERE model = ?"+cond+" GROUP BY key ORDER BY key", append([]any{model}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot load baselines: %w", err)
	}
	defer rows.Close()
	var out []Baseline
	for rows.Next() {
		var (
			b     = Baseline{Model: model}
			us    int64
			state string
		)
		if err := rows.Scan(&b.Key, &us, &state); err != nil {
			return nil, fmt.Errorf("cannot load baselines: %w", err)
		}
		b.UpdatedAt, b.State = fromMicros(us), []byte(state)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot load baselines: %w", err)
	}
	return out, nil
}

// chSessionSelect aggregates sessions; uniqExact over event_id ignores not-yet-merged duplicates.
func (c *ClickHouse) chSessionSelect() string {
	return `SELECT session_id, max(agent_id), max(server_id), max(client_name), max(protocol_version),
	min(observed_us) AS first_us, max(observed_us) AS last_us, uniqExact(event_id),
	uniqExactIf(event_id, status != 'ok'), groupUniqArrayIf(target, method = 'tools/call' AND target != '')
	FROM ` + c.t("events")
}

// Sessions lists sessions, most recently active first. AgentID and ServerID select sessions with
// events of that agent or server.
func (c *ClickHouse) Sessions(ctx context.Context, q SessionQuery) ([]Session, error) {
	var (
		where = []string{"session_id != ''"}
		sub   []string
		args  []any
	)
	if q.AgentID != "" {
		sub, args = append(sub, "agent_id = ?"), append(args, q.AgentID)
	}
	if q.ServerID != "" {
		sub, args = append(sub, "server_id = ?"), append(args, q.ServerID)
	}
	if !q.Since.IsZero() {
		sub, args = append(sub, "observed_us >= ?"), append(args, micros(q.Since))
	}
	if len(sub) > 0 {
		where = append(where, "session_id IN (SELECT session_id FROM "+c.t("events")+" WHERE "+strings.Join(sub, " AND ")+")")
	}
	if q.Tool != "" {
		where, args = append(where, "session_id IN (SELECT session_id FROM "+c.t("events")+
			" WHERE method = 'tools/call' AND target = ?)"), append(args, q.Tool)
	}
	if q.MinScore > 0 {
		where, args = append(where, "session_id IN (SELECT w_session FROM ("+c.latestAnomalies("", "")+") WHERE w_score >= ?)"),
			append(args, q.MinScore)
	}
	having := []string{"1"}
	if !q.Since.IsZero() {
		having, args = append(having, "last_us >= ?"), append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		having, args = append(having, "first_us < ?"), append(args, micros(q.Until))
	}
	if q.After != nil {
		last := micros(normTime(q.After.LastSeen))
		having, args = append(having, "(last_us < ? OR (last_us = ? AND session_id > ?))"), append(args, last, last, q.After.ID)
	}
	args = append(args, limitOf(q.Limit))
	query := c.chSessionSelect() + " WHERE " + strings.Join(where, " AND ") + " GROUP BY session_id HAVING " +
		strings.Join(having, " AND ") + " ORDER BY last_us DESC, session_id LIMIT ?"
	return c.querySessions(ctx, query, args...)
}

// Session returns one session's summary, or ErrNotFound.
func (c *ClickHouse) Session(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, ErrNotFound
	}
	return only(c.querySessions(ctx, c.chSessionSelect()+" WHERE session_id = ? GROUP BY session_id", id))
}

func (c *ClickHouse) querySessions(ctx context.Context, query string, args ...any) ([]Session, error) {
	rows, err := c.conn.Query(ctx, query, args...)
	out, err := queryAll(rows, err, "sessions", func(s *Session) error {
		var (
			first, last    int64
			events, errors uint64
		)
		if err := rows.Scan(&s.ID, &s.AgentID, &s.ServerID, &s.ClientName, &s.ProtocolVersion,
			&first, &last, &events, &errors, &s.Tools); err != nil {
			return err
		}
		s.FirstSeen, s.LastSeen = fromMicros(first), fromMicros(last)
		s.Events, s.Errors = int(events), int(errors)
		if s.Tools == nil {
			s.Tools = []string{}
		}
		slices.Sort(s.Tools)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.addSessionAnomalies(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// latestAnomalies is a subquery with one row per anomaly, its latest version (highest count,
// then last_seen_us), so that not-yet-merged versions never count. Agent and kind are part of
// an anomaly's identity: the rows keep them as agent_id and kind; what a version may change is
// named w_*. where (with ? placeholders) narrows the rows read, and must only select whole
// anomalies (by identity, or anomaly_id IN …).
func (c *ClickHouse) latestAnomalies(where, extra string) string {
	if where == "" {
		where = "1"
	}
	return `SELECT anomaly_id, agent_id, kind, argMax(session_id, v) AS w_session, argMax(server_id, v) AS w_server,
		argMax(score, v) AS w_score, argMax(severity, v) AS w_severity, argMax(severity_rank, v) AS w_rank,
		argMax(learning, v) AS w_learning, argMax(first_seen_us, v) AS w_first, argMax(last_seen_us, v) AS w_last` + extra + `
		FROM (SELECT *, (count, last_seen_us) AS v FROM ` + c.t("anomalies") + ` WHERE ` + where + `)
		GROUP BY anomaly_id, agent_id, kind`
}

// addSessionAnomalies sets the sessions' Anomalies and MaxScore from the anomalies whose latest
// version names them.
func (c *ClickHouse) addSessionAnomalies(ctx context.Context, sessions []Session) error {
	if len(sessions) == 0 {
		return nil
	}
	index := make(map[string]int, len(sessions))
	ids := make([]any, len(sessions))
	for i, s := range sessions {
		index[s.ID], ids[i] = i, s.ID
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := c.conn.Query(ctx, "SELECT w_session, count(), max(w_score) FROM ("+
		c.latestAnomalies("anomaly_id IN (SELECT anomaly_id FROM "+c.t("anomalies")+" WHERE session_id IN "+in+")", "")+
		") WHERE w_session IN "+in+" GROUP BY w_session", append(ids, ids...)...)
	return eachRow(rows, err, "session anomalies", func() error {
		var (
			id    string
			n     uint64
			score float64
		)
		if err := rows.Scan(&id, &n, &score); err != nil {
			return err
		}
		if i, ok := index[id]; ok {
			sessions[i].Anomalies, sessions[i].MaxScore = int(n), score
		}
		return nil
	})
}

// SessionEvents returns a session's events in observed order (then by event ID); LIMIT BY drops
// not-yet-merged duplicates.
func (c *ClickHouse) SessionEvents(ctx context.Context, id string, limit int) ([]schemas.Event, error) {
	if id == "" {
		return []schemas.Event{}, nil // events without a session belong to none
	}
	cols := strings.Replace(chEventColumns, "observed_at, ", "", 1)
	rows, err := c.conn.Query(ctx, "SELECT "+cols+" FROM "+c.t("events")+
		" WHERE session_id = ? ORDER BY observed_us, event_id LIMIT 1 BY event_id LIMIT ?", id, limitOf(limit))
	if err != nil {
		return nil, fmt.Errorf("cannot query session events: %w", err)
	}
	defer rows.Close()
	out := []schemas.Event{}
	for rows.Next() {
		var (
			e                                         schemas.Event
			schemaVersion                             uint8
			observedUS, reqBytes, respBytes           int64
			errorCode                                 int32
			source, direction, kind, status           string
			labelKeys, labelValues                    []string
			flagTypes, flagSevs, flagPaths, flagEvids []string
			content                                   string
		)
		if err := rows.Scan(&e.ID, &schemaVersion, &observedUS, &e.CollectorID, &source, &e.Transport,
			&e.ProtocolVersion, &e.AgentID, &e.AgentSource, &e.DeclaredAgent, &e.ClientName, &e.ClientVersion,
			&e.ServerID, &e.SessionID, &e.JSONRPCID, &direction, &kind, &e.Method, &e.Target, &status,
			&errorCode, &e.LatencyMicros, &reqBytes, &respBytes, &e.ArgsShape, &e.ArgsHash, &e.ResultHash,
			&e.TraceID, &e.SpanID, &labelKeys, &labelValues, &flagTypes, &flagSevs, &flagPaths, &flagEvids, &content); err != nil {
			return nil, fmt.Errorf("cannot query session events: %w", err)
		}
		e.SchemaVersion = int(schemaVersion)
		e.ObservedAt = fromMicros(observedUS)
		e.Source, e.Direction, e.Kind, e.Status = schemas.Source(source), schemas.Direction(direction), schemas.Kind(kind), schemas.Status(status)
		e.ErrorCode, e.RequestBytes, e.ResponseBytes = int(errorCode), int(reqBytes), int(respBytes)
		if len(labelKeys) > 0 && len(labelKeys) == len(labelValues) {
			e.Labels = make(map[string]string, len(labelKeys))
			for i, k := range labelKeys {
				e.Labels[k] = labelValues[i]
			}
		}
		for i := range flagTypes {
			if i >= len(flagSevs) || i >= len(flagPaths) || i >= len(flagEvids) {
				break
			}
			e.Flags = append(e.Flags, schemas.Flag{Type: flagTypes[i], Severity: schemas.Severity(flagSevs[i]), Path: flagPaths[i], Evidence: flagEvids[i]})
		}
		if content != "" {
			e.Content = new(schemas.Content)
			if err := json.Unmarshal([]byte(content), e.Content); err != nil {
				return nil, fmt.Errorf("cannot decode event %s content: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot query session events: %w", err)
	}
	return out, nil
}

// Anomalies lists anomalies, most recent LastSeen first. Each anomaly is its version with the
// highest (Count, LastSeen), chosen with argMax so that unmerged versions never show; filters on
// what a version may change (severity, score, server, session, times) apply to that version
// only. Agent and kind are part of an anomaly's identity, so they filter rows directly.
func (c *ClickHouse) Anomalies(ctx context.Context, q AnomalyQuery) ([]schemas.Anomaly, error) {
	minRank, err := minSeverityRank(q.MinSeverity)
	if err != nil {
		return nil, fmt.Errorf("cannot query anomalies: %w", err)
	}
	var (
		where, outer []string
		args         []any
	)
	if q.AgentID != "" {
		where, args = append(where, "agent_id = ?"), append(args, q.AgentID)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, q.Kind)
	}
	// Narrow to anomalies that ever had the server or session; the outer filter checks the
	// latest version.
	if q.ServerID != "" {
		where, args = append(where, "anomaly_id IN (SELECT anomaly_id FROM "+c.t("anomalies")+" WHERE server_id = ?)"), append(args, q.ServerID)
	}
	if q.SessionID != "" {
		where, args = append(where, "anomaly_id IN (SELECT anomaly_id FROM "+c.t("anomalies")+" WHERE session_id = ?)"), append(args, q.SessionID)
	}
	var outerArgs []any
	if q.ServerID != "" {
		outer, outerArgs = append(outer, "w_server = ?"), append(outerArgs, q.ServerID)
	}
	if q.SessionID != "" {
		outer, outerArgs = append(outer, "w_session = ?"), append(outerArgs, q.SessionID)
	}
	if minRank >= 0 {
		outer, outerArgs = append(outer, "w_rank >= ?"), append(outerArgs, minRank)
	}
	if q.MinScore > 0 {
		outer, outerArgs = append(outer, "w_score >= ?"), append(outerArgs, q.MinScore)
	}
	if !q.Since.IsZero() {
		outer, outerArgs = append(outer, "w_last >= ?"), append(outerArgs, micros(q.Since))
	}
	if !q.Until.IsZero() {
		outer, outerArgs = append(outer, "w_first < ?"), append(outerArgs, micros(q.Until))
	}
	if q.After != nil {
		last := micros(normTime(q.After.LastSeen))
		outer, outerArgs = append(outer, "(w_last < ? OR (w_last = ? AND anomaly_id > ?))"), append(outerArgs, last, last, q.After.ID)
	}
	args = append(append(args, outerArgs...), limitOf(q.Limit))
	return c.queryAnomalies(ctx, "SELECT w_data FROM ("+c.latestAnomalies(strings.Join(append(where, "1"), " AND "),
		", argMax(data, v) AS w_data")+") WHERE "+strings.Join(append(outer, "1"), " AND ")+
		" ORDER BY w_last DESC, anomaly_id LIMIT ?", args...)
}

// Anomaly returns one anomaly's latest version, or ErrNotFound.
func (c *ClickHouse) Anomaly(ctx context.Context, id string) (schemas.Anomaly, error) {
	return only(c.queryAnomalies(ctx, "SELECT argMax(data, (count, last_seen_us)) FROM "+c.t("anomalies")+
		" WHERE anomaly_id = ? GROUP BY anomaly_id", id))
}

func (c *ClickHouse) queryAnomalies(ctx context.Context, query string, args ...any) ([]schemas.Anomaly, error) {
	rows, err := c.conn.Query(ctx, query, args...)
	return queryAll(rows, err, "anomalies", func(a *schemas.Anomaly) error {
		var data string
		if err := rows.Scan(&data); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(data), a); err != nil {
			return fmt.Errorf("cannot decode stored anomaly: %w", err)
		}
		return nil
	})
}

// DropExpired drops whole daily partitions of events, anomalies and deliveries that lie entirely before the
// retention cutoff, so data is kept at least RetentionDays and at most one day longer. It works
// on every server version (modern ones also expire rows by TTL during merges).
func (c *ClickHouse) DropExpired(ctx context.Context, now time.Time) error {
	cutoff := retentionCutoff(now, c.retentionDays)
	rows, err := c.conn.Query(ctx, `SELECT table, partition_id, sum(rows) FROM system.parts
		WHERE database = ? AND active AND table IN ('events', 'anomalies', 'deliveries')
		GROUP BY table, partition_id ORDER BY table, partition_id`, c.db)
	if err != nil {
		return fmt.Errorf("cannot list clickhouse partitions: %w", err)
	}
	type partition struct {
		table, id string
		rows      uint64
	}
	var expired []partition
	for rows.Next() {
		var p partition
		if err := rows.Scan(&p.table, &p.id, &p.rows); err != nil {
			rows.Close()
			return fmt.Errorf("cannot list clickhouse partitions: %w", err)
		}
		day, err := time.Parse("20060102", p.id)
		if err != nil {
			continue // not one of our daily partitions
		}
		if !day.AddDate(0, 0, 1).After(cutoff) {
			expired = append(expired, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot list clickhouse partitions: %w", err)
	}
	for _, p := range expired {
		if err := c.conn.Exec(ctx, "ALTER TABLE "+c.t(p.table)+" DROP PARTITION ID '"+p.id+"'"); err != nil {
			return fmt.Errorf("cannot drop %s partition %s: %w", p.table, p.id, err)
		}
		c.logger.Info("dropped expired partition", "table", p.table, "partition", p.id, "rows", p.rows)
	}
	return nil
}
