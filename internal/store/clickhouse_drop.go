package store

import (
	"context"
	"fmt"
)

// DropDatabase removes mcpwatch's ClickHouse database and everything in it. It is for tests and
// uninstalls; nothing in mcpwatch calls it.
func (c *ClickHouse) DropDatabase(ctx context.Context) error {
	if err := c.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+c.db); err != nil {
		return fmt.Errorf("cannot drop database %s: %w", c.db, err)
	}
	return nil
}
