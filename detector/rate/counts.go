package rate

import (
	"time"
)

// maxCatchUp bounds how many empty buckets one call to Add or Advance learns: a week's worth
// (at most 10080). An agent silent for longer has its last week of silence learnt, not all
// of it, so a call costs O(1) amortised over the buckets of wall-clock time.
func (p *Params) maxCatchUp() int64 {
	return int64(min(p.layers[layerWeek].buckets, 10080))
}

// bucketOf returns the index of the bucket holding t.
func (p *Params) bucketOf(t time.Time) int64 {
	w := int64(p.cfg.Bucket)
	ns := t.UnixNano()
	b := ns / w
	if ns%w < 0 {
		b--
	}
	return b
}

func (p *Params) bucketStart(b int64) time.Time {
	return time.Unix(0, b*int64(p.cfg.Bucket)).UTC()
}

// Add counts n calls at t (usually 1). When t falls in a later bucket than the open one, the
// open bucket and the empty ones since are finished first — a silence is observed as zeros —
// and the most notable of their results is returned with ok true. Calls that arrive late,
// for a bucket already finished, count in the open one.
func (m *Model) Add(t time.Time, n float64) (res Result, ok bool) {
	b := m.p.bucketOf(t)
	if m.open {
		res, ok = m.finish(b)
	} else {
		m.open, m.bucket = true, b
	}
	m.count += float32(n)
	return res, ok
}

// Advance finishes the buckets that ended before now without calls, so that an agent that
// falls silent is noticed; call it periodically for idle agents. It returns the most
// notable result of the buckets it finished (ok false: none).
func (m *Model) Advance(now time.Time) (Result, bool) {
	if !m.open {
		return Result{}, false
	}
	return m.finish(m.p.bucketOf(now))
}

// finish observes the open bucket and the empty buckets before b, then opens b.
func (m *Model) finish(b int64) (Result, bool) {
	if b <= m.bucket {
		return Result{}, false
	}
	best := m.Observe(m.p.bucketStart(m.bucket), float64(m.count))
	from := max(m.bucket+1, b-m.p.maxCatchUp())
	for i := from; i < b; i++ {
		if r := m.Observe(m.p.bucketStart(i), 0); notable(r, best) {
			best = r
		}
	}
	m.bucket, m.count = b, 0
	return best, true
}

// notable reports whether a should be reported rather than b: a raised anomaly before a
// repeat, then the higher score, then the earlier bucket.
func notable(a, b Result) bool {
	if a.Repeat != b.Repeat {
		return !a.Repeat && a.Score > 0
	}
	return a.Score > b.Score
}
