//go:build !unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// forwardedSignals are the signals wrap passes on to the server instead of obeying them.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM}

func ownProcessGroup(*exec.Cmd) {}
