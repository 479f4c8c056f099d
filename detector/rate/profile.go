package rate

import (
	"time"
)

// Band is the baseline's typical range for one bucket: Expected calls (or value) and the
// central BandProbability band Low–High, in the model's unit (Params.Unit).
type Band struct {
	Expected, Low, High float64
}

// Band returns what the model predicts for a bucket starting at t: the Expected, Low and High
// that Observe would report for it, computed the same way. It does not change the model.
// ok is false for a model that has learnt nothing yet (no prior and no bucket).
func (m *Model) Band(t time.Time) (b Band, ok bool) {
	if m.n == 0 {
		return Band{}, false
	}
	pr := m.predict(t)
	_, b = m.bandOf(pr.mu, pr.v)
	return b, true
}

// HoursPerWeek is the number of entries of WeekBands: one per hour of the week.
const HoursPerWeek = 168

// WeekBands returns the typical range for every hour of the week, Monday 00:00–01:00 UTC
// first. The baseline's prediction depends only on the time of the week (its profiles are
// periodic), so this is the learnt band for any week. An hour's entry summarises the
// model's per-minute predictions within it: Expected is their mean, Low the lowest of their
// lows and High the highest of their highs, so a bucket outside its hour's band is outside
// its own. Slots are at least a minute wide, so sampling every minute sees every slot.
// ok is false for a model that has learnt nothing yet.
func (m *Model) WeekBands() (bands [HoursPerWeek]Band, ok bool) {
	if m.n == 0 {
		return bands, false
	}
	// 2024-01-01 was a Monday; any Monday gives the same bands.
	week := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for h := range bands {
		start := week.Add(time.Duration(h) * time.Hour)
		var sum float64
		var hb Band
		for i := range 60 {
			b, _ := m.Band(start.Add(time.Duration(i) * time.Minute))
			sum += b.Expected
			if i == 0 || b.Low < hb.Low {
				hb.Low = b.Low
			}
			if i == 0 || b.High > hb.High {
				hb.High = b.High
			}
		}
		hb.Expected = sum / 60
		bands[h] = hb
	}
	return bands, true
}

// Learning reports whether the model has learnt too few buckets to score (a model built on
// a prior counts the prior's weight).
func (m *Model) Learning() bool { return m.n < minLearn }
