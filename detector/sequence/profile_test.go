package sequence

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBaselineCallsAndTransitions(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn("tools/list tools/call:search tools/call:read tools/call:read", 3)
	a.learn("tools/list tools/call:read", 1)
	require.Equal(t, a.m, a.b.Model())

	syms := a.m.Symbols()
	sym := func(method, target string) Symbol {
		s, ok := syms.Lookup(method, target)
		require.True(t, ok)
		return s
	}
	list, search, read := sym("tools/list", ""), sym("tools/call", "search"), sym("tools/call", "read")

	calls := map[Symbol]CallStat{}
	for _, c := range a.b.Calls() {
		calls[c.Call] = c
	}
	require.Equal(t, map[Symbol]CallStat{
		Boundary: {Call: Boundary, Count: 4, Sessions: 4},
		list:     {Call: list, Count: 4, Sessions: 4, MinCount: 1, MaxCount: 1},
		search:   {Call: search, Count: 3, Sessions: 3, MinCount: 0, MaxCount: 1},
		read:     {Call: read, Count: 7, Sessions: 4, MinCount: 1, MaxCount: 2},
	}, calls)

	trans := map[[2]Symbol]TransitionStat{}
	for _, tr := range a.b.Transitions() {
		trans[[2]Symbol{tr.From, tr.To}] = tr
		require.Greater(t, tr.Probability, 0.0)
		require.Less(t, tr.Probability, 1.0)
	}
	require.Len(t, trans, 6)
	require.Equal(t, 3, trans[[2]Symbol{list, search}].Count)
	require.Equal(t, 1, trans[[2]Symbol{list, read}].Count)
	require.Equal(t, 3, trans[[2]Symbol{read, read}].Count)
	require.Equal(t, 4, trans[[2]Symbol{read, Boundary}].Count)
	require.Equal(t, 4, trans[[2]Symbol{Boundary, list}].Sessions)
	require.Greater(t, trans[[2]Symbol{list, search}].Probability, trans[[2]Symbol{list, read}].Probability)

	// The probability is the one Step scores the transition with (no peers).
	for _, tr := range a.b.Transitions() {
		if tr.From == Boundary || tr.To == Boundary {
			continue
		}
		s := a.m.NewSession()
		a.b.Step(s, tr.From, nil)
		require.InDelta(t, a.b.Step(s, tr.To, nil).Prob, tr.Probability, 1e-12, "%s → %s", syms.Name(tr.From), syms.Name(tr.To))
	}

	lo, hi := a.b.SessionLengths()
	require.Equal(t, [2]int{2, 4}, [2]int{lo, hi})
}

func TestEmptyBaselineLists(t *testing.T) {
	a := newAgent(t, Config{})
	require.Empty(t, a.b.Calls())
	require.Empty(t, a.b.Transitions())
	lo, hi := a.b.SessionLengths()
	require.Zero(t, lo+hi)
}
