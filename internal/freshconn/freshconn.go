package freshconn

import (
	"net"
	"net/http"
	"sync"
)

// Tracker follows a server's connections through its ConnState hook.
type Tracker struct {
	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

// ConnState is the http.Server.ConnState hook.
func (t *Tracker) ConnState(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s {
	case http.StateNew:
		if t.fresh == nil {
			t.fresh = map[net.Conn]struct{}{}
		}
		t.fresh[c] = struct{}{}
	case http.StateActive, http.StateHijacked, http.StateClosed:
		delete(t.fresh, c)
	}
}

// Close closes the connections that have not sent a request; call it before Shutdown.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.fresh {
		_ = c.Close()
	}
	clear(t.fresh)
}

// Len is the number of connections that have not sent a request.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.fresh)
}
