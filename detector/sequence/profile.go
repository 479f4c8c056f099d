package sequence

// CallStat is one call a baseline knows: how often it occurred, in how many sessions, and the
// range of its count per session.
type CallStat struct {
	Call               Symbol
	Count, Sessions    int
	MinCount, MaxCount int
}

// TransitionStat is one transition a baseline knows. Probability is the model's estimate of
// P(To | From) for this agent: the transition's count smoothed toward the agent's call
// frequencies, as Step scores it without a peer group.
type TransitionStat struct {
	From, To        Symbol
	Count, Sessions int
	Probability     float64
}

// Calls lists the calls the baseline knows, Boundary (one per session end, without a count
// range) included, in the baseline's order. It does not change the baseline.
func (b *Baseline) Calls() []CallStat {
	out := make([]CallStat, 0, b.calls.len())
	for _, e := range b.calls.ents {
		c := CallStat{Call: Symbol(e.key), Count: int(e.val.count), Sessions: int(e.val.sessions)}
		if c.Call != Boundary {
			c.MinCount, c.MaxCount = int(e.val.minCount), int(e.val.maxCount)
		}
		out = append(out, c)
	}
	return out
}

// Transitions lists the transitions the baseline knows, from and to Boundary included (a
// session's start and end), in the baseline's order. It does not change the baseline.
func (b *Baseline) Transitions() []TransitionStat {
	out := make([]TransitionStat, 0, b.trans.len())
	for _, e := range b.trans.ents {
		from, to := splitKey(e.key)
		out = append(out, TransitionStat{
			From: from, To: to, Count: int(e.val.count), Sessions: int(e.val.sessions),
			Probability: b.transProb(from, to, nil),
		})
	}
	return out
}

// SessionLengths is the range of calls per session over the sessions learnt (0, 0 before
// any).
func (b *Baseline) SessionLengths() (lo, hi int) { return int(b.minLen), int(b.maxLen) }

// Model returns the model the baseline belongs to (its symbols name the calls).
func (b *Baseline) Model() *Model { return b.m }
