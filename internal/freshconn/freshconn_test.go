package freshconn

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A server whose fresh connections are closed first shuts down at once; without, Shutdown
// waits for the connection that sent nothing until its deadline.
func TestShutdownDoesNotWaitForConnectionsThatSentNothing(t *testing.T) {
	for _, closeFresh := range []bool{true, false} {
		var tr Tracker
		srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: tr.ConnState}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(ln)
		}()
		spare, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		require.Eventually(t, func() bool { return tr.Len() == 1 }, 5*time.Second, time.Millisecond)

		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if closeFresh {
			tr.Close()
			require.NoError(t, srv.Shutdown(ctx))
			_, err = spare.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF)
		} else {
			require.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded, "http.Server alone waits for it")
			_ = srv.Close()
		}
		cancel()
		_ = spare.Close()
		<-done
	}
}

// A connection that sent a request is no longer fresh: Close leaves it alone.
func TestServedConnectionsAreNotFresh(t *testing.T) {
	var tr Tracker
	srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: tr.ConnState}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Zero(t, tr.Len())
}
