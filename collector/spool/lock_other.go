//go:build !unix

package spool

import (
	"fmt"
	"os"
)

// lockDir only opens the lock file: without flock, two processes must not share a spool dir.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool lock: %w", err)
	}
	return f, nil
}

// Locking says whether Open locks its directory against other processes.
const Locking = false
