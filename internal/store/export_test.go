package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// ExecClickHouse runs a statement on a ClickHouse store's connection, with {db} replaced by its
// database; tests only.
func ExecClickHouse(ctx context.Context, s Store, query string) error {
	c, ok := s.(*ClickHouse)
	if !ok {
		return fmt.Errorf("not a clickhouse store: %T", s)
	}
	return c.conn.Exec(ctx, strings.ReplaceAll(query, "{db}", c.db))
}

// CountClickHouse runs a SELECT count() … query on a ClickHouse store; tests only.
func CountClickHouse(ctx context.Context, s Store, query string, args ...any) (uint64, error) {
	c, ok := s.(*ClickHouse)
	if !ok {
		return 0, fmt.Errorf("not a clickhouse store: %T", s)
	}
	var n uint64
	err := c.conn.QueryRow(ctx, strings.ReplaceAll(query, "{db}", c.db), args...).Scan(&n)
	return n, err
}

// OpenChdb returns a ClickHouse store running on the modern engine embedded in npm's chdb (see
// chdb_test.go), with a function listing the statements it ran; tests only.
func OpenChdb(chdbDir, dir, db string, retentionDays int) (Store, func() []string, error) {
	s, conn, err := newChdbClickHouse(chdbDir, dir, db, retentionDays)
	if err != nil {
		return nil, nil, err
	}
	return s, conn.statements, nil
}

// MigrateTo applies the migrations up to version only, to build an older database; tests only.
func MigrateTo(ctx context.Context, s Store, version int) error {
	switch s := s.(type) {
	case *SQLite:
		return s.migrate(ctx, version)
	case *ClickHouse:
		return s.migrate(ctx, version)
	}
	return fmt.Errorf("unknown store %T", s)
}

// withoutLast drops the last column of a column list, checking that it is name.
func withoutLast(columns, name string) string {
	i := strings.LastIndex(columns, ",")
	if strings.TrimSpace(columns[i+1:]) != name {
		panic("BUG: the last column is not " + name)
	}
	return columns[:i]
}

// InsertEventsV1 inserts events as a schema version 1 binary did, without content, into a
// database at version 1; tests only.
func InsertEventsV1(ctx context.Context, s Store, events []schemas.Event) error {
	switch s := s.(type) {
	case *SQLite:
		cols := withoutLast(sqliteEventColumns, "content")
		query := `INSERT INTO events (` + cols + `) VALUES (?` + strings.Repeat(", ?", strings.Count(cols, ",")) + `)`
		return s.inTx(ctx, query, func(stmt *sql.Stmt) error {
			var args sqliteEventRow
			for i := range events {
				if err := args.set(&events[i]); err != nil {
					return err
				}
				if _, err := stmt.ExecContext(ctx, args[:len(args)-1]...); err != nil {
					return err
				}
			}
			return nil
		})
	case *ClickHouse:
		var cols eventColumns
		for i := range events {
			if err := cols.add(normEvent(events[i])); err != nil {
				return err
			}
		}
		data := cols.columns()
		return s.sendColumns(ctx, "events", withoutLast(chEventColumns, "content"), data[:len(data)-1])
	}
	return fmt.Errorf("unknown store %T", s)
}

// InsertAnomaliesV2 stores anomalies as a schema version 2 binary did (SQLite: without the
// learning and severity columns; ClickHouse: without tags), into a database at version 2; tests
// only.
func InsertAnomaliesV2(ctx context.Context, s Store, anomalies []schemas.Anomaly) error {
	switch s := s.(type) {
	case *SQLite:
		// Version 2's upsert.
		query := `INSERT INTO anomalies (anomaly_id, agent_id, session_id, server_id, kind, severity_rank, score,
			first_seen, last_seen, count, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (anomaly_id) DO UPDATE SET agent_id = excluded.agent_id, session_id = excluded.session_id,
				server_id = excluded.server_id, kind = excluded.kind, severity_rank = excluded.severity_rank,
				score = excluded.score, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
				count = excluded.count, data = excluded.data
			WHERE excluded.count > anomalies.count
				OR (excluded.count = anomalies.count AND excluded.last_seen > anomalies.last_seen)`
		return s.inTx(ctx, query, func(stmt *sql.Stmt) error {
			for _, a := range anomalies {
				args, err := sqliteAnomalyArgs(a)
				if err != nil {
					return err
				}
				if _, err := stmt.ExecContext(ctx, args[:11]...); err != nil {
					return err
				}
			}
			return nil
		})
	case *ClickHouse:
		batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("anomalies")+" ("+withoutLast(chAnomalyColumns, "tags")+")")
		if err != nil {
			return err
		}
		for _, a := range anomalies {
			row, err := chAnomalyRow(a)
			if err != nil {
				return err
			}
			if err := batch.Append(row[:len(row)-1]...); err != nil {
				return err
			}
		}
		return batch.Send()
	}
	return fmt.Errorf("unknown store %T", s)
}
