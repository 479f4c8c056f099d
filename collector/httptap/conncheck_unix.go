//go:build unix

package httptap

import (
	"net"
	"syscall"
)

// connUsable reports whether an idle connection can carry a request: the upstream has not
// closed it (nor sent anything unasked, which would be read as the next response). http.Transport
// learns this from a goroutine reading each idle connection; one non-blocking peek is cheaper.
func connUsable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	usable := false
	var one [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Go's sockets are non-blocking: no data is EAGAIN, a closed connection is 0 bytes.
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK)
		usable = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait
	})
	return err == nil && usable
}
