package sequence

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// agent bundles a model, one baseline and a reusable session for tests.
type agent struct {
	t *testing.T
	m *Model
	b *Baseline
	s *Session
}

func newAgent(t *testing.T, cfg Config) *agent {
	t.Helper()
	m, err := New(cfg, nil)
	require.NoError(t, err)
	return &agent{t: t, m: m, b: m.NewBaseline(), s: m.NewSession()}
}

// calls turns "initialize tools/list tools/call:read" into symbols; "method:tool" names a tool.
func (a *agent) calls(seq string) []Symbol {
	var out []Symbol
	for _, w := range strings.Fields(seq) {
		method, tool, _ := strings.Cut(w, ":")
		out = append(out, a.m.Symbols().Intern(method, tool))
	}
	return out
}

// run scores a whole session against the agent's baseline (and peer), without learning it.
func (a *agent) run(seq string, peer *Baseline) ([]Step, Verdict) {
	a.s.Reset()
	var steps []Step
	for _, c := range a.calls(seq) {
		steps = append(steps, a.b.Step(a.s, c, peer))
	}
	return steps, a.b.End(a.s, peer)
}

// learn scores and learns the session n times.
func (a *agent) learn(seq string, n int, peers ...*Baseline) {
	for range n {
		a.run(seq, nil)
		a.b.Learn(a.s)
		for _, p := range peers {
			p.Learn(a.s)
		}
	}
}

const normal = "initialize notifications/initialized tools/list tools/call:search tools/call:read tools/call:read"

func TestNormalSessionIsNotSurprising(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn(normal, 50)
	steps, v := a.run(normal, nil)
	for i, st := range steps {
		require.False(t, st.NewCall, "step %d", i)
		require.False(t, st.NewTransition, "step %d", i)
		require.Less(t, st.Finding.Score(), 1.0, "step %d", i)
	}
	// The least likely part of the session is still something every session did.
	require.InDelta(t, 50.5/51, v.Finding.P, 1e-12)
	require.EqualValues(t, 50, v.Finding.Seen)
	require.Less(t, v.Score(), 0.1)
	require.Equal(t, 6, v.Steps)
	require.Equal(t, 50, v.Sessions)
	require.Zero(t, v.NewCalls+v.NewTransitions+v.OutOfRange)
	// Every transition is certain but read → read and read → end, each half the time.
	require.InDelta(t, math.Ln2, v.MaxNLL, 0.02)
	require.InDelta(t, 2*math.Ln2/7, v.MeanNLL, 0.02)
	require.Equal(t, "nothing unusual", a.m.Explain(Finding{P: 1}).Summary)
}

func TestFirstSeenCallAndTransition(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn(normal, 1204)
	steps, v := a.run("initialize notifications/initialized tools/list tools/call:delete_all", nil)
	last := steps[3]
	require.True(t, last.NewCall)
	require.True(t, last.NewTransition)
	// Neither the call nor the transition happened in any of 1,204 sessions:
	// p = s·PriorRate / (n + s) = 0.5/1205.
	want := 0.5 / 1205
	require.InDelta(t, want, last.Finding.P, 1e-15)
	require.InDelta(t, want, v.Finding.P, 1e-15)
	require.Equal(t, 1, v.NewCalls)
	require.Equal(t, 2, v.NewTransitions, "tools/list → delete_all and delete_all → end")
	require.InDelta(t, -20*math.Log10(want), v.Score(), 1e-9)
	require.Equal(t, "new_call", last.Finding.Name())

	// The transition finding reads as the issue asks.
	a.s.Reset()
	var st Step
	for _, c := range a.calls("initialize notifications/initialized tools/list tools/call:read") {
		st = a.b.Step(a.s, c, nil)
	}
	require.False(t, st.NewCall)
	require.True(t, st.NewTransition)
	e := a.m.Explain(st.Finding)
	require.Equal(t, "transition tools/list → tools/call read seen in 0 of 1,204 sessions", e.Summary)
	require.Equal(t, "tools/list → tools/call read", e.Observed)
	require.Equal(t, "seen in 0 of 1,204 sessions", e.Typical)
	require.Equal(t, ModelName, e.Model)
	require.InDelta(t, want, e.Probability, 1e-15)
}

func TestRareIsLessSurprisingThanNew(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn(normal, 98)
	a.learn("initialize notifications/initialized tools/list tools/call:write", 2)
	_, rare := a.run("initialize notifications/initialized tools/list tools/call:write", nil)
	_, unseen := a.run("initialize notifications/initialized tools/list tools/call:drop", nil)
	require.Equal(t, KindCall, rare.Finding.Kind)
	require.EqualValues(t, 2, rare.Finding.Seen)
	require.InDelta(t, 2.5/101, rare.Finding.P, 1e-12)
	require.InDelta(t, 0.5/101, unseen.Finding.P, 1e-12)
	require.Greater(t, unseen.Score(), rare.Score())
}

func TestSessionStartAndEndAreTransitions(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn(normal, 100)
	// Known calls only, but it starts where no session started, and stops where none stopped.
	_, v := a.run("tools/call:read tools/call:search", nil)
	require.Equal(t, KindTransition, v.Finding.Kind)
	require.Equal(t, 3, v.NewTransitions, "start → read, read → search, search → end")
	require.Contains(t, a.m.Explain(v.Finding).Summary, "session start → tools/call read")

	_, v = a.run("initialize notifications/initialized tools/list tools/call:search", nil)
	require.Equal(t, 1, v.NewTransitions)
	require.Equal(t, "transition tools/call search → session end seen in 0 of 100 sessions", a.m.Explain(v.Finding).Summary)
}

func TestCountsAndLengthOutsideTheirRange(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn(normal, 600)
	a.learn("initialize notifications/initialized tools/list tools/list tools/call:search tools/call:read tools/call:read", 604)

	// An enumeration burst is reported at the call that exceeds every past session's count.
	a.s.Reset()
	var at int
	calls := a.calls("initialize notifications/initialized" + strings.Repeat(" tools/list", 40))
	for i, c := range calls {
		if st := a.b.Step(a.s, c, nil); st.Finding.Kind == KindCountAbove {
			at = i
			require.EqualValues(t, 3, st.Finding.Observed)
			require.InDelta(t, 0.5/1205, st.Finding.P, 1e-15)
			break
		}
	}
	require.Equal(t, 4, at, "the third tools/list")
	for _, c := range calls[at+1:] {
		a.b.Step(a.s, c, nil)
	}
	v := a.b.End(a.s, nil)
	require.Equal(t, KindCountAbove, v.Finding.Kind)
	require.EqualValues(t, 40, v.Finding.Observed, "the verdict has the final count")
	e := a.m.Explain(v.Finding)
	require.Equal(t, "tools/list called 40 times in the session; 1–2 times in every one of 1,204 sessions", e.Summary)
	require.Equal(t, "40 × tools/list", e.Observed)
	require.Equal(t, "1–2 per session", e.Typical)
	// tools/list above, search and read (twice) below, and the length above.
	require.Equal(t, 4, v.OutOfRange)

	// A truncated session: too short, and missing calls every session made. Its end is a new
	// transition too; of equally likely findings the verdict keeps the first.
	_, v = a.run("initialize", nil)
	require.Equal(t, 1, v.Steps)
	require.Equal(t, 5, v.OutOfRange, "length and four calls below their range")
	require.Equal(t, KindTransition, v.Finding.Kind)
	require.Equal(t, "transition initialize → session end seen in 0 of 1,204 sessions", a.m.Explain(v.Finding).Summary)
	require.Equal(t, "session of 1 call; 6–7 calls in every one of 1,204 sessions",
		a.m.Explain(a.b.shapeFinding(KindLengthBelow, Boundary, 1, 6, 7)).Summary)
}

func TestColdAgentsAndPeers(t *testing.T) {
	m, err := New(Config{}, nil)
	require.NoError(t, err)
	peers := m.NewPeerBaseline()
	// Fifty agents of the group all search and read.
	for range 50 {
		a := &agent{t: t, m: m, b: m.NewBaseline(), s: m.NewSession()}
		a.learn(normal, 20, peers)
	}
	require.Equal(t, 1000, peers.Sessions())

	cold := &agent{t: t, m: m, b: m.NewBaseline(), s: m.NewSession()}
	// Without peers a cold agent is never surprising: p = PriorRate.
	_, v := cold.run("initialize tools/call:delete_all", nil)
	require.InDelta(t, DefaultPriorRate, v.Finding.P, 1e-12)

	// With peers, what the group always does is unsurprising for the newcomer…
	_, v = cold.run(normal, peers)
	require.Greater(t, v.Finding.P, 0.99)
	// …and what no peer ever did is surprising from the first session on.
	steps, v := cold.run("initialize tools/call:delete_all", peers)
	require.True(t, steps[1].NewCall)
	require.InDelta(t, 0.5/1001, v.Finding.P, 1e-12)
	require.True(t, v.Finding.HasPeer)
	require.EqualValues(t, 1000, v.Finding.PeerSessions)
	require.Contains(t, m.Explain(v.Finding).Summary, "seen in 0 of 0 sessions (0 of 1,000 peer sessions)")

	// An agent that does it all the time is not flagged for it even though its peers never do:
	// its own evidence outweighs the prior.
	own := &agent{t: t, m: m, b: m.NewBaseline(), s: m.NewSession()}
	own.learn("initialize tools/call:delete_all", 200)
	_, v = own.run("initialize tools/call:delete_all", peers)
	require.Greater(t, v.Finding.P, 0.99)
}

func TestTransitionProbability(t *testing.T) {
	a := newAgent(t, Config{})
	a.learn("x y", 3)
	a.learn("x z", 1)
	x, y, z := a.calls("x")[0], a.calls("y")[0], a.calls("z")[0]
	// Calls counted: x 4, y 3, z 1, end 4 → total 12; known: boundary, x, y, z, so each known
	// call gets a fifth of the prior and everything else the last fifth.
	uniform := 1.0 / 5
	py := (3 + uniform) / (12 + 1.0)
	a.s.Reset()
	require.InDelta(t, 1.0*(4+(4+uniform)/13)/(4+1), a.b.Step(a.s, x, nil).Prob, 1e-12, "start → x: 4 of 4")
	require.InDelta(t, (3+py)/(4+1), a.b.Step(a.s, y, nil).Prob, 1e-12)
	a.s.Reset()
	a.b.Step(a.s, x, nil)
	pz := (1 + uniform) / 13
	require.InDelta(t, (1+pz)/5, a.b.Step(a.s, z, nil).Prob, 1e-12)
	// Out of a state, the probabilities of the known calls and of Other (standing for every
	// unknown call) sum to 1.
	var sum float64
	for c := range Symbol(a.m.Symbols().Len()) {
		sum += a.b.transProb(x, c, nil)
	}
	require.Equal(t, 5, a.m.Symbols().Len())
	require.InDelta(t, 1, sum, 1e-12)
}

func TestLearnWithoutEnd(t *testing.T) {
	a := newAgent(t, Config{})
	for range 10 {
		a.s.Reset()
		for _, c := range a.calls("a b") {
			a.b.Step(a.s, c, nil)
		}
		a.b.Learn(a.s) // ends the session itself
		require.True(t, a.s.Ended())
	}
	_, v := a.run("a b", nil)
	require.Zero(t, v.NewTransitions, "the end transition was learnt too")
	require.InDelta(t, 10.5/11, v.Finding.P, 1e-12)
	require.Equal(t, 10, a.b.Sessions())
}

func TestBoundedStateEvictsTheLeastSupported(t *testing.T) {
	a := newAgent(t, Config{MaxSymbols: 8, MaxTransitions: 12})
	for i := range 500 {
		a.learn(fmt.Sprintf("initialize tools/list tools/call:t%d tools/call:t%d", i, i+1), 1)
		require.LessOrEqual(t, a.b.calls.len(), 8)
		require.LessOrEqual(t, a.b.trans.len(), 12)
		checkInvariants(t, a.b)
	}
	// The habitual calls survived 500 sessions of one-off tools.
	_, v := a.run("initialize tools/list", nil)
	require.Zero(t, v.NewCalls)
	require.Equal(t, 1, v.NewTransitions, "only tools/list → end is new")
	require.True(t, a.b.Knows(a.m.Symbols().Intern("initialize", "")))
	require.True(t, a.b.Knows(Boundary))
	// Caps, not history, bound the memory: 8 calls and 12 transitions (16 after append's
	// rounding), with their indexes.
	bound := unsafe.Sizeof(Baseline{}) + 8*unsafe.Sizeof(entry[callStat]{}) + 16*2 +
		16*unsafe.Sizeof(entry[transStat]{}) + 32*2
	require.LessOrEqual(t, a.b.Bytes(), int(bound))
}

// checkInvariants: every transition joins two known calls; a call's out count is the sum of its
// transitions' counts; nothing was seen in more sessions than the baseline learnt.
func checkInvariants(t *testing.T, b *Baseline) {
	t.Helper()
	out := map[Symbol]uint32{}
	for _, e := range b.trans.ents {
		from, to := splitKey(e.key)
		require.True(t, b.Knows(from) && b.Knows(to), "transition %d → %d", from, to)
		out[from] += e.val.count
	}
	for _, e := range b.calls.ents {
		require.Equal(t, out[Symbol(e.key)], e.val.out, "out count of %d", e.key)
		require.LessOrEqual(t, e.val.sessions, b.sessions)
	}
	for i, e := range b.calls.ents {
		require.Equal(t, i, b.calls.find(e.key))
	}
	for i, e := range b.trans.ents {
		require.Equal(t, i, b.trans.find(e.key))
	}
}

func TestHalvingKeepsRatios(t *testing.T) {
	a := newAgent(t, Config{MaxSessions: 100})
	a.learn(normal, 74)
	a.learn("initialize tools/call:rare", 25)
	_, before := a.run("initialize tools/call:rare", nil)
	require.Equal(t, 99, a.b.Sessions())
	a.learn(normal, 1) // the 100th session halves everything
	require.Equal(t, 50, a.b.Sessions())
	checkInvariants(t, a.b)
	_, after := a.run("initialize tools/call:rare", nil)
	require.EqualValues(t, 13, after.Finding.Seen, "25 halved, rounded up")
	require.InDelta(t, before.Finding.P, after.Finding.P, 0.02)
	// Something seen once is never halved into "never seen".
	a.learn("initialize tools/call:once", 1)
	for range 200 {
		a.learn(normal, 1)
	}
	_, v := a.run("initialize tools/call:once", nil)
	require.Equal(t, KindCall, v.Finding.Kind)
	require.EqualValues(t, 1, v.Finding.Seen)
}

func TestScore(t *testing.T) {
	for _, tc := range []struct{ p, score float64 }{
		{1, 0}, {2, 0}, {0.1, 20}, {0.01, 40}, {1e-3, 60}, {1e-4, 80}, {1e-5, 100}, {1e-9, 100}, {0, 100}, {math.NaN(), 0},
	} {
		require.InDelta(t, tc.score, Score(tc.p), 1e-9, "p=%g", tc.p)
	}
}

func TestSymbols(t *testing.T) {
	s := NewSymbols()
	require.Equal(t, 2, s.Len())
	a := s.Intern("tools/call", "read")
	require.Equal(t, a, s.Intern("tools/call", "read"))
	require.NotEqual(t, a, s.Intern("tools/call", "write"))
	require.NotEqual(t, a, s.Intern("tools/call read", ""), "the pair, not the joined name, is the key")
	got, ok := s.Lookup("tools/call", "read")
	require.True(t, ok)
	require.Equal(t, a, got)
	_, ok = s.Lookup("tools/list", "")
	require.False(t, ok)
	require.Equal(t, "tools/call read", s.Name(a))
	require.Equal(t, "tools/list", s.Name(s.Intern("tools/list", "")))
	require.Equal(t, "(session boundary)", s.Name(Boundary))
	require.Equal(t, "(other)", s.Name(Other))
	method, target := s.Call(a)
	require.Equal(t, [2]string{"tools/call", "read"}, [2]string{method, target})

	// A full table maps every new pair to Other.
	for i := s.Len(); i < maxSymbols; i++ {
		s.Intern("tools/call", fmt.Sprint("t", i))
	}
	require.Equal(t, maxSymbols, s.Len())
	require.Equal(t, Other, s.Intern("tools/call", "one-too-many"))
	require.Equal(t, a, s.Intern("tools/call", "read"))
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "tiny", cfg: Config{MaxSymbols: 1}, want: []string{"max_symbols: must be from 2 to 32768, got 1"}},
		{name: "huge", cfg: Config{PeerMaxTransitions: 1 << 20}, want: []string{"peer_max_transitions: must be from 1 to 32768, got 1048576"}},
		{name: "negative", cfg: Config{MaxTransitions: -1, Smoothing: -1, PriorRate: 2, MaxSessions: 1}, want: []string{
			"max_transitions: must be from 1 to 32768, got -1",
			"max_sessions: must be from 2 to 2147483647, got 1",
			"smoothing: must be a positive number, got -1",
			"prior_rate: must be in (0, 1], got 2",
		}},
		{name: "nan", cfg: Config{Smoothing: math.NaN()}, want: []string{"smoothing: must be a positive number, got NaN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			err := cfg.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, strings.Join(tc.want, "\n"), err.Error())
			_, err = New(tc.cfg, nil)
			require.ErrorContains(t, err, "cannot create sequence model: "+tc.want[0])
		})
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1204: "1,204", 53112: "53,112", 1234567: "1,234,567", -4321: "-4,321"} {
		require.Equal(t, want, thousands(n))
	}
}
