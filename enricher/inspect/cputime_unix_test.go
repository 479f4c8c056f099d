//go:build unix

package inspect_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used (user and system, all threads), so that a
// benchmark can report events per CPU-second: per core, whatever else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
