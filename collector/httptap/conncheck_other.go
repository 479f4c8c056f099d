//go:build !unix

package httptap

import "net"

// connUsable cannot peek at the connection here; a request on a connection the upstream
// closed fails, and is retried when http.Transport would retry it (h1Conn.exchange).
func connUsable(net.Conn) bool { return true }
