package rate

import (
	"math"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
)

// monday is the first minute of a week (2026-01-05 was a Monday).
var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// office is an agent busy on weekdays from 09:00 to 18:00 UTC (20 calls a minute) and quiet
// otherwise (one call every two minutes).
func office(t time.Time) float64 {
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return 0.5
	}
	if h := t.Hour(); h >= 9 && h < 18 {
		return 20
	}
	return 0.5
}

func flat(rate float64) func(time.Time) float64 { return func(time.Time) float64 { return rate } }

// simulate feeds m with Poisson calls per minute from rate over [from, from+d) and returns
// the results.
func simulate(m *Model, from time.Time, d time.Duration, rate func(time.Time) float64, seed uint64) []Result {
	src := rand.NewPCG(seed, 7)
	out := make([]Result, 0, int(d/time.Minute))
	for t := from; t.Before(from.Add(d)); t = t.Add(time.Minute) {
		x := distuv.Poisson{Lambda: rate(t), Src: src}.Rand()
		out = append(out, m.Observe(t, x))
	}
	return out
}

func newParams(t testing.TB, cfg Config) *Params {
	t.Helper()
	p, err := NewParams(cfg)
	require.NoError(t, err)
	return p
}

const week = 7 * 24 * time.Hour

// trained returns a model that has learnt three weeks of the office agent.
func trained(t testing.TB) (*Params, *Model) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, 3*week, office, 1)
	return p, m
}

func TestNormalWeekRaisesNothing(t *testing.T) {
	_, m := trained(t)
	res := simulate(m, monday.Add(3*week), week, office, 2)
	var medium []Result
	for _, r := range res {
		require.Less(t, r.Score, 70.0, "a normal week must not raise a high anomaly: %+v", r)
		if r.Score >= 40 && !r.Repeat {
			medium = append(medium, r)
		}
	}
	// A night minute with 6 calls where 0.5 are usual has a Poisson probability of 1e-5: in
	// a week of 10,080 minutes one such minute may happen, and is fairly reported.
	require.LessOrEqual(t, len(medium), 1, "medium anomalies in a normal week: %+v", medium)
}

func TestLearnsTheRhythm(t *testing.T) {
	p, m := trained(t)
	at := func(d time.Duration) Result {
		t.Helper()
		pr := m.predict(monday.Add(3*week + d))
		sd := m.spread(pr.mu, pr.v)
		return Result{Expected: m.untransform(pr.mu), Low: m.untransform(pr.mu - p.band*sd), High: m.untransform(pr.mu + p.band*sd)}
	}
	tuesday := 24 * time.Hour
	busy := at(tuesday + 14*time.Hour)
	require.InDelta(t, 20, busy.Expected, 5, "Tuesday 14:00")
	require.Less(t, busy.Low, 20.0)
	require.Greater(t, busy.High, 20.0)
	require.Less(t, at(tuesday+3*time.Hour).Expected, 1.5, "Tuesday 03:00")
	require.Less(t, at(5*24*time.Hour+14*time.Hour).Expected, 1.5, "Saturday 14:00: the week profile knows weekends")
}

func TestSpikesAndSilences(t *testing.T) {
	p, m := trained(t)
	tuesday := monday.Add(3*week + 24*time.Hour)

	t.Run("spike", func(t *testing.T) {
		m := clone(t, p, m)
		r := m.Observe(tuesday.Add(14*time.Hour), 212)
		require.GreaterOrEqual(t, r.Score, 90.0)
		require.Equal(t, DirectionSpike, r.Direction)
		require.Equal(t, SeasonWeek, r.Season)
		e := p.Explain(r)
		require.Equal(t, "212 calls/min", e.Observed)
		require.Regexp(t, `^\d+(\.\d)?–\d+ on Tuesdays at this hour$`, e.Typical)
		require.Regexp(t, `^Request rate spiked: 212 calls/min; typical .* on Tuesdays at this hour`, e.Summary)
		require.Equal(t, ModelName, e.Model)
		require.Equal(t, r.Probability, e.Probability)
		require.Less(t, r.Low, 20.0)
		require.Greater(t, r.High, 20.0)
	})

	t.Run("busy at night", func(t *testing.T) {
		// 20 calls a minute is normal at 14:00 and anomalous at 03:00.
		m := clone(t, p, m)
		r := m.Observe(tuesday.Add(3*time.Hour), 20)
		require.GreaterOrEqual(t, r.Score, 70.0)
		require.Equal(t, DirectionSpike, r.Direction)
	})

	t.Run("silence", func(t *testing.T) {
		m := clone(t, p, m)
		var raised []Result
		for i := range 10 {
			r := m.Observe(tuesday.Add(14*time.Hour+time.Duration(i)*time.Minute), 0)
			require.Equal(t, DirectionDrop, r.Direction)
			if !r.Repeat && r.Score >= episodeFloor {
				raised = append(raised, r)
			}
		}
		require.Len(t, raised, 1, "ten silent minutes are one anomaly, not ten")
		require.GreaterOrEqual(t, raised[0].Score, 35.0)
		require.Contains(t, p.Explain(raised[0]).Summary, "Request rate fell silent: 0 calls/min")
	})
}

// clone copies a model through its snapshot.
func clone(t testing.TB, p *Params, m *Model) *Model {
	t.Helper()
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	c := p.NewModel(nil)
	require.NoError(t, c.UnmarshalBinary(b))
	return c
}

func TestBurstDoesNotDragTheBaseline(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	start := monday
	simulate(m, start, week, flat(20), 3)
	now := start.Add(week)
	before := m.predict(now).mu
	for i := range 30 {
		r := m.Observe(now.Add(time.Duration(i)*time.Minute), 500)
		if i == 0 {
			require.GreaterOrEqual(t, r.Score, 90.0)
		}
	}
	after := m.predict(now.Add(30 * time.Minute)).mu
	require.InDelta(t, math.Expm1(before), math.Expm1(after), 0.15*math.Expm1(before), "half an hour at 25× the rate barely moves the baseline")
}

func TestFollowsALastingShift(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, 2*week, flat(20), 4)
	res := simulate(m, monday.Add(2*week), week, flat(60), 5)
	require.GreaterOrEqual(t, res[0].Score, 40.0, "the shift is noticed")
	for _, r := range res[len(res)-1440:] {
		require.Less(t, r.Score, 40.0, "a week later it is the new normal: %+v", r)
	}
	require.InDelta(t, 60, res[len(res)-1].Expected, 15)
}

func TestRepeatsMergeUntilTheyEscalate(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, week, flat(20), 6)
	now := monday.Add(week)
	next := func(x float64) Result {
		r := m.Observe(now, x)
		now = now.Add(time.Minute)
		return r
	}
	first := next(200)
	require.False(t, first.Repeat)
	require.GreaterOrEqual(t, first.Score, 70.0)
	require.True(t, next(150).Repeat, "a smaller spike in the same episode is a repeat")
	drop := next(0)
	require.Equal(t, DirectionDrop, drop.Direction)
	require.False(t, drop.Repeat, "a drop is another anomaly")
	require.False(t, next(100000).Repeat, "an escalation is raised again")
	simulate(m, now, 25*time.Hour, flat(20), 7) // a calm day ends the episode
	now = now.Add(25 * time.Hour)
	require.False(t, next(200).Repeat, "after a calm day, the same spike is new")
}

// TestRoutineSurprisesAreCalibrated: an agent that bursts every 37 minutes (off any clock
// slot, so no profile can learn it) soon stops alarming, while a first burst does alarm.
func TestRoutineSurprisesAreCalibrated(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	rate := func(t time.Time) float64 {
		if int(t.Sub(monday)/time.Minute)%37 == 0 {
			return 200
		}
		return 5
	}
	simulate(m, monday, 24*time.Hour, flat(5), 8)
	first := m.Observe(monday.Add(24*time.Hour), 200)
	require.GreaterOrEqual(t, first.Score, 70.0)
	res := simulate(m, monday.Add(24*time.Hour+time.Minute), 3*week, rate, 9)
	var late []float64
	for i, r := range res[len(res)-1440:] {
		if r.Observed >= 100 {
			late = append(late, r.Score)
		}
		_ = i
	}
	require.NotEmpty(t, late)
	for _, s := range late {
		require.Less(t, s, 40.0, "a burst every 37 minutes has become routine")
	}
}

func TestPrior(t *testing.T) {
	p := newParams(t, Config{})
	var peers []*Model
	for i := range 5 {
		m := p.NewModel(nil)
		simulate(m, monday, 3*week, office, uint64(10+i))
		peers = append(peers, m)
	}
	// Two weeks' worth of evidence: enough for the peers' rhythm to count.
	prior := p.PriorFrom(peers, float64(2*week/time.Minute))
	require.NotNil(t, prior)
	require.Nil(t, p.PriorFrom([]*Model{p.NewModel(nil)}, 1440), "models still learning make no prior")

	tuesday := monday.Add(3*week + 24*time.Hour + 14*time.Hour)
	cold := p.NewModel(prior)
	r := cold.Observe(tuesday, 212)
	require.False(t, r.Learning, "a cold agent with a peer prior is scored at once")
	require.GreaterOrEqual(t, r.Score, 70.0)
	require.InDelta(t, 20, r.Expected, 8, "the prior knows the peers' Tuesday afternoons")

	r = p.NewModel(nil).Observe(tuesday, 212)
	require.True(t, r.Learning, "without a prior the first buckets only teach")
	require.Zero(t, r.Score)

	flatPrior := p.FlatPrior(20, 1440)
	m := p.NewModel(flatPrior)
	require.Less(t, m.Observe(tuesday, 21).Score, 20.0)
	require.GreaterOrEqual(t, m.Observe(tuesday.Add(time.Minute), 500).Score, 70.0)
}

func TestValues(t *testing.T) {
	// A metric every 5 minutes with a daily sine around zero (negative values included).
	p := newParams(t, Config{Bucket: 5 * time.Minute, Values: true})
	m := p.NewModel(nil)
	rng := rand.New(rand.NewPCG(11, 11))
	value := func(t time.Time) float64 {
		return 10*math.Sin(2*math.Pi*float64(t.Hour()*60+t.Minute())/1440) + rng.NormFloat64()
	}
	var worst float64
	for ts := monday; ts.Before(monday.Add(2 * week)); ts = ts.Add(5 * time.Minute) {
		r := m.Observe(ts, value(ts))
		if ts.After(monday.Add(3 * 24 * time.Hour)) {
			worst = max(worst, r.Score)
		}
	}
	require.Less(t, worst, 40.0)
	at := monday.Add(2*week + 6*time.Hour) // the sine's peak: about 10
	r := m.Observe(at, -10)
	require.GreaterOrEqual(t, r.Score, 60.0)
	require.Equal(t, DirectionDrop, r.Direction)
	require.InDelta(t, 10, r.Expected, 2)
	require.Equal(t, "", p.Unit())
	require.Regexp(t, regexp.MustCompile(`^Request rate dropped: -10; typical \d`), p.Explain(r).Summary)
}

// TestLookupTablesMatchMath: the tables the hot path reads give math's results bit for bit.
func TestLookupTablesMatchMath(t *testing.T) {
	for lv := math.MinInt16 + 1; lv <= math.MaxInt16; lv++ {
		s := slot{lv: int16(lv)}
		require.Equal(t, math.Exp2(float64(lv)/256), s.variance(), "lv %d", lv)
	}
	require.Zero(t, slot{lv: lvZero}.variance())
	m := newParams(t, Config{}).NewModel(nil)
	for _, x := range []float64{0, 1, 2, 3, 17, 255, 256, 1000, 2.5, -1} {
		require.Equal(t, math.Log1p(max(x, 0)), m.transform(x), "x %g", x)
	}
}

// TestLog2x256 checks the table-driven rounding of 256·log2(v) against the logarithm over
// a million values across the exponent range, and at exact powers of two.
func TestLog2x256(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		v := math.Ldexp(1+src.Float64(), src.IntN(200)-100)
		require.Equal(t, math.Round(256*math.Log2(v)), log2x256(v), "v=%v", v)
	}
	for e := -1074; e < 1024; e++ {
		v := math.Ldexp(1, e)
		require.Equal(t, float64(256*e), log2x256(v), "v=2^%d", e)
	}
}

// TestDecade checks the decade of surprise found by comparison against ⌊−log10 p⌋.
func TestDecade(t *testing.T) {
	for _, p := range []float64{1, 0.5, 0.11, 0.099, 0.0099, 3e-5, 1e-11 / 2, 1e-300, math.SmallestNonzeroFloat64} {
		require.Equal(t, min(int(-math.Log10(p)), calBins-1), decade(p), "p=%v", p)
	}
}

// TestMiniFloat checks the small floats of compact slots' means (and, with 10 mantissa
// bits, IEEE half precision): every finite one survives a round trip, and a float32 rounds
// to a nearest one.
func TestMiniFloat(t *testing.T) {
	for _, m := range []uint32{meanBits, 10} {
		top := uint16(1) << (m + 6)
		for h := range top {
			if (h>>m)&0x1f == 0x1f { // infinities and NaNs are never written
				continue
			}
			require.Equal(t, h, float32ToMini(miniToFloat32(h, m), m), "m=%d: %#04x", m, h)
		}
		src := rand.New(rand.NewPCG(5, 6))
		for range 300_000 {
			x := float32(math.Ldexp(src.Float64()*2-1, src.IntN(40)-24))
			h := float32ToMini(x, m)
			got := miniToFloat32(h, m)
			// No such float between got and x: the neighbours of h are at least as far.
			for _, nb := range []uint16{h + 1, h - 1} {
				if nb < top && (nb>>m)&0x1f != 0x1f && (nb^h)>>(m+5) == 0 {
					require.LessOrEqual(t, math.Abs(float64(got-x)), math.Abs(float64(miniToFloat32(nb, m)-x)), "m=%d: x=%v", m, x)
				}
			}
		}
	}
	require.Equal(t, float32(65504), miniToFloat32(float32ToMini(1e9, 10), 10), "saturates")
	require.Equal(t, float32(1.5), miniToFloat32(float32ToMini(1.5, meanBits), meanBits))
	require.Equal(t, float32(-0.25), miniToFloat32(float32ToMini(-0.25, meanBits), meanBits))
}

// TestReleaseReusesSlots: a released model's slots go to the next model, zeroed, so it
// starts as a new one does.
func TestReleaseReusesSlots(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, 2*24*time.Hour, office, 3)
	used := &m.slots[0]
	m.Release()
	require.Nil(t, m.slots)
	fresh := p.NewModel(nil)
	require.Same(t, used, &fresh.slots[0], "the released slots are reused")
	require.Equal(t, make([]byte, len(fresh.slots)), []byte(fresh.slots), "and zeroed")
	want := simulate(newParams(t, Config{}).NewModel(nil), monday, 24*time.Hour, office, 4)
	require.Equal(t, want, simulate(fresh, monday, 24*time.Hour, office, 4), "it scores as a new model")
}

// TestConstantSeriesBand: an agent that never varies (two calls every minute) keeps a tight
// band. Packed slots floor their variances; the hour profile's scaling of the variance must
// not turn that floor into a band of thousands.
func TestConstantSeriesBand(t *testing.T) {
	for _, values := range []bool{false, true} {
		constant := newParams(t, Config{Values: values}).NewModel(nil)
		for ts := monday; ts.Before(monday.Add(48 * time.Hour)); ts = ts.Add(time.Minute) {
			constant.Observe(ts, 2)
		}
		b, ok := constant.Band(monday.Add(49*time.Hour + 30*time.Minute))
		require.True(t, ok)
		require.InDelta(t, 2, b.Expected, 0.01, "values %v", values)
		require.Less(t, b.High, 10.0, "values %v: %+v", values, b)
	}
}

// untransform maps model units back to observations (the band's edges use bandOf).
func (m *Model) untransform(y float64) float64 {
	if m.p.cfg.Values {
		return y
	}
	return max(math.Expm1(y), 0)
}

// spread is the standard deviation of a prediction in model units (bandOf's).
func (m *Model) spread(mu, v float64) float64 {
	sd, _ := m.bandOf(mu, v)
	return sd
}
