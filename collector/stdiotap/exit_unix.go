//go:build unix

package stdiotap

import (
	"os"
	"syscall"
)

// signaled returns the signal that killed the process, if one did.
func signaled(ps *os.ProcessState) (int, bool) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return int(ws.Signal()), true
}
