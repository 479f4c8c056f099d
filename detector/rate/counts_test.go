package rate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAddCountsCallsIntoBuckets: calls added one by one give the same results as their
// per-minute counts observed directly.
func TestAddCountsCallsIntoBuckets(t *testing.T) {
	p := newParams(t, Config{})
	byCall, byCount := p.NewModel(nil), p.NewModel(nil)
	counts := []int{3, 0, 5, 2, 0, 0, 7, 1}
	var want []Result
	for i, c := range counts {
		want = append(want, byCount.Observe(monday.Add(time.Duration(i)*time.Minute), float64(c)))
	}
	var got []Result
	for i, c := range counts {
		for j := range c {
			at := monday.Add(time.Duration(i)*time.Minute + time.Duration(j+1)*time.Second)
			if r, ok := byCall.Add(at, 1); ok {
				got = append(got, r)
			}
		}
	}
	// The first call of the ninth minute finishes the eighth.
	r, ok := byCall.Add(monday.Add(8*time.Minute), 1)
	require.True(t, ok)
	got = append(got, r)
	// Minutes with calls were reported when their next call came; empty minutes were
	// observed on the way, so every minute was learnt once.
	require.Equal(t, byCount.n, byCall.n)
	require.Equal(t, want[len(want)-1], got[len(got)-1])
	_, ok = byCall.Add(monday.Add(8*time.Minute+time.Second), 1)
	require.False(t, ok, "a call in the open bucket finishes nothing")
	_, ok = byCall.Add(monday.Add(time.Minute), 1)
	require.False(t, ok, "a late call counts in the open bucket")
}

func TestAdvanceNoticesSilence(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	_, ok := m.Advance(monday)
	require.False(t, ok, "nothing to finish before the first call")
	src := monday
	// A week of 20 calls a minute, by call.
	for i := 0; i < 7*1440; i++ {
		for j := range 20 {
			m.Add(src.Add(time.Duration(i)*time.Minute+time.Duration(j)*time.Second), 1)
		}
	}
	end := monday.Add(week)
	r, ok := m.Advance(end.Add(10 * time.Minute))
	require.True(t, ok)
	require.Equal(t, DirectionDrop, r.Direction)
	require.Zero(t, r.Observed)
	require.GreaterOrEqual(t, r.Score, 70.0, "ten silent minutes from a steady agent")
	require.Contains(t, p.Explain(r).Summary, "fell silent")

	// A month away learns at most a week of silence, so a call costs O(1) amortised.
	n := m.n
	_, ok = m.Advance(end.Add(30 * 24 * time.Hour))
	require.True(t, ok)
	require.LessOrEqual(t, m.n-n, float32(p.maxCatchUp()+1))
}

func TestNotable(t *testing.T) {
	raised := Result{Score: 50}
	repeat := Result{Score: 80, Repeat: true}
	require.True(t, notable(raised, repeat), "a raised anomaly before a repeat")
	require.False(t, notable(repeat, raised))
	require.True(t, notable(Result{Score: 60}, raised))
	require.False(t, notable(Result{Score: 50}, raised), "ties keep the earlier bucket")
}
