package httptap

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSessionStoreIsBounded(t *testing.T) {
	s := newSessionStore(time.Hour, 2)
	now := time.Now()
	k := func(id string) sessionKey { return sessionKey{upstream: "u", id: id} }

	s.initialized(k("a"), "cli-a", "1", "2025-06-18", now)
	s.seen(k("b"), "agent-b", "2025-11-25", now.Add(time.Second))
	s.seen(k("a"), "", "", now.Add(2*time.Second)) // a is now the most recently used
	s.seen(k("c"), "", "2025-03-26", now.Add(3*time.Second))

	require.Equal(t, 2, s.len())
	require.Equal(t, sessionInfo{clientName: "cli-a", clientVersion: "1", protocolVersion: "2025-06-18"}, s.info(k("a")))
	require.Equal(t, sessionInfo{}, s.info(k("b")), "the least recently used session was forgotten")
	require.Equal(t, "2025-03-26", s.info(k("c")).protocolVersion)

	// Sessionless traffic keeps no identity.
	s.seen(k(""), "x", "y", now)
	require.Equal(t, sessionInfo{}, s.info(k("")))
}

func TestSessionStoreForgetsIdleSessions(t *testing.T) {
	s := newSessionStore(time.Minute, 100)
	now := time.Now()
	s.seen(sessionKey{"u", "old"}, "a", "", now)
	s.seen(sessionKey{"u", "new"}, "b", "", now.Add(50*time.Second))
	s.seen(sessionKey{"u", "newer"}, "c", "", now.Add(70*time.Second))
	require.Equal(t, 2, s.len())
	require.Empty(t, s.info(sessionKey{"u", "old"}).declaredAgent)
	require.Equal(t, "b", s.info(sessionKey{"u", "new"}).declaredAgent)
}

func TestSessionStoreReturnsUnansweredServerCalls(t *testing.T) {
	s := newSessionStore(time.Hour, 10)
	k := sessionKey{"u", "s"}
	c := &call{timer: time.NewTimer(time.Hour)}
	ok, _ := s.addServerCall(k, "0", c, 1, time.Now())
	require.True(t, ok)
	ok, _ = s.addServerCall(k, "1", &call{}, 1, time.Now())
	require.False(t, ok, "over the per-session limit")
	require.Equal(t, []*call{c}, s.forget(k))
	require.Nil(t, s.takeServerCall(k, "0"))
}
