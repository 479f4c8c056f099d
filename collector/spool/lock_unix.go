//go:build unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir's lock file, released when the file is closed
// or the process exits (so a killed process never leaves a stale lock).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("cannot lock spool: %w", err)
	}
	// Its holder may have removed the spool between our open and our lock (CloseAndRemove):
	// then the file we locked is no longer dir's.
	fi, ferr := f.Stat()
	pi, perr := os.Stat(lockPath(dir))
	if ferr != nil || perr != nil || !os.SameFile(fi, pi) {
		f.Close()
		return nil, ErrLocked
	}
	return f, nil
}

// Locking says whether Open locks its directory against other processes.
const Locking = true
