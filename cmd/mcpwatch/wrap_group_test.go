//go:build unix

package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWrapSignalsReachALaunchersChildren: a server started through a launcher (npx → node) is
// a child of the command wrap runs. A signal wrap forwards reaches it too, as a terminal's
// would reach the whole foreground group, instead of killing the launcher and leaving it behind.
func TestWrapSignalsReachALaunchersChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mcpwatch binary")
	}
	// The launcher waits on a child that reports SIGTERM, or gives up after 10 s.
	launcher := `( trap 'echo child got TERM >&2; exit 0' TERM; echo ready >&2
	  i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done ) & wait`
	cmd := exec.Command(mcpwatchBinary(t), "wrap", "--mcpwatch", "http://127.0.0.1:1", "--spool-dir", t.TempDir(),
		"--log-level", "error", "--", "sh", "-c", launcher)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "ready") }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait() // returns once the child, which shares wrap's stderr, is gone too
	require.Contains(t, stderr.String(), "child got TERM")
}
