//go:build !unix

package stdiotap

import (
	"os"
	"os/exec"
)

// forwardSignal sends sig to the server.
func forwardSignal(cmd *exec.Cmd, sig os.Signal) error { return cmd.Process.Signal(sig) }
