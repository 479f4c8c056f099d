package store

import (
	"context"
	"fmt"
	"strings"
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
