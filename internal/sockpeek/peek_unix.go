//go:build unix

package sockpeek

import (
	"errors"
	"net"
	"syscall"
)

// Peek says what c's socket holds, consuming nothing. It works beside a goroutine blocked
// reading c: Control does not take the connection's read lock.
func Peek(c net.Conn) State {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Unknown
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Closed
	}
	state := Closed
	var one [1]byte
	if err := rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil && n > 0:
			state = Data
		case err == nil: // 0 bytes: the end of the stream
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
			state = Empty
		case errors.Is(err, syscall.EINTR):
			state = Unknown
		}
	}); err != nil {
		return Closed
	}
	return state
}
