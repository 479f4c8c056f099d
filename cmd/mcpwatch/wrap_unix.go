//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts the server in a process group of its own, so a terminal's Ctrl-C
// reaches it once (forwarded by wrap) rather than twice.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
