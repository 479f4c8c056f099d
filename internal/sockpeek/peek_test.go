//go:build unix

package sockpeek

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPeek(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)

	require.Equal(t, Empty, Peek(client))
	_, err = server.Write([]byte("x"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return Peek(client) == Data }, time.Second, time.Millisecond)
	require.Equal(t, Data, Peek(client), "a peek consumes nothing")
	require.NoError(t, server.Close())
	buf := make([]byte, 1)
	_, err = client.Read(buf)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return Peek(client) == Closed }, time.Second, time.Millisecond)
	require.NoError(t, client.Close())
	require.Equal(t, Closed, Peek(client), "our own side closed")
	require.Equal(t, Unknown, Peek(struct{ net.Conn }{client}), "not a socket")
}
