package httptap

import (
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/collector/identity"
)

// sessionKey names a session: session ids are chosen by servers, so they are per upstream.
// An empty id is the bucket of sessionless (2026-07-28) traffic, which keeps no identity.
type sessionKey struct {
	upstream, id string
}

// session is what the tap remembers about one MCP session.
type session struct {
	info     sessionInfo
	lastSeen time.Time
	// serverCalls are server-to-client requests awaiting the client's answering POST, by id.
	serverCalls map[string]*call
}

// sessionInfo is the identity stamped on a session's events.
type sessionInfo struct {
	clientName, clientVersion, protocolVersion string
	// ident is what the session's requests said about their sender, latest first per method;
	// it fills in for requests that say less (identify).
	ident identity.Request
}

// sessionStore is a bounded map of sessions; idle ones are swept lazily, so it needs no
// goroutine of its own.
type sessionStore struct {
	idle time.Duration
	max  int

	mu        sync.Mutex
	m         map[sessionKey]*session
	lastSweep time.Time
}

func newSessionStore(idle time.Duration, max int) *sessionStore {
	return &sessionStore{idle: idle, max: max, m: map[sessionKey]*session{}}
}

// get returns the session, creating it if needed; s.mu must be held. It returns the calls of
// sessions it had to forget to make room; their timeouts are the caller's to emit.
func (s *sessionStore) get(k sessionKey, now time.Time) (*session, []*call) {
	var dropped []*call
	if now.Sub(s.lastSweep) > s.idle/4 {
		s.lastSweep = now
		for key, ss := range s.m {
			if now.Sub(ss.lastSeen) > s.idle {
				dropped = append(dropped, s.removeLocked(key, ss)...)
			}
		}
	}
	ss := s.m[k]
	if ss == nil {
		if len(s.m) >= s.max {
			var oldestKey sessionKey
			var oldest *session
			for key, cand := range s.m {
				if oldest == nil || cand.lastSeen.Before(oldest.lastSeen) {
					oldestKey, oldest = key, cand
				}
			}
			dropped = append(dropped, s.removeLocked(oldestKey, oldest)...)
		}
		ss = &session{}
		s.m[k] = ss
	}
	ss.lastSeen = now
	return ss, dropped
}

func (s *sessionStore) removeLocked(k sessionKey, ss *session) []*call {
	delete(s.m, k)
	calls := make([]*call, 0, len(ss.serverCalls))
	for _, c := range ss.serverCalls {
		calls = append(calls, c)
	}
	return calls
}

// seen records a request of a session: what it said about its sender and the protocol version
// header.
func (s *sessionStore) seen(k sessionKey, ident identity.Request, protocolVersion string, now time.Time) []*call {
	if k.id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, dropped := s.get(k, now)
	ss.info.ident = mergeIdent(ident, ss.info.ident)
	ss.info.ident.Instance, ss.info.ident.TraceID = "", "" // per request, not per session
	if ss.info.protocolVersion == "" {
		ss.info.protocolVersion = protocolVersion
	}
	return dropped
}

// initialized records what an initialize exchange said about a session.
func (s *sessionStore) initialized(k sessionKey, clientName, clientVersion, protocolVersion string, now time.Time) []*call {
	if k.id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, dropped := s.get(k, now)
	ss.info.clientName, ss.info.clientVersion = clientName, clientVersion
	if protocolVersion != "" {
		ss.info.protocolVersion = protocolVersion
	}
	return dropped
}

// info returns what is known about a session.
func (s *sessionStore) info(k sessionKey) sessionInfo {
	if k.id == "" {
		return sessionInfo{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[k]; ss != nil {
		return ss.info
	}
	return sessionInfo{}
}

// forget drops a session and returns its unanswered server requests.
func (s *sessionStore) forget(k sessionKey) []*call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[k]; ss != nil {
		return s.removeLocked(k, ss)
	}
	return nil
}

// addServerCall remembers a server request until the client answers. It fails when a request
// with that id is unanswered (first is that request) or when the session already has max.
func (s *sessionStore) addServerCall(k sessionKey, id string, c *call, max int, now time.Time) (ok bool, first *call, dropped []*call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, dropped := s.get(k, now)
	if first := ss.serverCalls[id]; first != nil {
		return false, first, dropped
	}
	if len(ss.serverCalls) >= max {
		return false, nil, dropped
	}
	if ss.serverCalls == nil {
		ss.serverCalls = map[string]*call{}
	}
	ss.serverCalls[id] = c
	return true, nil, dropped
}

// takeServerCall removes and returns the server request with the given id, or nil.
func (s *sessionStore) takeServerCall(k sessionKey, id string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[k]
	if ss == nil {
		return nil
	}
	c := ss.serverCalls[id]
	if c != nil {
		delete(ss.serverCalls, id)
	}
	return c
}

// takeServerCallIf removes the server request with the given id if it is c.
func (s *sessionStore) takeServerCallIf(k sessionKey, id string, c *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[k]; ss != nil && ss.serverCalls[id] == c {
		delete(ss.serverCalls, id)
		return true
	}
	return false
}

// drain forgets every session and returns all unanswered server requests.
func (s *sessionStore) drain() []*call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var calls []*call
	for k, ss := range s.m {
		calls = append(calls, s.removeLocked(k, ss)...)
	}
	return calls
}

// len returns the number of sessions remembered.
func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
