package sequence

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// history generates sessions of a habitual agent with occasional one-off tools, so snapshots
// hold evictions, rare and frequent entries.
func history(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		seq := "initialize notifications/initialized tools/list"
		for range 2 + rng.IntN(5) {
			seq += fmt.Sprintf(" tools/call:t%d", rng.IntN(6))
		}
		if rng.IntN(10) == 0 {
			seq += fmt.Sprintf(" tools/call:once%d", rng.IntN(1000))
		}
		out[i] = seq
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	train, more, probe := history(rng, 300), history(rng, 50), history(rng, 100)
	probe = append(probe, "initialize tools/call:delete_all", "tools/list", normal)

	for _, peer := range []bool{false, true} {
		t.Run(fmt.Sprintf("peer=%v", peer), func(t *testing.T) {
			a := newAgent(t, Config{MaxSymbols: 10, MaxTransitions: 40})
			if peer {
				a.b = a.m.NewPeerBaseline()
			}
			for _, seq := range train {
				a.learn(seq, 1)
			}
			checkInvariants(t, a.b)
			data, err := a.b.MarshalBinary()
			require.NoError(t, err)

			// Another process: a fresh symbol table where the same calls get other symbols.
			m2, err := New(Config{MaxSymbols: 10, MaxTransitions: 40}, nil)
			require.NoError(t, err)
			for i := range 7 {
				m2.Symbols().Intern("tools/call", fmt.Sprint("unrelated", i))
			}
			b := &agent{t: t, m: m2, b: m2.NewBaseline(), s: m2.NewSession()}
			if peer {
				b.b = m2.NewPeerBaseline()
			}
			require.NoError(t, b.b.UnmarshalBinary(data))
			checkInvariants(t, b.b)
			again, err := b.b.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, data, again, "decoding and encoding again is lossless")

			same := func() {
				t.Helper()
				for _, seq := range probe {
					sa, va := a.run(seq, nil)
					sb, vb := b.run(seq, nil)
					require.Equal(t, a.m.Explain(va.Finding), b.m.Explain(vb.Finding), seq)
					require.Equal(t, va.OutOfRange, vb.OutOfRange, seq)
					require.InDelta(t, va.MeanNLL, vb.MeanNLL, 1e-12, seq)
					for i := range sa {
						require.InDelta(t, sa[i].Prob, sb[i].Prob, 1e-12, seq)
					}
				}
			}
			same()
			// And they keep agreeing as both learn on.
			for _, seq := range more {
				a.learn(seq, 1)
				b.learn(seq, 1)
			}
			same()
		})
	}
}

func TestSnapshotIntoSmallerCaps(t *testing.T) {
	a := newAgent(t, Config{})
	for _, seq := range history(rand.New(rand.NewPCG(3, 4)), 200) {
		a.learn(seq, 1)
	}
	data, err := a.b.MarshalBinary()
	require.NoError(t, err)
	m, err := New(Config{MaxSymbols: 4, MaxTransitions: 5}, nil)
	require.NoError(t, err)
	b := m.NewBaseline()
	require.NoError(t, b.UnmarshalBinary(data))
	require.Equal(t, 4, b.calls.len())
	require.LessOrEqual(t, b.trans.len(), 5)
	require.Equal(t, 200, b.Sessions())
	checkInvariants(t, b)
}

func TestSnapshotRejectsBadInput(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn(normal, 3)
	good, err := a.b.MarshalBinary()
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a sequence baseline snapshot"},
		{"magic", append([]byte("nope"), good[4:]...), "not a sequence baseline snapshot"},
		{"version", append(append([]byte("mwsq"), 9), good[5:]...), "unsupported snapshot version 9"},
		{"trailing", append(append([]byte{}, good...), 0), "1 unexpected trailing bytes"},
		{"truncated", good[:len(good)-1], "truncated or malformed number"},
		{"huge count", append(append([]byte{}, good[:5]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), "value 549755813887 out of range (max 4294967295)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newAgent(t, Config{})
			b.learn(normal, 5)
			err := b.b.UnmarshalBinary(tc.data)
			require.ErrorContains(t, err, "cannot decode sequence baseline: "+tc.want)
			require.Zero(t, b.b.Sessions(), "a failed decode leaves an empty baseline, not half of one")
			require.Zero(t, b.b.calls.len())
		})
	}
	// No prefix and no corruption of a valid snapshot may panic.
	m, err := New(Config{}, nil)
	require.NoError(t, err)
	for i := range len(good) {
		require.Error(t, m.NewBaseline().UnmarshalBinary(good[:i]), "prefix of %d bytes", i)
		for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff} {
			bad := append([]byte{}, good...)
			bad[i] = v
			b := m.NewBaseline()
			if b.UnmarshalBinary(bad) == nil {
				checkInvariants(t, b)
			}
		}
	}
	_, err = (&Baseline{}).MarshalBinary()
	require.ErrorContains(t, err, "not created by a Model")
	require.ErrorContains(t, (&Baseline{}).UnmarshalBinary(good), "not created by a Model")
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	m, err := New(Config{}, nil)
	require.NoError(t, err)
	peer := m.NewPeerBaseline()
	a := &agent{t: t, m: m, b: m.NewBaseline(), s: m.NewSession()}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, seq := range history(rng, 200) {
		a.learn(seq, 1, peer)
	}
	for _, seq := range []string{normal, "initialize tools/call:delete_all tools/list tools/list tools/list", history(rng, 1)[0]} {
		calls := a.calls(seq)
		allocs := testing.AllocsPerRun(200, func() {
			a.s.Reset()
			for _, c := range calls {
				a.b.Step(a.s, c, peer)
			}
			a.b.End(a.s, peer)
		})
		require.Zero(t, allocs, seq)
		// Interning a known call does not allocate either.
		require.Zero(t, testing.AllocsPerRun(100, func() { m.Symbols().Intern("tools/call", "t1") }))
	}
}
