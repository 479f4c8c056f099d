package identity

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestStitcherRule(t *testing.T) {
	k := StitchKey{Server: "srv", Agent: "a", ClientName: "cli", ClientVersion: "1", Instance: "10.0.0.1"}
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	type step struct {
		key   StitchKey
		trace string
		at    time.Duration // after t0
		same  int           // index of the earlier step whose session this one must share, or -1 for a new one
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"within the gap", []step{{k, "", 0, -1}, {k, "", 10 * time.Minute, 0}, {k, "", 24 * time.Minute, 0}}},
		{"after the gap", []step{{k, "", 0, -1}, {k, "", 16 * time.Minute, -1}, {k, "", 20 * time.Minute, 1}}},
		{"late arrival of an earlier operation", []step{{k, "", 5 * time.Minute, -1}, {k, "", 0, 0}}},
		{"a known trace bridges the gap", []step{{k, trace, 0, -1}, {k, trace, time.Hour, 0}, {k, "", time.Hour + time.Minute, 0}}},
		{"an unknown trace does not", []step{{k, trace, 0, -1}, {k, "00000000000000000000000000000001", time.Hour, -1}}},
		{"other agent", []step{{k, "", 0, -1}, {withAgent(k, "b"), "", time.Second, -1}}},
		{"other instance", []step{{k, "", 0, -1}, {withInstance(k, "10.0.0.2"), "", time.Second, -1}}},
		{"other server", []step{{k, "", 0, -1}, {StitchKey{Server: "other", Agent: "a", ClientName: "cli", ClientVersion: "1", Instance: "10.0.0.1"}, "", time.Second, -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewStitcher(SessionsConfig{})
			require.NoError(t, err)
			var ids []string
			for i, st := range tt.steps {
				id := s.SessionID(st.key, st.trace, t0.Add(st.at))
				u, err := uuid.Parse(id)
				require.NoError(t, err)
				require.Equal(t, uuid.Version(5), u.Version())
				if st.same >= 0 {
					require.Equal(t, ids[st.same], id, "step %d", i)
				} else {
					require.NotContains(t, ids, id, "step %d starts a new session", i)
					require.Equal(t, StitchedID(st.key, t0.Add(st.at)), id, "the id derives from key and start")
				}
				ids = append(ids, id)
			}
		})
	}
}

func withAgent(k StitchKey, a string) StitchKey    { k.Agent = a; return k }
func withInstance(k StitchKey, i string) StitchKey { k.Instance = i; return k }

func TestStitchedIDIsDeterministic(t *testing.T) {
	k := StitchKey{Server: "s", Agent: "a"}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	require.Equal(t, StitchedID(k, t0), StitchedID(k, t0.UTC()))
	require.NotEqual(t, StitchedID(k, t0), StitchedID(k, t0.Add(time.Nanosecond)))
	// Fields cannot run into each other.
	require.NotEqual(t, StitchedID(StitchKey{Server: "ab", Agent: "c"}, t0), StitchedID(StitchKey{Server: "a", Agent: "bc"}, t0))
	// Pinned, so a change of the derivation (which would change ids across an upgrade) is seen.
	require.Equal(t, "72c53e61-0cb1-5c82-8b3b-70a284e202a2", StitchedID(k, time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)))
}

func TestStitcherStateSurvivesRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sessions.json")
	cfg := SessionsConfig{IdleGap: time.Hour, StateFile: file}
	k := StitchKey{Server: "s", Agent: "a"}
	now := time.Now()

	s, err := NewStitcher(cfg)
	require.NoError(t, err)
	id := s.SessionID(k, "", now.Add(-10*time.Minute))
	closed := s.SessionID(StitchKey{Server: "s", Agent: "old"}, "", now.Add(-2*time.Hour))
	require.NoError(t, s.Save())
	fi, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	s2, err := NewStitcher(cfg)
	require.NoError(t, err)
	require.Equal(t, 2, s2.Len(), "sessions are not dropped by the wall clock")
	require.Equal(t, id, s2.SessionID(k, "", now), "an open session keeps its id across a restart")
	require.NotEqual(t, closed, s2.SessionID(StitchKey{Server: "s", Agent: "old"}, "", now), "one idle for longer than the gap is over")

	require.NoError(t, os.WriteFile(file, []byte("{not json"), 0o600))
	s3, err := NewStitcher(cfg)
	require.ErrorContains(t, err, "not a version 1 state file")
	require.NotNil(t, s3, "a usable, empty stitcher")
	require.Zero(t, s3.Len())

	s4, err := NewStitcher(SessionsConfig{})
	require.NoError(t, err)
	require.NoError(t, s4.Save(), "no state file: nothing to save")
}

// TestStitcherStateKeepsLaggingSessions: sessions are timed by their operations' times, so one
// whose operations lag the wall clock by more than the idle gap (a sender's clock behind, a
// replayed export) still continues across a restart. With max_open smaller than when saved, the
// most recently active sessions are restored.
func TestStitcherStateKeepsLaggingSessions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sessions.json")
	cfg := SessionsConfig{IdleGap: 15 * time.Minute, StateFile: file}
	k, k2 := StitchKey{Server: "s", Agent: "a"}, StitchKey{Server: "s", Agent: "b"}
	then := time.Now().Add(-3 * time.Hour)

	s, err := NewStitcher(cfg)
	require.NoError(t, err)
	id := s.SessionID(k, "", then)
	require.Equal(t, id, s.SessionID(k, "", then.Add(10*time.Minute)))
	id2 := s.SessionID(k2, "", then.Add(-time.Hour))
	require.NoError(t, s.Save())

	s2, err := NewStitcher(cfg)
	require.NoError(t, err)
	require.Equal(t, id, s2.SessionID(k, "", then.Add(20*time.Minute)), "the session continues after the restart")
	require.Equal(t, id2, s2.SessionID(k2, "", then.Add(-50*time.Minute)))

	cfg.MaxOpen = 1
	s3, err := NewStitcher(cfg)
	require.NoError(t, err)
	require.Equal(t, 1, s3.Len())
	require.Equal(t, id, s3.SessionID(k, "", then.Add(20*time.Minute)), "the most recently active is kept")
}

// TestStitcherArrivalOrder pins what docs/identity.md says about operations arriving out of
// time order: a late one joins the open session of its key, the latest started, so ids depend
// on the order. With a 15m gap, operations at 0, +20m and +10m form two sessions arriving in
// that order (+10m joins +20m's, although +10m is within the gap of 0) and one arriving in time
// order; and an operation far before the open session's start still joins it.
func TestStitcherArrivalOrder(t *testing.T) {
	k := StitchKey{Server: "s", Agent: "a"}
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	ids := func(at ...time.Duration) []string {
		s, err := NewStitcher(SessionsConfig{IdleGap: 15 * time.Minute})
		require.NoError(t, err)
		var out []string
		for _, d := range at {
			out = append(out, s.SessionID(k, "", t0.Add(d)))
		}
		return out
	}
	a, b := StitchedID(k, t0), StitchedID(k, t0.Add(20*time.Minute))
	require.Equal(t, []string{a, b, b}, ids(0, 20*time.Minute, 10*time.Minute))
	require.Equal(t, []string{a, a, a}, ids(0, 10*time.Minute, 20*time.Minute))
	require.Equal(t, []string{a, a}, ids(0, -time.Hour))
}

func TestStitcherIsBounded(t *testing.T) {
	s, err := NewStitcher(SessionsConfig{IdleGap: time.Minute, MaxOpen: 2})
	require.NoError(t, err)
	t0 := time.Now()
	a := s.SessionID(StitchKey{Agent: "a"}, "", t0)
	s.SessionID(StitchKey{Agent: "b"}, "", t0.Add(time.Second))
	s.SessionID(StitchKey{Agent: "a"}, "", t0.Add(2*time.Second))
	s.SessionID(StitchKey{Agent: "c"}, "", t0.Add(3*time.Second)) // b, least recently active, goes
	require.Equal(t, 2, s.Len())
	require.Equal(t, a, s.SessionID(StitchKey{Agent: "a"}, "", t0.Add(4*time.Second)))
	require.NotEqual(t, StitchedID(StitchKey{Agent: "b"}, t0.Add(time.Second)), s.SessionID(StitchKey{Agent: "b"}, "", t0.Add(5*time.Second)))
}

func TestStitcherRemembersFewTraces(t *testing.T) {
	s, err := NewStitcher(SessionsConfig{})
	require.NoError(t, err)
	k := StitchKey{Agent: "a"}
	t0 := time.Now()
	for i := range maxTracesPerSession + 5 {
		s.SessionID(k, uuid.NewString(), t0.Add(time.Duration(i)*time.Second))
	}
	require.Len(t, s.open[k].Traces, maxTracesPerSession)
}
