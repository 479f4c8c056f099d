//go:build unix

package stdiotap

import (
	"os"
	"os/exec"
	"syscall"
)

// forwardSignal sends sig to the server: to its whole process group when it leads one of its
// own (wrap starts it so, to keep a terminal's Ctrl-C from reaching it twice), as a terminal
// sends it to the whole foreground group, so the processes a launcher started (npx → node,
// uvx → python) get it too rather than being left behind.
func forwardSignal(cmd *exec.Cmd, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if ok && cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid && cmd.SysProcAttr.Pgid == 0 {
		return syscall.Kill(-cmd.Process.Pid, s)
	}
	return cmd.Process.Signal(sig)
}
