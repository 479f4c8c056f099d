//go:build unix

package alerting

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPeerClosed: the socket itself says when the receiver closed the connection, whether or
// not a goroutine is reading it, and data waiting (TLS session tickets) is not a close.
func TestPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)

	watched := watch(client, true) // a goroutine now blocks reading client
	require.False(t, peerClosed(client), "open")
	_, err = server.Write([]byte("ticket"))
	require.NoError(t, err)
	require.False(t, peerClosed(client), "data waiting is no close")
	require.NoError(t, server.Close())
	require.Eventually(t, func() bool { return peerClosed(client) }, time.Second, time.Millisecond, "closed")
	require.False(t, watched.alive())
}
