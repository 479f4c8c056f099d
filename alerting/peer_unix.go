//go:build unix

package alerting

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the other end of a TCP connection has closed or reset it, by
// peeking at the socket without waiting. It works beside a goroutine blocked reading the same
// connection: Control does not take the connection's read lock, and a peek consumes nothing.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var one [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0 // end of stream; n > 0 is data waiting (TLS session tickets)
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			closed = true // reset, or the socket is gone
		}
	})
	return closed
}
