package sequence

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// fleet is many agents with learnt baselines, one shared peer baseline and a stream of events
// from many concurrent sessions, for the benchmark.
type fleet struct {
	m         *Model
	peer      *Baseline
	baselines []*Baseline
	bytes     int // heap bytes per agent, measured while building
}

// Each agent habitually uses 4 of 16 tools; sessions are initialize, tools/list, then 4–8 calls.
func agentSession(rng *rand.Rand, m *Model, agent int, out []Symbol) []Symbol {
	syms := m.Symbols()
	out = append(out[:0], syms.Intern("initialize", ""), syms.Intern("notifications/initialized", ""), syms.Intern("tools/list", ""))
	for range 4 + rng.IntN(5) {
		tool := (agent + rng.IntN(4)) % 16
		if rng.IntN(50) == 0 {
			tool = rng.IntN(16) // now and then a tool the agent rarely uses
		}
		out = append(out, syms.Intern("tools/call", toolNames[tool]))
	}
	return out
}

var toolNames = func() []string {
	out := make([]string, 16)
	for i := range out {
		out[i] = fmt.Sprint("tool_", i)
	}
	return out
}()

func newFleet(b *testing.B, agents, sessions int) *fleet {
	b.Helper()
	m, err := New(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := &fleet{m: m, peer: m.NewPeerBaseline(), baselines: make([]*Baseline, agents)}
	rng := rand.New(rand.NewPCG(7, 8))
	s := m.NewSession()
	var seq []Symbol
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range f.baselines {
		bl := m.NewBaseline()
		for range sessions {
			seq = agentSession(rng, m, i, seq)
			s.Reset()
			for _, c := range seq {
				bl.Step(s, c, f.peer)
			}
			bl.End(s, f.peer)
			bl.Learn(s)
			f.peer.Learn(s)
		}
		f.baselines[i] = bl
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	f.bytes = int(after.HeapAlloc-before.HeapAlloc) / agents
	return f
}

// BenchmarkStep is the hot path with 100,000 agents tracked: one event = one Step; every session
// end also costs an End and two Learns (agent and peers), amortised over its events. Sessions of
// 1,024 random agents are in flight at once, so baselines are mostly out of cache.
func BenchmarkStep(b *testing.B) {
	const agents = 100_000
	f := newFleet(b, agents, 8)
	const inFlight = 1024
	rng := rand.New(rand.NewPCG(9, 10))
	type live struct {
		agent int
		seq   []Symbol
		next  int
		s     *Session
	}
	lives := make([]live, inFlight)
	start := func(l *live) {
		l.agent = rng.IntN(agents)
		l.seq = agentSession(rng, f.m, l.agent, l.seq)
		l.next = 0
		l.s.Reset()
	}
	for i := range lives {
		lives[i].s = f.m.NewSession()
		lives[i].seq = make([]Symbol, 0, 16)
		start(&lives[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l := &lives[i%inFlight]
		bl := f.baselines[l.agent]
		bl.Step(l.s, l.seq[l.next], f.peer)
		l.next++
		if l.next == len(l.seq) {
			bl.End(l.s, f.peer)
			bl.Learn(l.s)
			f.peer.Learn(l.s)
			start(l)
		}
	}
	b.StopTimer()
	// Memory per agent: what Bytes() accounts for, and what the heap grew by while building.
	var perAgent int
	for _, bl := range f.baselines {
		perAgent += bl.Bytes()
	}
	b.ReportMetric(float64(perAgent)/agents, "B/agent")
	b.ReportMetric(float64(f.bytes), "heapB/agent")
}
