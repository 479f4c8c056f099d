package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// sqliteMigrations is the embedded backend's schema history. Times are unix microseconds (UTC).
// Events, the bulk of the data, get a column per field (labels, flags and content as JSON, the
// empty string when absent): smaller rows than whole-event JSON, and measurably faster to insert.
// Anomalies, few and rich, are kept whole as JSON in data beside the columns their queries filter
// on.
var sqliteMigrations = []migration{{
	version: 1,
	name:    "events, anomalies, baselines",
	stmts: []string{
		`CREATE TABLE events (
			event_id         TEXT    NOT NULL,
			schema_version   INTEGER NOT NULL,
			observed_at      INTEGER NOT NULL,
			collector_id     TEXT    NOT NULL,
			source           TEXT    NOT NULL,
			transport        TEXT    NOT NULL,
			protocol_version TEXT    NOT NULL,
			agent_id         TEXT    NOT NULL,
			agent_source     TEXT    NOT NULL,
			declared_agent   TEXT    NOT NULL,
			client_name      TEXT    NOT NULL,
			client_version   TEXT    NOT NULL,
			server_id        TEXT    NOT NULL,
			session_id       TEXT    NOT NULL,
			jsonrpc_id       TEXT    NOT NULL,
			direction        TEXT    NOT NULL,
			kind             TEXT    NOT NULL,
			method           TEXT    NOT NULL,
			target           TEXT    NOT NULL,
			status           TEXT    NOT NULL,
			error_code       INTEGER NOT NULL,
			latency_us       INTEGER NOT NULL,
			request_bytes    INTEGER NOT NULL,
			response_bytes   INTEGER NOT NULL,
			args_shape       TEXT    NOT NULL,
			args_hash        TEXT    NOT NULL,
			result_hash      TEXT    NOT NULL,
			trace_id         TEXT    NOT NULL,
			span_id          TEXT    NOT NULL,
			labels           TEXT    NOT NULL,
			flags            TEXT    NOT NULL
		)`,
		`CREATE UNIQUE INDEX events_event_id ON events (event_id)`,
		`CREATE INDEX events_session ON events (session_id, observed_at)`,
		`CREATE INDEX events_agent ON events (agent_id, observed_at)`,
		`CREATE INDEX events_time ON events (observed_at)`,
		`CREATE TABLE anomalies (
			anomaly_id    TEXT    NOT NULL PRIMARY KEY,
			agent_id      TEXT    NOT NULL,
			session_id    TEXT    NOT NULL,
			server_id     TEXT    NOT NULL,
			kind          TEXT    NOT NULL,
			severity_rank INTEGER NOT NULL,
			score         REAL    NOT NULL,
			first_seen    INTEGER NOT NULL,
			last_seen     INTEGER NOT NULL,
			count         INTEGER NOT NULL,
			data          TEXT    NOT NULL
		)`,
		`CREATE INDEX anomalies_last_seen ON anomalies (last_seen)`,
		`CREATE INDEX anomalies_agent ON anomalies (agent_id, last_seen)`,
		`CREATE TABLE baselines (
			model      TEXT    NOT NULL,
			key        TEXT    NOT NULL,
			updated_at INTEGER NOT NULL,
			state      BLOB    NOT NULL,
			PRIMARY KEY (model, key)
		)`,
	},
}, {
	version: 2,
	name:    "events.content",
	// Captured content as JSON (schemas.Content), empty when absent. ADD COLUMN only changes the
	// schema: existing rows read the default without being rewritten.
	stmts: []string{`ALTER TABLE events ADD COLUMN content TEXT NOT NULL DEFAULT ''`},
}, {
	version: 3,
	name:    "anomalies.learning and severity, definitions, deliveries",
	// Anomalies' tags travel in data. learning and severity get columns for the agent and
	// series queries, filled from data for anomalies stored before.
	stmts: []string{
		`ALTER TABLE anomalies ADD COLUMN learning INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE anomalies ADD COLUMN severity TEXT NOT NULL DEFAULT ''`,
		`UPDATE anomalies SET learning = coalesce(json_extract(data, '$.learning'), 0),
			severity = coalesce(json_extract(data, '$.severity'), '')`,
		`CREATE INDEX anomalies_session ON anomalies (session_id)`,
		`CREATE INDEX anomalies_first_seen ON anomalies (first_seen)`,
		`CREATE TABLE definitions (
			server_id   TEXT    NOT NULL,
			kind        TEXT    NOT NULL,
			name        TEXT    NOT NULL,
			first_seen  INTEGER NOT NULL,
			last_seen   INTEGER NOT NULL,
			fingerprint TEXT    NOT NULL,
			definition  TEXT    NOT NULL,
			PRIMARY KEY (server_id, kind, name, first_seen)
		)`,
		`CREATE INDEX definitions_first_seen ON definitions (first_seen)`,
		`CREATE TABLE deliveries (
			delivery_id TEXT    NOT NULL,
			status      TEXT    NOT NULL,
			anomaly_id  TEXT    NOT NULL,
			agent_id    TEXT    NOT NULL,
			kind        TEXT    NOT NULL,
			severity    TEXT    NOT NULL,
			sink        TEXT    NOT NULL,
			attempts    INTEGER NOT NULL,
			error       TEXT    NOT NULL,
			time        INTEGER NOT NULL,
			PRIMARY KEY (delivery_id, status)
		)`,
		`CREATE INDEX deliveries_time ON deliveries (time)`,
		`CREATE INDEX deliveries_anomaly ON deliveries (anomaly_id, time)`,
	},
}}

// SQLite is the embedded Store: one file in WAL mode. Writes go through a single connection
// (SQLite has one writer anyway, and this avoids SQLITE_BUSY between our own goroutines); reads
// use a small pool that WAL lets run concurrently with the writer.
type SQLite struct {
	w             *sql.DB
	r             *sql.DB
	retentionDays int
	logger        *slog.Logger
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating when missing) the database file at path.
func OpenSQLite(ctx context.Context, path string, retentionDays int, settings pipeline.Settings) (*SQLite, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("cannot open sqlite store: invalid path %q", path)
	}
	if retentionDays < 1 {
		return nil, fmt.Errorf("cannot open sqlite store: retention of %d days", retentionDays)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create sqlite store directory: %w", err)
	}
	// Create the file owner-only before SQLite does (it would use 0644); SQLite gives the -wal
	// and -shm files the same permissions as the database.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot create sqlite store file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("cannot create sqlite store file: %w", err)
	}
	// synchronous=NORMAL is durable across process crashes in WAL mode (a power loss may lose
	// the last transactions, which the bus redelivers since offsets commit after the write).
	const common = "_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)" +
		"&_pragma=temp_store(memory)&_pragma=cache_size(-16000)&_pragma=wal_autocheckpoint(16000)"
	w, err := sql.Open("sqlite", path+"?"+common+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("cannot open sqlite store: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Connect the writer first: it creates the file and switches it to WAL before readers open it.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("cannot open sqlite store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("cannot open sqlite store: %w", err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	settings = settings.WithComponent("store")
	return &SQLite{w: w, r: r, retentionDays: retentionDays, logger: settings.Logger.With("backend", BackendSQLite)}, nil
}

// Close closes both connection pools.
func (s *SQLite) Close() error {
	return errors.Join(s.w.Close(), s.r.Close())
}

// Migrate applies missing migrations in order, each in its own transaction.
func (s *SQLite) Migrate(ctx context.Context) error { return s.migrate(ctx, LatestSchemaVersion) }

// migrate applies the missing migrations up to version upTo (below the latest only in tests,
// which build older databases to upgrade).
func (s *SQLite) migrate(ctx context.Context, upTo int) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("cannot create schema_migrations: %w", err)
	}
	for _, m := range sqliteMigrations {
		if m.version > upTo {
			break
		}
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("cannot apply sqlite migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

func (s *SQLite) apply(ctx context.Context, m migration) error {
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: concurrent migrators serialise here
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixMicro()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.logger.Info("applied schema migration", "version", m.version, "name", m.name)
	return nil
}

// SchemaVersion reports the latest applied migration, 0 before Migrate.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read schema version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// sqliteEventColumns is the events column list for inserts and reads, in Event field order.
const sqliteEventColumns = `event_id, schema_version, observed_at, collector_id, source, transport,
	protocol_version, agent_id, agent_source, declared_agent, client_name, client_version, server_id,
	session_id, jsonrpc_id, direction, kind, method, target, status, error_code, latency_us,
	request_bytes, response_bytes, args_shape, args_hash, result_hash, trace_id, span_id, labels, flags,
	content`

var sqliteInsertEvent = `INSERT OR IGNORE INTO events (` + sqliteEventColumns + `) VALUES (?` +
	strings.Repeat(", ?", strings.Count(sqliteEventColumns, ",")) + `)`

// InsertEvents stores a batch in one transaction; events already stored (same ID) are skipped.
// (Multi-row VALUES statements measured slower here than one prepared single-row statement.)
func (s *SQLite) InsertEvents(ctx context.Context, events []schemas.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, sqliteInsertEvent, func(stmt *sql.Stmt) error {
		var args sqliteEventRow // reused: it stays on the stack
		for i := range events {
			if err := args.set(&events[i]); err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args[:]...); err != nil {
				return fmt.Errorf("cannot insert event %s: %w", events[i].ID, err)
			}
		}
		return nil
	})
}

// sqliteEventRow is an event's values in sqliteEventColumns order.
type sqliteEventRow [32]any

func (r *sqliteEventRow) set(e *schemas.Event) error {
	var labels, flags, content []byte
	if len(e.Labels) > 0 {
		var err error
		if labels, err = json.Marshal(e.Labels); err != nil {
			return fmt.Errorf("cannot encode event %s labels: %w", e.ID, err)
		}
	}
	if len(e.Flags) > 0 {
		var err error
		if flags, err = json.Marshal(e.Flags); err != nil {
			return fmt.Errorf("cannot encode event %s flags: %w", e.ID, err)
		}
	}
	if e.Content != nil {
		var err error
		if content, err = json.Marshal(e.Content); err != nil {
			return fmt.Errorf("cannot encode event %s content: %w", e.ID, err)
		}
	}
	*r = sqliteEventRow{e.ID, e.SchemaVersion, micros(e.ObservedAt), e.CollectorID,
		string(e.Source), e.Transport, e.ProtocolVersion, e.AgentID, e.AgentSource, e.DeclaredAgent,
		e.ClientName, e.ClientVersion, e.ServerID, e.SessionID, e.JSONRPCID, string(e.Direction),
		string(e.Kind), e.Method, e.Target, string(e.Status), e.ErrorCode, e.LatencyMicros,
		e.RequestBytes, e.ResponseBytes, e.ArgsShape, e.ArgsHash, e.ResultHash, e.TraceID, e.SpanID,
		string(labels), string(flags), string(content)}
	return nil
}

// The WHERE clause makes the upsert keep the highest Count, then the latest LastSeen; an equal
// version is left alone, so redelivery changes nothing.
const sqliteUpsertAnomaly = `INSERT INTO anomalies (anomaly_id, agent_id, session_id, server_id, kind,
	severity_rank, score, first_seen, last_seen, count, data, learning, severity)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (anomaly_id) DO UPDATE SET agent_id = excluded.agent_id, session_id = excluded.session_id,
		server_id = excluded.server_id, kind = excluded.kind, severity_rank = excluded.severity_rank,
		score = excluded.score, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
		count = excluded.count, data = excluded.data, learning = excluded.learning,
		severity = excluded.severity
	WHERE excluded.count > anomalies.count
		OR (excluded.count = anomalies.count AND excluded.last_seen > anomalies.last_seen)`

// sqliteAnomalyArgs is an anomaly's values in sqliteUpsertAnomaly's column order.
func sqliteAnomalyArgs(a schemas.Anomaly) ([]any, error) {
	a = normAnomaly(a)
	data, err := json.Marshal(&a)
	if err != nil {
		return nil, fmt.Errorf("cannot encode anomaly %s: %w", a.ID, err)
	}
	return []any{a.ID, a.AgentID, a.SessionID, a.ServerID, a.Kind, a.Severity.Rank(), a.Score, micros(a.FirstSeen),
		micros(a.LastSeen), a.Count, string(data), a.Learning, string(a.Severity)}, nil
}

// UpsertAnomalies stores a batch in one transaction, keeping the most advanced version of each.
func (s *SQLite) UpsertAnomalies(ctx context.Context, anomalies []schemas.Anomaly) error {
	if len(anomalies) == 0 {
		return nil
	}
	return s.inTx(ctx, sqliteUpsertAnomaly, func(stmt *sql.Stmt) error {
		for i := range anomalies {
			args, err := sqliteAnomalyArgs(anomalies[i])
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("cannot upsert anomaly %s: %w", anomalies[i].ID, err)
			}
		}
		return nil
	})
}

// A snapshot replaces the stored one unless the stored one is newer.
const sqliteSaveBaseline = `INSERT INTO baselines (model, key, updated_at, state) VALUES (?, ?, ?, ?)
	ON CONFLICT (model, key) DO UPDATE SET updated_at = excluded.updated_at, state = excluded.state
	WHERE excluded.updated_at >= baselines.updated_at`

// SaveBaselines stores snapshots, replacing older ones with the same (model, key).
func (s *SQLite) SaveBaselines(ctx context.Context, snapshots []Baseline) error {
	if len(snapshots) == 0 {
		return nil
	}
	return s.inTx(ctx, sqliteSaveBaseline, func(stmt *sql.Stmt) error {
		for _, b := range snapshots {
			state := b.State
			if state == nil {
				state = []byte{} // NOT NULL column
			}
			if _, err := stmt.ExecContext(ctx, b.Model, b.Key, micros(normTime(b.UpdatedAt)), state); err != nil {
				return fmt.Errorf("cannot save baseline %s/%s: %w", b.Model, b.Key, err)
			}
		}
		return nil
	})
}

// inTx runs fn with query prepared inside one write transaction.
func (s *SQLite) inTx(ctx context.Context, query string, fn func(*sql.Stmt) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot begin sqlite transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("cannot prepare sqlite statement: %w", err)
	}
	defer stmt.Close()
	if err := fn(stmt); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot commit sqlite transaction: %w", err)
	}
	return nil
}

// LoadBaselines returns every key's snapshot of a model, ordered by key.
func (s *SQLite) LoadBaselines(ctx context.Context, model string) ([]Baseline, error) {
	return s.loadBaselines(ctx, model, "", nil)
}

// LoadBaselinesOf returns the snapshots of a model's keys that exist, ordered by key.
func (s *SQLite) LoadBaselinesOf(ctx context.Context, model string, keys []string) ([]Baseline, error) {
	cond, args, err := baselineKeys(keys)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return s.loadBaselines(ctx, model, cond, args)
}

// loadBaselines returns a model's snapshots; cond narrows them (with args), e.g. to some keys.
func (s *SQLite) loadBaselines(ctx context.Context, model, cond string, args []any) ([]Baseline, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, updated_at, state FROM baselines WHERE model = ?`+cond+` ORDER BY key`,
		append([]any{model}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot load baselines: %w", err)
	}
	defer rows.Close()
	var out []Baseline
	for rows.Next() {
		b := Baseline{Model: model}
		var us int64
		if err := rows.Scan(&b.Key, &us, &b.State); err != nil {
			return nil, fmt.Errorf("cannot load baselines: %w", err)
		}
		b.UpdatedAt = fromMicros(us)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot load baselines: %w", err)
	}
	return out, nil
}

// sqliteSessionSelect aggregates a session from its events. max() of the text columns picks a
// non-empty value when any event has one (e.g. client_name only on initialize).
const sqliteSessionSelect = `SELECT session_id, max(agent_id), max(server_id), max(client_name),
	max(protocol_version), min(observed_at) AS first_seen, max(observed_at) AS last_seen, count(*),
	coalesce(sum(status <> 'ok'), 0),
	json_group_array(DISTINCT target) FILTER (WHERE method = 'tools/call' AND target <> '')
	FROM events`

// Sessions lists sessions, most recently active first. AgentID and ServerID select sessions with
// events of that agent or server.
func (s *SQLite) Sessions(ctx context.Context, q SessionQuery) ([]Session, error) {
	var (
		where = []string{"session_id <> ''"}
		sub   []string
		args  []any
	)
	// Narrow to candidate sessions through the indexes, then aggregate only those.
	if q.AgentID != "" {
		sub, args = append(sub, "agent_id = ?"), append(args, q.AgentID)
	}
	if q.ServerID != "" {
		sub, args = append(sub, "server_id = ?"), append(args, q.ServerID)
	}
	if !q.Since.IsZero() {
		sub, args = append(sub, "observed_at >= ?"), append(args, micros(q.Since))
	}
	if len(sub) > 0 {
		where = append(where, "session_id IN (SELECT session_id FROM events WHERE "+strings.Join(sub, " AND ")+")")
	}
	if q.Tool != "" {
		where, args = append(where, "session_id IN (SELECT session_id FROM events WHERE method = 'tools/call' AND target = ?)"),
			append(args, q.Tool)
	}
	if q.MinScore > 0 {
		where, args = append(where, "session_id IN (SELECT session_id FROM anomalies WHERE score >= ?)"), append(args, q.MinScore)
	}
	having := []string{"1"}
	if !q.Since.IsZero() {
		having, args = append(having, "last_seen >= ?"), append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		having, args = append(having, "first_seen < ?"), append(args, micros(q.Until))
	}
	if q.After != nil {
		last := micros(normTime(q.After.LastSeen))
		having, args = append(having, "(last_seen < ? OR (last_seen = ? AND session_id > ?))"), append(args, last, last, q.After.ID)
	}
	args = append(args, limitOf(q.Limit))
	query := sqliteSessionSelect + " WHERE " + strings.Join(where, " AND ") + " GROUP BY session_id HAVING " +
		strings.Join(having, " AND ") + " ORDER BY last_seen DESC, session_id LIMIT ?"
	return s.querySessions(ctx, query, args...)
}

// Session returns one session's summary, or ErrNotFound.
func (s *SQLite) Session(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, ErrNotFound
	}
	return only(s.querySessions(ctx, sqliteSessionSelect+" WHERE session_id = ? GROUP BY session_id", id))
}

func (s *SQLite) querySessions(ctx context.Context, query string, args ...any) ([]Session, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	out, err := queryAll(rows, err, "sessions", func(ss *Session) error {
		var (
			first, last int64
			tools       string
		)
		if err := rows.Scan(&ss.ID, &ss.AgentID, &ss.ServerID, &ss.ClientName, &ss.ProtocolVersion,
			&first, &last, &ss.Events, &ss.Errors, &tools); err != nil {
			return err
		}
		ss.FirstSeen, ss.LastSeen = fromMicros(first), fromMicros(last)
		if err := json.Unmarshal([]byte(tools), &ss.Tools); err != nil {
			return fmt.Errorf("cannot decode session tools: %w", err)
		}
		slices.Sort(ss.Tools)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.addSessionAnomalies(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// addSessionAnomalies sets the sessions' Anomalies and MaxScore.
func (s *SQLite) addSessionAnomalies(ctx context.Context, sessions []Session) error {
	if len(sessions) == 0 {
		return nil
	}
	index := make(map[string]int, len(sessions))
	args := make([]any, len(sessions))
	for i, ss := range sessions {
		index[ss.ID], args[i] = i, ss.ID
	}
	rows, err := s.r.QueryContext(ctx, `SELECT session_id, count(*), max(score) FROM anomalies
		WHERE session_id IN (?`+strings.Repeat(", ?", len(args)-1)+`) GROUP BY session_id`, args...)
	return eachRow(rows, err, "session anomalies", func() error {
		var (
			id    string
			n     int
			score float64
		)
		if err := rows.Scan(&id, &n, &score); err != nil {
			return err
		}
		if i, ok := index[id]; ok {
			sessions[i].Anomalies, sessions[i].MaxScore = n, score
		}
		return nil
	})
}

// SessionEvents returns a session's events in observed order (then by event ID).
func (s *SQLite) SessionEvents(ctx context.Context, id string, limit int) ([]schemas.Event, error) {
	if id == "" {
		return []schemas.Event{}, nil // events without a session belong to none
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteEventColumns+` FROM events WHERE session_id = ?
		ORDER BY observed_at, event_id LIMIT ?`, id, limitOf(limit))
	if err != nil {
		return nil, fmt.Errorf("cannot query session events: %w", err)
	}
	defer rows.Close()
	out := []schemas.Event{}
	for rows.Next() {
		var (
			e                               schemas.Event
			observedUS                      int64
			source, direction, kind, status string
			labels, flags, content          []byte
		)
		if err := rows.Scan(&e.ID, &e.SchemaVersion, &observedUS, &e.CollectorID, &source, &e.Transport,
			&e.ProtocolVersion, &e.AgentID, &e.AgentSource, &e.DeclaredAgent, &e.ClientName, &e.ClientVersion,
			&e.ServerID, &e.SessionID, &e.JSONRPCID, &direction, &kind, &e.Method, &e.Target, &status,
			&e.ErrorCode, &e.LatencyMicros, &e.RequestBytes, &e.ResponseBytes, &e.ArgsShape, &e.ArgsHash,
			&e.ResultHash, &e.TraceID, &e.SpanID, &labels, &flags, &content); err != nil {
			return nil, fmt.Errorf("cannot query session events: %w", err)
		}
		e.ObservedAt = fromMicros(observedUS)
		e.Source, e.Direction, e.Kind, e.Status = schemas.Source(source), schemas.Direction(direction), schemas.Kind(kind), schemas.Status(status)
		if len(labels) > 0 {
			if err := json.Unmarshal(labels, &e.Labels); err != nil {
				return nil, fmt.Errorf("cannot decode event %s labels: %w", e.ID, err)
			}
		}
		if len(flags) > 0 {
			if err := json.Unmarshal(flags, &e.Flags); err != nil {
				return nil, fmt.Errorf("cannot decode event %s flags: %w", e.ID, err)
			}
		}
		if len(content) > 0 {
			e.Content = new(schemas.Content)
			if err := json.Unmarshal(content, e.Content); err != nil {
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

// Anomalies lists anomalies, most recent LastSeen first.
func (s *SQLite) Anomalies(ctx context.Context, q AnomalyQuery) ([]schemas.Anomaly, error) {
	minRank, err := minSeverityRank(q.MinSeverity)
	if err != nil {
		return nil, fmt.Errorf("cannot query anomalies: %w", err)
	}
	var (
		where = []string{"1"}
		args  []any
	)
	if q.AgentID != "" {
		where, args = append(where, "agent_id = ?"), append(args, q.AgentID)
	}
	if q.ServerID != "" {
		where, args = append(where, "server_id = ?"), append(args, q.ServerID)
	}
	if q.SessionID != "" {
		where, args = append(where, "session_id = ?"), append(args, q.SessionID)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, q.Kind)
	}
	if minRank >= 0 {
		where, args = append(where, "severity_rank >= ?"), append(args, minRank)
	}
	if q.MinScore > 0 {
		where, args = append(where, "score >= ?"), append(args, q.MinScore)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "last_seen >= ?"), append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "first_seen < ?"), append(args, micros(q.Until))
	}
	if q.After != nil {
		last := micros(normTime(q.After.LastSeen))
		where, args = append(where, "(last_seen < ? OR (last_seen = ? AND anomaly_id > ?))"), append(args, last, last, q.After.ID)
	}
	args = append(args, limitOf(q.Limit))
	return s.queryAnomalies(ctx, "SELECT data FROM anomalies WHERE "+strings.Join(where, " AND ")+
		" ORDER BY last_seen DESC, anomaly_id LIMIT ?", args...)
}

// Anomaly returns one anomaly, or ErrNotFound.
func (s *SQLite) Anomaly(ctx context.Context, id string) (schemas.Anomaly, error) {
	return only(s.queryAnomalies(ctx, "SELECT data FROM anomalies WHERE anomaly_id = ?", id))
}

func (s *SQLite) queryAnomalies(ctx context.Context, query string, args ...any) ([]schemas.Anomaly, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	return queryAll(rows, err, "anomalies", func(a *schemas.Anomaly) error {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return err
		}
		if err := json.Unmarshal(data, a); err != nil {
			return fmt.Errorf("cannot decode stored anomaly: %w", err)
		}
		return nil
	})
}

// DropExpired deletes events observed, anomalies last seen and deliveries that happened before
// the retention cutoff. It deletes in chunks so that writers are never blocked for long.
func (s *SQLite) DropExpired(ctx context.Context, now time.Time) error {
	cutoff := micros(retentionCutoff(now, s.retentionDays))
	for _, t := range []struct{ table, column string }{{"events", "observed_at"}, {"anomalies", "last_seen"}, {"deliveries", "time"}} {
		query := fmt.Sprintf(`DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE %[2]s < ? LIMIT 5000)`, t.table, t.column)
		var total int64
		for {
			res, err := s.w.ExecContext(ctx, query, cutoff)
			if err != nil {
				return fmt.Errorf("cannot delete expired %s: %w", t.table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("cannot delete expired %s: %w", t.table, err)
			}
			total += n
			if n == 0 {
				break
			}
		}
		if total > 0 {
			s.logger.Info("deleted expired rows", "table", t.table, "rows", total)
		}
	}
	return nil
}
