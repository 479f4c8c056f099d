package sequence

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/mcpwatch/mcpwatch/detector/internal/fastmath"
)

// ModelName names the model in anomaly explanations.
const ModelName = "tool_sequence"

// Model holds the parameters and the symbol table shared by a set of baselines: every agent's
// and every peer group's. It is not safe for concurrent use.
type Model struct {
	cfg  Config
	syms *Symbols
	// peers is this model with the peer caps as its own (MaxSymbols = PeerMaxSymbols, …):
	// the model of peer baselines, so a baseline reads its caps from its model.
	peers *Model
}

// New returns a model with cfg (zero fields take their defaults) interning calls into syms
// (a fresh table when nil).
func New(cfg Config, syms *Symbols) (*Model, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create sequence model: %w", err)
	}
	if syms == nil {
		syms = NewSymbols()
	}
	m := &Model{cfg: cfg, syms: syms}
	pc := cfg
	pc.MaxSymbols, pc.MaxTransitions = cfg.PeerMaxSymbols, cfg.PeerMaxTransitions
	m.peers = &Model{cfg: pc, syms: syms}
	m.peers.peers = m.peers
	return m, nil
}

// Config returns the model's parameters, defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Symbols returns the model's symbol table.
func (m *Model) Symbols() *Symbols { return m.syms }

// NewBaseline returns an empty baseline for one agent.
func (m *Model) NewBaseline() *Baseline {
	return &Baseline{m: m}
}

// NewPeerBaseline returns an empty baseline for a peer group (or the whole population): the
// same model with the larger peer caps. Learn every session of the group's agents into it and
// pass it as peer when scoring them.
func (m *Model) NewPeerBaseline() *Baseline {
	return &Baseline{m: m.peers}
}

// NewSession returns an empty session. Reuse it with Reset to avoid allocations.
func (m *Model) NewSession() *Session {
	s := &Session{maxCalls: uint16(m.cfg.MaxSymbols), maxTrans: uint16(m.cfg.MaxTransitions)}
	s.Reset()
	return s
}

// Baseline is what one agent (or peer group) normally does: per call and per transition, how
// often it occurred and in how many sessions, plus the range of each call's count per session
// and of session lengths. Its size is bounded by the model's caps.
type Baseline struct {
	m              *Model
	calls          table[callStat]
	trans          table[transStat]
	sessions       uint32 // sessions learnt
	total          uint32 // sum of calls' counts (each session's end counts as one Boundary)
	minLen, maxLen uint32 // calls per session
}

// maxCalls and maxTrans are b's caps (the agent's, or the peers').
func (b *Baseline) maxCalls() int { return b.m.cfg.MaxSymbols }
func (b *Baseline) maxTrans() int { return b.m.cfg.MaxTransitions }

type callStat struct {
	count    uint32 // occurrences
	sessions uint32 // sessions with at least one
	out      uint32 // transitions out of this call (the Markov denominator)
	minCount uint16 // per session, over every session learnt since the call was first seen
	maxCount uint16
}

type transStat struct{ count, sessions uint32 }

func transKey(from, to Symbol) uint32 { return uint32(from)<<16 | uint32(to) }

func splitKey(k uint32) (from, to Symbol) { return Symbol(k >> 16), Symbol(k) }

// Sessions is the number of sessions learnt (halved when MaxSessions is reached).
func (b *Baseline) Sessions() int { return int(b.sessions) }

// Knows reports whether the baseline has seen the call.
func (b *Baseline) Knows(s Symbol) bool { return b.calls.find(uint32(s)) >= 0 }

// Bytes is the baseline's memory footprint: the struct and its tables' backing arrays.
func (b *Baseline) Bytes() int {
	return int(unsafe.Sizeof(*b)) +
		cap(b.calls.ents)*int(unsafe.Sizeof(entry[callStat]{})) + b.calls.indexLen()*2 +
		cap(b.trans.ents)*int(unsafe.Sizeof(entry[transStat]{})) + b.trans.indexLen()*2
}

// Session is one session in progress: its calls' counts, its transitions, and the most
// surprising finding so far. A session is scored against one baseline (its agent's) and may be
// learnt into several (the agent's and its peer group's).
type Session struct {
	calls          table[uint16] // occurrences per call, saturating
	trans          table[uint16]
	steps          int
	sumNLL, maxNLL float64
	worst          Finding
	// Counts bounded by the tables' caps, which fit in 16 bits.
	newCalls, newTrans int32
	shape              int32 // counts and length outside their range
	maxCalls, maxTrans uint16
	prev               Symbol
	ended              bool
}

// CountCalls returns how many of the distinct calls the session made (as many as its table
// holds: MaxSymbols) keep reports true for.
func (s *Session) CountCalls(keep func(Symbol) bool) int {
	n := 0
	for i := range s.calls.ents {
		if c := Symbol(s.calls.ents[i].key); c != Boundary && keep(c) {
			n++
		}
	}
	return n
}

// Reset empties the session for reuse, keeping its memory.
func (s *Session) Reset() {
	s.calls.reset()
	s.trans.reset()
	s.calls.add(uint32(Boundary), 0) // always present, so the session's end always fits
	s.prev = Boundary
	s.ended = false
	s.steps = 0
	s.sumNLL, s.maxNLL = 0, 0
	s.newCalls, s.newTrans, s.shape = 0, 0, 0
	s.worst = Finding{P: 1}
}

// Steps is the number of calls recorded.
func (s *Session) Steps() int { return s.steps }

// Ended reports whether End or Learn closed the session.
func (s *Session) Ended() bool { return s.ended }

// Count is how many times the session called c.
func (s *Session) Count(c Symbol) int {
	if i := s.calls.find(uint32(c)); i >= 0 {
		return int(s.calls.ents[i].val)
	}
	return 0
}

// record counts one occurrence of k in t; first reports that k is new to the session (or could
// not be recorded because the session's table is full, so it is judged again next time).
func record(t *table[uint16], k uint32, limit int) (n int, first bool) {
	if i := t.find(k); i >= 0 {
		v := &t.ents[i].val
		if *v < math.MaxUint16 {
			*v++
		}
		return int(*v), false
	}
	if t.len() < limit {
		t.add(k, 1)
	}
	return 1, true
}

// Kind is what a Finding is about.
type Kind uint8

const (
	// KindNone: nothing surprising (P is 1).
	KindNone Kind = iota
	// KindCall: the session made call To, which Seen of the agent's Sessions past sessions
	// made (Seen 0: the agent's first-seen tool).
	KindCall
	// KindTransition: the session went From → To, which Seen of Sessions past sessions did
	// (Seen 0: a first-seen transition). Boundary as From or To is the session's start or end.
	KindTransition
	// KindCountAbove and KindCountBelow: the session made call To Observed times, outside the
	// Min–Max range of all Sessions past sessions.
	KindCountAbove
	KindCountBelow
	// KindLengthAbove and KindLengthBelow: the session made Observed calls, outside the
	// Min–Max range of all Sessions past sessions.
	KindLengthAbove
	KindLengthBelow
)

// String is the kind's name; a call or transition seen in no past session is "new_…".
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindCall:
		return "rare_call"
	case KindTransition:
		return "rare_transition"
	case KindCountAbove:
		return "count_above_range"
	case KindCountBelow:
		return "count_below_range"
	case KindLengthAbove:
		return "length_above_range"
	case KindLengthBelow:
		return "length_below_range"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Finding is one surprising fact about a session, with its probability under the baseline.
type Finding struct {
	Kind     Kind
	From, To Symbol
	// Observed is the session's count of To (count kinds) or its length (length kinds).
	// The counts are int32: a Finding is part of every session in progress.
	Observed int32
	// Min and Max are the range seen in past sessions (count and length kinds).
	Min, Max int32
	// Seen of Sessions past sessions of the agent had the call or transition.
	Seen, Sessions int32
	// HasPeer reports whether a peer baseline took part; PeerSeen of PeerSessions of the
	// peers' sessions had the call or transition, and PeerP is its smoothed probability.
	HasPeer                bool
	PeerSeen, PeerSessions int32
	PeerP                  float64
	// P is the probability of a session doing this under the agent's baseline, smoothed
	// toward the peers: (Seen + s·PeerP) / (Sessions + s). 1 when there is nothing to report.
	P float64
}

// Name is the finding's kind, with "new_call" and "new_transition" for calls and transitions
// never seen by the agent.
func (f Finding) Name() string {
	switch {
	case f.Kind == KindCall && f.Seen == 0:
		return "new_call"
	case f.Kind == KindTransition && f.Seen == 0:
		return "new_transition"
	}
	return f.Kind.String()
}

// Score is f's 0–100 score.
func (f Finding) Score() float64 { return Score(f.P) }

// worse reports whether f should replace w as the most surprising finding: lower probability,
// or the same fact seen again with a newer count.
func (f *Finding) worse(w *Finding) bool {
	if f.P != w.P {
		return f.P < w.P
	}
	return f.Kind == w.Kind && f.From == w.From && f.To == w.To && f.Kind != KindNone
}

func (w *Finding) consider(f *Finding) {
	if f.worse(w) {
		*w = *f
	}
}

// Score maps a probability to 0–100: 20 points per factor of ten below 1, so p = 0.01 scores
// 40 (medium), 10⁻³ 60, 10⁻⁴ 80 (high) and below 3·10⁻⁵ critical.
func Score(p float64) float64 {
	if !(p < 1) {
		return 0
	}
	if !(p > 0) {
		return 100
	}
	return min(100, -20*math.Log10(p))
}

// Step is what one call revealed.
type Step struct {
	// Prob is P(call | previous call) under the agent's transition model: counts smoothed
	// toward the agent's call frequencies, those toward the peers' (or uniform).
	Prob float64
	// NewCall and NewTransition report a call or transition the agent never made in a learnt
	// session (first-seen tool, first-seen transition).
	NewCall, NewTransition bool
	// Finding is the most surprising session-level fact this call revealed: its first
	// occurrence in the session of a rare call or transition, or a count above its range.
	Finding Finding
}

// Step scores call c of session s against b and records it in s; it does not change b. peer is
// the agent's peer-group baseline, or nil. Step on an ended session starts it afresh.
func (b *Baseline) Step(s *Session, c Symbol, peer *Baseline) Step {
	if s.ended {
		s.Reset()
	}
	return b.step(s, c, peer)
}

func (b *Baseline) step(s *Session, c Symbol, peer *Baseline) Step {
	prev := s.prev
	k := transKey(prev, c)
	ci, ti := b.calls.find(uint32(c)), b.trans.find(k)
	st := Step{Prob: b.transProbAt(b.calls.find(uint32(prev)), ti, ci, c, peer), Finding: Finding{P: 1}}
	nll := -fastmath.Log(st.Prob)
	s.sumNLL += nll
	s.maxNLL = max(s.maxNLL, nll)

	n, firstCall := record(&s.calls, uint32(c), int(s.maxCalls))
	_, firstTrans := record(&s.trans, k, int(s.maxTrans))
	if firstCall && c != Boundary {
		f := Finding{Kind: KindCall, To: c}
		seen := 0
		if ci >= 0 {
			seen = int(b.calls.ents[ci].val.sessions)
		}
		b.rate(&f, seen, peer, peer.callSessions(c))
		if seen == 0 {
			st.NewCall = true
			s.newCalls++
		}
		st.Finding.consider(&f)
	}
	if firstTrans {
		f := Finding{Kind: KindTransition, From: prev, To: c}
		seen := 0
		if ti >= 0 {
			seen = int(b.trans.ents[ti].val.sessions)
		}
		b.rate(&f, seen, peer, peer.transSessions(k))
		if seen == 0 {
			st.NewTransition = true
			s.newTrans++
		}
		st.Finding.consider(&f)
	}
	// A call repeated more often than in any past session is reported as soon as it happens
	// (an enumeration burst need not wait for the session to end).
	if c != Boundary && b.sessions > 0 && ci >= 0 {
		cs := &b.calls.ents[ci].val
		if n == int(cs.maxCount)+1 {
			f := b.shapeFinding(KindCountAbove, c, n, int(cs.minCount), int(cs.maxCount))
			st.Finding.consider(&f)
		}
	}
	s.worst.consider(&st.Finding)
	s.prev = c
	if c != Boundary {
		s.steps++
	}
	return st
}

// rate fills f's probability for a call or transition seen in seen of b's sessions, smoothed
// toward the peers' rate (seen in peerSeen of peer's sessions) or, without peers, PriorRate.
func (b *Baseline) rate(f *Finding, seen int, peer *Baseline, peerSeen int) {
	a := b.m.cfg.Smoothing
	q := b.m.cfg.PriorRate
	if peer != nil {
		f.HasPeer, f.PeerSeen, f.PeerSessions = true, i32(peerSeen), i32(int(peer.sessions))
		q = (float64(peerSeen) + a*q) / (float64(peer.sessions) + a)
		f.PeerP = q
	}
	f.Seen, f.Sessions = i32(seen), i32(int(b.sessions))
	f.P = (float64(seen) + a*q) / (float64(b.sessions) + a)
}

// callSessions is the number of sessions that made call c (0 for a nil baseline).
func (b *Baseline) callSessions(c Symbol) int {
	if b == nil {
		return 0
	}
	if i := b.calls.find(uint32(c)); i >= 0 {
		return int(b.calls.ents[i].val.sessions)
	}
	return 0
}

// transSessions is the number of sessions with transition k (0 for a nil baseline).
func (b *Baseline) transSessions(k uint32) int {
	if b == nil {
		return 0
	}
	if i := b.trans.find(k); i >= 0 {
		return int(b.trans.ents[i].val.sessions)
	}
	return 0
}

// shapeFinding is a count or length outside the range of every past session: no past session
// did it, so its probability is PriorRate smoothed over the sessions seen.
func (b *Baseline) shapeFinding(k Kind, c Symbol, observed, lo, hi int) Finding {
	a := b.m.cfg.Smoothing
	return Finding{
		Kind: k, To: c, Observed: i32(observed), Min: i32(lo), Max: i32(hi), Sessions: i32(int(b.sessions)),
		P: a * b.m.cfg.PriorRate / (float64(b.sessions) + a),
	}
}

// callProb is the agent's smoothed frequency of call c among all its calls.
func (b *Baseline) callProb(c Symbol, peer *Baseline) float64 {
	return b.callProbAt(b.calls.find(uint32(c)), c, peer)
}

// callProbAt is callProb with c's position in b.calls (-1 when unknown) already looked up.
func (b *Baseline) callProbAt(ci int, c Symbol, peer *Baseline) float64 {
	a := b.m.cfg.Smoothing
	var prior float64
	if peer != nil {
		prior = peer.callProb(c, nil)
	} else {
		// One share for each known call and one for everything else: taken from the
		// baseline's own state, so scores do not change across a restart.
		prior = 1 / float64(b.calls.len()+1)
	}
	var n float64
	if ci >= 0 {
		n = float64(b.calls.ents[ci].val.count)
	}
	return (n + a*prior) / (float64(b.total) + a)
}

// transProb is P(c | prev), smoothed toward the agent's call frequencies.
func (b *Baseline) transProb(prev, c Symbol, peer *Baseline) float64 {
	return b.transProbAt(b.calls.find(uint32(prev)), b.trans.find(transKey(prev, c)), b.calls.find(uint32(c)), c, peer)
}

// transProbAt is transProb with the positions of prev, the transition and c looked up.
func (b *Baseline) transProbAt(pi, ti, ci int, c Symbol, peer *Baseline) float64 {
	a := b.m.cfg.Smoothing
	var out, n float64
	if pi >= 0 {
		out = float64(b.calls.ents[pi].val.out)
	}
	if ti >= 0 {
		n = float64(b.trans.ents[ti].val.count)
	}
	return (n + a*b.callProbAt(ci, c, peer)) / (out + a)
}

// Verdict is a whole session's score.
type Verdict struct {
	// Finding is the most surprising fact about the session; its P is the session's
	// probability and Score() its score.
	Finding Finding
	// Steps is the number of calls; MeanNLL and MaxNLL are the mean and largest negative log
	// transition probability (natural log) over the session's transitions, its end included.
	Steps          int
	MeanNLL        float64
	MaxNLL         float64
	NewCalls       int // calls the agent never made before
	NewTransitions int // transitions the agent never made before
	// OutOfRange counts calls whose count, and the session's length, fell outside the range
	// of every past session.
	OutOfRange int
	// Sessions is the number of sessions the baseline had learnt.
	Sessions int
}

// Score is the session's 0–100 score.
func (v Verdict) Score() float64 { return v.Finding.Score() }

// End scores the session as a whole against b: its end (a transition to Boundary), the count of
// every call the agent knows and the session's length against their past ranges. It does not
// change b; call Learn afterwards to learn the session. Calling End again returns the same
// verdict.
func (b *Baseline) End(s *Session, peer *Baseline) Verdict {
	if !s.ended {
		b.step(s, Boundary, peer)
		s.ended = true
		if b.sessions > 0 {
			b.checkShape(s)
		}
	}
	return Verdict{
		Finding:        s.worst,
		Steps:          s.steps,
		MeanNLL:        s.sumNLL / float64(s.steps+1),
		MaxNLL:         s.maxNLL,
		NewCalls:       int(s.newCalls),
		NewTransitions: int(s.newTrans),
		OutOfRange:     int(s.shape),
		Sessions:       int(b.sessions),
	}
}

func (b *Baseline) checkShape(s *Session) {
	if l := uint32(s.steps); l > b.maxLen || l < b.minLen {
		k := KindLengthAbove
		if l < b.minLen {
			k = KindLengthBelow
		}
		f := b.shapeFinding(k, Boundary, s.steps, int(b.minLen), int(b.maxLen))
		s.worst.consider(&f)
		s.shape++
	}
	for i := range b.calls.ents {
		e := &b.calls.ents[i]
		c := Symbol(e.key)
		if c == Boundary {
			continue
		}
		n := s.Count(c)
		if n <= int(e.val.maxCount) && n >= int(e.val.minCount) {
			continue
		}
		k := KindCountAbove
		if n < int(e.val.minCount) {
			k = KindCountBelow
		}
		f := b.shapeFinding(k, c, n, int(e.val.minCount), int(e.val.maxCount))
		s.worst.consider(&f)
		s.shape++
	}
}

// Learn adds session s to b (ending s first if End was not called). Learn s into the agent's
// baseline and into its peer group's.
func (b *Baseline) Learn(s *Session) {
	if !s.ended {
		record(&s.calls, uint32(Boundary), int(s.maxCalls))
		record(&s.trans, transKey(s.prev, Boundary), int(s.maxTrans))
		s.ended = true
	}
	for _, e := range s.calls.ents {
		i := b.calls.find(e.key)
		if i < 0 {
			// Seen for the first time: every earlier session had none of it.
			lo := uint16(0)
			if b.sessions == 0 {
				lo = math.MaxUint16
			}
			if i = b.addCall(e.key, callStat{minCount: lo}); i < 0 {
				continue
			}
		}
		cs := &b.calls.ents[i].val
		cs.count += uint32(e.val)
		cs.sessions++
		b.total += uint32(e.val)
	}
	for _, e := range s.trans.ents {
		from, to := splitKey(e.key)
		fi := b.calls.find(uint32(from))
		if fi < 0 || b.calls.find(uint32(to)) < 0 {
			continue // an end was evicted (or never fitted): keep transitions between known calls only
		}
		i := b.trans.find(e.key)
		if i < 0 {
			if i = b.addTrans(e.key); i < 0 {
				continue
			}
		}
		b.trans.ents[i].val.count += uint32(e.val)
		b.trans.ents[i].val.sessions++
		b.calls.ents[fi].val.out += uint32(e.val)
	}
	for i := range b.calls.ents {
		e := &b.calls.ents[i]
		if Symbol(e.key) == Boundary {
			continue
		}
		n := uint16(min(s.Count(Symbol(e.key)), math.MaxUint16))
		e.val.minCount = min(e.val.minCount, n)
		e.val.maxCount = max(e.val.maxCount, n)
	}
	l := uint32(s.steps)
	if b.sessions == 0 {
		b.minLen, b.maxLen = l, l
	} else {
		b.minLen, b.maxLen = min(b.minLen, l), max(b.maxLen, l)
	}
	b.sessions++
	if b.sessions >= uint32(b.m.cfg.MaxSessions) || b.total >= 1<<31 {
		b.halve()
	}
}

// addCall inserts call k, evicting the call seen in the fewest sessions (never Boundary) when
// the baseline is full. It returns the position, or -1 when nothing can be evicted.
func (b *Baseline) addCall(k uint32, v callStat) int {
	if b.calls.len() < b.maxCalls() {
		return b.calls.add(k, v)
	}
	victim := -1
	for i := range b.calls.ents {
		e := &b.calls.ents[i]
		if Symbol(e.key) == Boundary {
			continue
		}
		if victim < 0 || lessCall(&e.val, &b.calls.ents[victim].val) {
			victim = i
		}
	}
	if victim < 0 {
		return -1
	}
	gone := Symbol(b.calls.ents[victim].key)
	b.total -= b.calls.ents[victim].val.count
	// Its transitions go with it; those into it leave their source's out count.
	b.trans.removeWhere(func(e *entry[transStat]) bool {
		from, to := splitKey(e.key)
		if from != gone && to != gone {
			return false
		}
		if to == gone && from != gone {
			if i := b.calls.find(uint32(from)); i >= 0 {
				b.calls.ents[i].val.out -= min(b.calls.ents[i].val.out, e.val.count)
			}
		}
		return true
	})
	b.calls.replace(victim, k, v)
	return victim
}

func lessCall(x, y *callStat) bool {
	if x.sessions != y.sessions {
		return x.sessions < y.sessions
	}
	return x.count < y.count
}

// addTrans inserts transition k with zero counts, evicting the transition seen in the fewest
// sessions when the baseline is full.
func (b *Baseline) addTrans(k uint32) int {
	if b.trans.len() < b.maxTrans() {
		return b.trans.add(k, transStat{})
	}
	victim := 0
	for i := range b.trans.ents {
		x, y := &b.trans.ents[i].val, &b.trans.ents[victim].val
		if x.sessions < y.sessions || x.sessions == y.sessions && x.count < y.count {
			victim = i
		}
	}
	ve := b.trans.ents[victim]
	from, _ := splitKey(ve.key)
	if i := b.calls.find(uint32(from)); i >= 0 {
		b.calls.ents[i].val.out -= min(b.calls.ents[i].val.out, ve.val.count)
	}
	b.trans.replace(victim, k, transStat{})
	return victim
}

// halve halves every count (rounding up, so nothing seen becomes unseen), keeping ratios.
func (b *Baseline) halve() {
	half := func(v uint32) uint32 { return v - v/2 }
	b.total = 0
	for i := range b.calls.ents {
		v := &b.calls.ents[i].val
		v.count, v.sessions = half(v.count), half(v.sessions)
		b.total += v.count
	}
	for i := range b.trans.ents {
		v := &b.trans.ents[i].val
		v.count, v.sessions = half(v.count), half(v.sessions)
	}
	b.sessions = half(b.sessions)
	b.recountOut()
}

// recountOut sets every call's out count to the sum of its transitions' counts, which is what
// Learn and eviction maintain incrementally.
func (b *Baseline) recountOut() {
	for i := range b.calls.ents {
		b.calls.ents[i].val.out = 0
	}
	for _, e := range b.trans.ents {
		from, _ := splitKey(e.key)
		if i := b.calls.find(uint32(from)); i >= 0 {
			b.calls.ents[i].val.out += e.val.count
		}
	}
}

// i32 is n saturated to int32, a Finding's counts.
func i32(n int) int32 { return int32(max(math.MinInt32, min(math.MaxInt32, n))) }
