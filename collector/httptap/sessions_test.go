package httptap

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/identity"
)

func TestSessionStoreIsBounded(t *testing.T) {
	s := newSessionStore(time.Hour, 2)
	now := time.Now()
	k := func(id string) sessionKey { return sessionKey{upstream: "u", id: id} }

	s.initialized(k("a"), "cli-a", "1", "2025-06-18", now)
	s.seen(k("b"), identity.Request{Header: "agent-b"}, "2025-11-25", now.Add(time.Second))
	s.seen(k("a"), identity.Request{}, "", now.Add(2*time.Second)) // a is now the most recently used
	s.seen(k("c"), identity.Request{}, "2025-03-26", now.Add(3*time.Second))

	require.Equal(t, 2, s.len())
	require.Equal(t, sessionInfo{clientName: "cli-a", clientVersion: "1", protocolVersion: "2025-06-18"}, s.info(k("a")))
	require.Equal(t, sessionInfo{}, s.info(k("b")), "the least recently used session was forgotten")
	require.Equal(t, "2025-03-26", s.info(k("c")).protocolVersion)

	// Sessionless traffic keeps no identity.
	s.seen(k(""), identity.Request{Header: "x"}, "y", now)
	require.Equal(t, sessionInfo{}, s.info(k("")))
}

func TestSessionStoreForgetsIdleSessions(t *testing.T) {
	s := newSessionStore(time.Minute, 100)
	now := time.Now()
	s.seen(sessionKey{"u", "old"}, identity.Request{Header: "a"}, "", now)
	s.seen(sessionKey{"u", "new"}, identity.Request{Header: "b"}, "", now.Add(50*time.Second))
	s.seen(sessionKey{"u", "newer"}, identity.Request{Header: "c"}, "", now.Add(70*time.Second))
	require.Equal(t, 2, s.len())
	require.Empty(t, s.info(sessionKey{"u", "old"}).ident.Header)
	require.Equal(t, "b", s.info(sessionKey{"u", "new"}).ident.Header)
}

// A session remembers what its requests said about their sender, method by method: a later
// request that says less is still attributed.
func TestSessionStoreMergesIdentity(t *testing.T) {
	s := newSessionStore(time.Hour, 10)
	k := sessionKey{"u", "s"}
	now := time.Now()
	s.seen(k, identity.Request{Header: "h1", JWT: "j", JWTVerified: true, Instance: "10.0.0.1", TraceID: "t"}, "", now)
	s.seen(k, identity.Request{Header: "h2", Baggage: "b"}, "", now)
	s.seen(k, identity.Request{}, "", now)
	require.Equal(t, identity.Request{Header: "h2", JWT: "j", JWTVerified: true, Baggage: "b"}, s.info(k).ident)
}

func TestSessionStoreReturnsUnansweredServerCalls(t *testing.T) {
	s := newSessionStore(time.Hour, 10)
	k := sessionKey{"u", "s"}
	c := &call{}
	ok, _, _ := s.addServerCall(k, "0", c, 1, time.Now())
	require.True(t, ok)
	ok, first, _ := s.addServerCall(k, "1", &call{}, 1, time.Now())
	require.False(t, ok, "over the per-session limit")
	require.Nil(t, first)
	ok, first, _ = s.addServerCall(k, "0", &call{}, 1, time.Now())
	require.False(t, ok, "an id in use")
	require.Same(t, c, first)
	require.Equal(t, []*call{c}, s.forget(k))
	require.Nil(t, s.takeServerCall(k, "0"))
}
