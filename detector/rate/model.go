package rate

import (
	"encoding/binary"
	"math"
	"time"

	"gonum.org/v1/gonum/mathext"

	"github.com/mcpwatch/mcpwatch/detector/internal/fastmath"
)

const (
	// calBins are the decades of surprise (−log10 p) the calibration record counts; the last
	// bin holds everything beyond.
	calBins = 12
	// minLearn is how many buckets a model without a prior learns before it scores.
	minLearn = 10
	// episodeFloor is the score (low severity) that keeps an anomaly episode going.
	episodeFloor = 20
	// poissonEnough is the extra log-variance below which counts are scored as Poisson.
	poissonEnough = 1e-4
	// minRate keeps a silent agent's expected rate above zero, so its tails exist.
	minRate = 1e-6
)

// slot is one seasonal slot, in model units (log1p of counts, or raw values): the average
// observation at this time of day or week (for the hour profile, the average of what those
// leave at this time of the hour), the variance about it, and how many buckets it has
// learnt (saturating; 0: never observed). The variance is kept as its log2 in 1/256ths,
// which is precise enough for a spread.
type slot struct {
	mean float32
	lv   int16
	n    uint8
	_    uint8
}

// slots holds a model's slots packed: they are most of an agent's memory (204 of them by
// default). Only the slots a model is not learning are packed: a profile's current slot is
// learnt at full precision (Model.hot) and rounded once the profile moves on to the next
// slot, so the rounding never swallows the small steps of an average that learns slowly.
type slots []byte

// slotCodec packs slots. Call counts (log1p of calls per bucket: a few units at most) take 4
// bytes a slot: the mean as a 15-bit float (5 exponent bits, 9 mantissa bits: a relative
// precision of 2⁻¹⁰), the variance's log2 in 1/64ths (±16 octaves; below that it counts as
// the bottom) and n in multiples of nQuantum (n matters only until 1/(n+1) falls to the
// slot's learning rate, a few hundred updates; the default quantum, 5, divides the updates
// of a visit to a slot: 5 for the hour profile's, 60 for the others'). Plain values
// (Config.Values: any range) take 6 bytes: the mean rounded to 24 bits (2⁻¹⁶), lv and n
// whole.
type slotCodec struct {
	compact  bool
	width    int
	nQuantum int
	// minLogVariance is the log of the smallest positive variance a slot keeps.
	minLogVariance float64
}

// Compact slots' fields, from the lowest bit of a little-endian uint32: n in 6 bits, lv in
// 11, the mean in 15.
const (
	nCompactBits   = 6
	lvCompactBits  = 11
	meanBits       = 9                             // the mean's mantissa bits
	nCompactMax    = 1<<nCompactBits - 1           // the largest multiple of nQuantum
	nQuantumMax    = math.MaxUint8/nCompactMax + 1 // nQuantum at which n reaches 255
	lvCompactShift = 2                             // lv in 1/256ths to 1/64ths
	lvCompactZero  = -1 << (lvCompactBits - 1)     // a zero variance
	lvCompactMax   = 1<<(lvCompactBits-1) - 1      // the largest lv (−lvCompactMax the smallest)
	meanShift      = nCompactBits + lvCompactBits  // where the mean starts
	lvMask         = 1<<lvCompactBits - 1          // lv's bits, before the shift
)

func (c *slotCodec) make(n int) slots { return make(slots, n*c.width) }

func (c *slotCodec) at(s slots, i int) slot {
	if c.compact {
		u := binary.LittleEndian.Uint32(s[i*4:])
		lv := int16(lvZero)
		// Sign-extend lv's 11 bits.
		if lv11 := int32(u<<(32-meanShift)) >> (32 - lvCompactBits); lv11 != lvCompactZero {
			lv = int16(lv11 << lvCompactShift)
		}
		n := int(u&nCompactMax) * c.nQuantum
		return slot{mean: miniToFloat32(uint16(u>>meanShift), meanBits), lv: lv, n: uint8(min(math.MaxUint8, n))}
	}
	b := s[i*6 : i*6+6]
	mean := uint32(b[0])<<8 | uint32(b[1])<<16 | uint32(b[2])<<24
	return slot{mean: math.Float32frombits(mean), lv: int16(binary.LittleEndian.Uint16(b[3:])), n: b[5]}
}

func (c *slotCodec) set(s slots, i int, sl slot) {
	if c.compact {
		lv := lvCompactZero
		if sl.lv != lvZero {
			lv = max(-lvCompactMax, min(lvCompactMax, (int(sl.lv)+1<<(lvCompactShift-1))>>lvCompactShift))
		}
		nq := (int(sl.n) + c.nQuantum - 1) / c.nQuantum // rounded up: a seen slot stays seen
		u := uint32(float32ToMini(sl.mean, meanBits))<<meanShift | uint32(lv&lvMask)<<nCompactBits | uint32(min(nq, nCompactMax))
		binary.LittleEndian.PutUint32(s[i*4:], u)
		return
	}
	b := s[i*6 : i*6+6]
	mean := round24(sl.mean)
	b[0], b[1], b[2] = byte(mean>>8), byte(mean>>16), byte(mean>>24)
	binary.LittleEndian.PutUint16(b[3:], uint16(sl.lv))
	b[5] = sl.n
}

// round24 returns the bits of x rounded to the nearest float32 whose last 8 mantissa bits
// are zero (ties to even).
func round24(x float32) uint32 {
	u := math.Float32bits(x)
	u += 0x7f + (u>>8)&1
	return u &^ 0xff
}

// float32ToMini rounds x to the nearest float of 1 sign bit, 5 exponent bits (bias 15) and m
// mantissa bits (ties to even; with m = 10, IEEE 754 half precision), saturating at the
// largest finite one; NaN becomes the largest too.
func float32ToMini(x float32, m uint32) uint16 {
	b := math.Float32bits(x)
	sign := uint32(b>>31) << (m + 5)
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	largest := uint32(30)<<m | (1<<m - 1)
	if exp >= 31 {
		return uint16(sign | largest)
	}
	shift := 23 - m
	h := uint32(exp) << m
	if exp <= 0 { // a subnormal, or zero
		if exp < -int(m) {
			return uint16(sign)
		}
		mant |= 0x800000
		shift = uint32(int(24-m) - exp)
		h = 0
	}
	rem, halfway := mant&(1<<shift-1), uint32(1)<<(shift-1)
	h |= mant >> shift
	if rem > halfway || (rem == halfway && h&1 == 1) {
		h++ // a carry into the exponent is the next power of two, as it should be
	}
	return uint16(sign | min(h, largest))
}

// miniToFloat32 is the value of a float32ToMini result (never infinite or NaN).
func miniToFloat32(h uint16, m uint32) float32 {
	sign := uint32(h>>(m+5)&1) << 31
	exp, mant := uint32(h>>m)&0x1f, uint32(h)&(1<<m-1)
	if exp == 0 { // subnormal: mant·2^(−14−m)
		return math.Float32frombits(sign | math.Float32bits(float32(mant)*float32(math.Ldexp(1, -14-int(m)))))
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<(23-m))
}

// lvZero encodes a variance of zero.
const lvZero = math.MinInt16

func (s slot) variance() float64 {
	if s.lv == lvZero {
		return 0
	}
	return fastmath.Pow2x256(int(s.lv)) // without math.Exp2's cost on the hot path
}

// logVariance is the natural log of the variance (about −690 for zero).
func (s slot) logVariance() float64 {
	if s.lv == lvZero {
		return logTiny
	}
	return float64(s.lv) / 256 * math.Ln2
}

// logTiny stands for the log of a zero variance.
var logTiny = math.Log(1e-300)

func (s *slot) setVariance(v float64) {
	if !(v > 0) {
		s.lv = lvZero
		return
	}
	s.lv = int16(max(-math.MaxInt16, min(math.MaxInt16, log2x256(v))))
}

// log2x256 returns round(256·log2(v)) for v > 0 from v's exponent and a table of the
// mantissas where the rounding steps up, without a logarithm on the hot path (setVariance
// runs three times a bucket). It differs from math.Round(256*math.Log2(v)) only within an
// ulp or so of a step.
func log2x256(v float64) float64 {
	bits := math.Float64bits(v)
	exp := int(bits>>52) & 0x7ff
	if exp == 0 || exp == 0x7ff { // subnormal, infinite or NaN
		return math.Round(256 * math.Log2(v))
	}
	frac := bits & (1<<52 - 1) // v = 2^(exp−1023) · (1 + frac/2^52)
	j := log2Start[frac>>44]
	for j < 256 && frac >= log2Steps[j] {
		j++
	}
	return float64(256*(exp-1023) + int(j))
}

// log2Steps[j] is the mantissa (fraction bits) of 2^((j+0.5)/256): from it on, a mantissa
// rounds to j+1 256ths of a power of two. log2Start[i] is the rounding of the smallest
// mantissa whose top 8 fraction bits are i, where the search starts.
var log2Steps, log2Start = func() (steps [256]uint64, start [256]uint16) {
	for j := range steps {
		steps[j] = math.Float64bits(math.Exp2((float64(j)+0.5)/256)) & (1<<52 - 1)
	}
	for i := range start {
		lo := uint64(i) << 44
		j := uint16(0)
		for j < 256 && lo >= steps[j] {
			j++
		}
		start[i] = j
	}
	return
}()

// Model is one agent's request-rate baseline. It is not safe for concurrent use.
type Model struct {
	p *Params

	bucket int64   // index of the open bucket (Unix time / bucket width)
	count  float32 // calls counted in the open bucket

	n     float32 // buckets learnt, plus the prior's weight
	level float32 // a slow robust average of the observations: the baseline without rhythm
	v0    float32 // variance of the observations about the level
	rv    float32 // variance of the residual the slots leave
	tw    float32 // mean squared difference between week slots and their day slots

	// Running sums over the hour and day profiles' observed slots, for the variance of
	// their values (how seasonal the agent is; the week profile's is tw); rebuilt from the
	// slots when restored.
	sum, sumsq [summedLayers]float64

	peak float32 // score of the current episode, signed by its direction; 0: none
	calm float32 // calm buckets since the episode's last anomalous one

	cal [calBins]float32 // share of past buckets by decade of surprise

	slots slots // the profiles' slots, finest period first, packed
	// hot is each profile's current slot (the one it learnt last) at full precision, and
	// hotAt its index in slots (−1: none); slots holds it rounded only once it cools.
	hot   [numLayers]slot
	hotAt [numLayers]int16

	touched [summedLayers]uint16 // observed slots per summed profile
	open    bool                 // a bucket is open for Add
}

// Direction says which way an observation deviates.
type Direction int8

// Directions.
const (
	DirectionNone Direction = iota
	DirectionSpike
	DirectionDrop
)

func (d Direction) String() string {
	switch d {
	case DirectionSpike:
		return "spike"
	case DirectionDrop:
		return "drop"
	}
	return "none"
}

// Season says which profile the typical band mostly reflects.
type Season int8

// Seasons.
const (
	SeasonNone Season = iota // too little history, or no rhythm: the overall level
	SeasonDay                // the time-of-day profile
	SeasonWeek               // the time-of-week profile
)

// Result is the verdict on one finished bucket.
type Result struct {
	// Time is the start of the bucket.
	Time time.Time
	// Observed is the bucket's calls (or value); Expected is the typical value at this time
	// and Low–High the central BandProbability band.
	Observed, Expected, Low, High float64
	// Probability is the two-sided tail probability of the observation under the baseline,
	// tempered by how often this agent has been this surprising before.
	Probability float64
	// Score is 0–100: ten points per decade of improbability.
	Score float64
	// Direction is spike when the observation is above the baseline, drop when below.
	Direction Direction
	// Repeat marks an anomalous bucket of an ongoing episode in the same direction that is
	// no more surprising than the episode's peak: merge it, do not raise it again.
	Repeat bool
	// Learning marks a bucket scored before the model had enough history: Score is 0.
	Learning bool
	// Season says whether the band reflects the time of day or week.
	Season Season
}

// NewModel returns a model for one agent, starting from prior (nil: no prior, the model
// learns from its first buckets and does not score before it has seen ten of them).
func (p *Params) NewModel(prior *Prior) *Model {
	m := &Model{p: p, slots: p.arena.get(p.nslots * p.codec.width), hotAt: noHot}
	m.start(prior)
	return m
}

func (m *Model) start(prior *Prior) {
	m.cal = calibrated()
	if prior == nil {
		return
	}
	m.n, m.level, m.v0, m.rv, m.tw = prior.weight, prior.level, prior.v0, prior.rv, prior.tw
	copy(m.slots, prior.slots)
	m.resum()
}

// Release hands the model's slots back for reuse by the next NewModel of its Params (a
// detector releases an agent it evicts). The model must not be used afterwards.
func (m *Model) Release() {
	if m.slots != nil {
		m.p.arena.put(m.slots)
		m.slots = nil
	}
}

// noHot is hotAt of a model without current slots.
var noHot = [numLayers]int16{-1, -1, -1}

// slot returns slot s at full precision.
func (m *Model) slot(s int) slot {
	for i, h := range m.hotAt {
		if int(h) == s {
			return m.hot[i]
		}
	}
	return m.p.codec.at(m.slots, s)
}

// slotOf returns slot s of profile i at full precision.
func (m *Model) slotOf(i, s int) slot {
	if int(m.hotAt[i]) == s {
		return m.hot[i]
	}
	return m.p.codec.at(m.slots, s)
}

// heat makes slot s profile i's current slot, packing the previous one.
func (m *Model) heat(i, s int) {
	if int(m.hotAt[i]) == s {
		return
	}
	if h := int(m.hotAt[i]); h >= 0 {
		full := m.hot[i]
		m.p.codec.set(m.slots, h, full)
		if full.n > 0 {
			// The running sums follow the rounding, as resum would count the slot.
			m.moveSum(i, float64(full.mean), float64(m.p.codec.at(m.slots, h).mean))
		}
	}
	m.hot[i], m.hotAt[i] = m.p.codec.at(m.slots, s), int16(s)
}

// transform maps an observation to model units.
func (m *Model) transform(x float64) float64 {
	if m.p.cfg.Values {
		return x
	}
	if i := int(x); float64(i) == x && i >= 0 && i < len(log1pCounts) {
		return log1pCounts[i] // most buckets hold a few calls
	}
	return math.Log1p(max(x, 0))
}

// log1pCounts[i] is log1p(i).
var log1pCounts = func() (t [256]float64) {
	for i := range t {
		t[i] = math.Log1p(float64(i))
	}
	return t
}()

// prediction is the baseline at one time, in model units.
type prediction struct {
	mu, v  float64            // expected value and variance
	season float64            // the day and week profiles' estimate
	idx    [numLayers]int     // each profile's slot (−1: the profile is off)
	w      [numLayers]float64 // each profile's weight
}

// slotAt returns profile i's slot at Unix second sec, or −1 when the profile is off.
func (p *Params) slotAt(i int, sec int64) int {
	l := &p.layers[i]
	if l.slots == 0 {
		return -1
	}
	phase := (sec + l.offset) % l.period
	if phase < 0 {
		phase += l.period
	}
	return l.first + int(phase*int64(l.slots)/l.period)
}

// predict combines the level and the profiles. The day slot's average is shrunk towards the
// level, the week slot's towards that, by the positive-part James-Stein factor
// 1 − (σ²/k)/d²: d is how far the slot stands from what it refines, σ² the residual
// variance and k the periods of history. A difference noise alone would make counts for
// nothing, a large one almost fully: an agent without a weekly rhythm keeps its week
// profile at no weight, a strongly seasonal one trusts its day profile after a day or two.
// The hour profile adds what the others leave at this time of the hour. The variance moves,
// by the same weights and on a log scale, from the spread about the level to the slots'
// own, plus what remains unsure about the slots' averages.
func (m *Model) predict(t time.Time) prediction {
	var pr prediction
	sec := t.Unix()
	for i := range pr.idx {
		pr.idx[i] = m.p.slotAt(i, sec)
	}
	rv := float64(m.rv)
	level := float64(m.level)
	lv := logTiny
	if m.v0 > 0 {
		lv = fastmath.Log(float64(m.v0))
	}
	season, unsure := level, 0.0
	if s := pr.idx[layerDay]; s >= 0 {
		l := &m.p.layers[layerDay]
		tau2 := m.spreadOf(layerDay)
		if sl := m.slotOf(layerDay, s); sl.n == 0 {
			unsure += tau2 // a time of day never seen is as any other
		} else {
			d := float64(sl.mean) - level
			w, u := shrink(d*d, tau2, rv, float64(m.n)/l.buckets, m.p.cfg.Shrinkage, l.memory, l.perSlot)
			pr.w[layerDay] = w
			season += w * d
			unsure += u
			lv += w * (sl.logVariance() - lv)
		}
	}
	if s := pr.idx[layerWeek]; s >= 0 {
		l := &m.p.layers[layerWeek]
		tau2 := float64(m.tw)
		if sl := m.slotOf(layerWeek, s); sl.n == 0 {
			unsure += tau2
		} else {
			d := float64(sl.mean) - season
			w, u := shrink(d*d, tau2, rv, float64(m.n)/l.buckets, m.p.cfg.Shrinkage, l.memory, l.perSlot)
			pr.w[layerWeek] = w
			season += w * d
			unsure = (1-w)*unsure + u
			lv += w * (sl.logVariance() - lv)
		}
	}
	pr.season = season
	pr.mu = season
	if s := pr.idx[layerHour]; s >= 0 {
		l := &m.p.layers[layerHour]
		tau2 := m.spreadOf(layerHour)
		if sl := m.slotOf(layerHour, s); sl.n == 0 {
			unsure += tau2
		} else if rv > 0 {
			d := float64(sl.mean)
			w, u := shrink(d*d, tau2, rv, float64(m.n)/l.buckets, m.p.cfg.Shrinkage, l.memory, l.perSlot)
			pr.w[layerHour] = w
			pr.mu += w * d
			unsure += u
			// The hour profile cuts across the others: it scales their variance. rv is
			// floored as packed slots' variances are, or a series that never varies would
			// see its variance scaled up by the floor.
			lv += w * (sl.logVariance() - max(fastmath.Log(rv), m.p.codec.minLogVariance))
		}
	}
	pr.v = fastmath.Exp(lv) + unsure
	return pr
}

// shrink returns the weight of a slot whose value differs from what it refines by d (d²
// its square), with residual variance rv, after periods of history (as many as the slots
// remember, at most), and the variance left about the slot's true value. The weight is the
// positive-part James-Stein factor 1 − (σ²/k)/d²: a difference that noise alone would
// make counts for nothing, one far beyond it almost fully. It counts history in periods,
// which is cautious: one unusual day can fool a slot however many buckets it held. What is
// left unsure counts it in updates (perPeriod a period), whose average the slot is. Before
// shrinkage periods have passed a profile does not count at all, and its slots are as
// uncertain as its values are spread (t2).
func shrink(d2, t2, rv, periods, shrinkage, memory, perPeriod float64) (w, unsure float64) {
	k := periods - shrinkage
	if k <= 0 {
		return 0, t2
	}
	k = min(k, memory)
	noise := rv / k
	if d2 <= noise {
		return 0, 0
	}
	w = 1 - noise/d2
	return w, w * rv / (k * perPeriod)
}

// bandOf returns the spread of a prediction (mean mu, variance v) and its typical band in
// observation units. For counts, the band's edges are expm1(mu ± band·sd): computed as
// e^mu·e^(±band·sd) − 1 from expm1(mu) and one exponential, where three expm1 would take
// twice the time.
func (m *Model) bandOf(mu, v float64) (sd float64, b Band) {
	if m.p.cfg.Values {
		sd = m.floorSpread(mu, v)
		return sd, Band{Expected: mu, Low: mu - m.p.band*sd, High: mu + m.p.band*sd}
	}
	// The learnt variance includes the counts' Poisson noise; that noise is its floor.
	e := expm1(mu)
	lambda := max(e, minRate)
	sd = m.floorSpread(mu, max(v, lambda/((1+lambda)*(1+lambda))))
	f := fastmath.Exp(m.p.band * sd)
	return sd, Band{Expected: max(e, 0), Low: max((e+1)/f-1, 0), High: max((e+1)*f-1, 0)}
}

// expm1 is math.Expm1 from fastmath.Exp where e^x − 1 loses no precision that matters.
func expm1(x float64) float64 {
	if math.Abs(x) < 1e-2 {
		return math.Expm1(x)
	}
	return fastmath.Exp(x) - 1
}

// floorSpread is the standard deviation for variance v, floored so that a series that never
// varied still yields finite residuals.
func (m *Model) floorSpread(mu, v float64) float64 {
	floor := 1e-9 * (1 + math.Abs(mu))
	return math.Sqrt(max(v, floor*floor))
}

// tail returns the two-sided tail probability of x under the prediction and which way x
// deviates: a Student's t for values; for counts a negative binomial with the predicted
// rate, over-dispersed by the variance the model learnt beyond Poisson noise (a Poisson
// when there is none). Buckets within two spreads of the prediction can never matter, so
// their probability comes from the normal approximation rather than the exact tail.
func (m *Model) tail(x, y float64, pr prediction, sd float64) (float64, Direction) {
	z := (y - pr.mu) / sd
	dir := DirectionSpike
	if z < 0 {
		dir = DirectionDrop
	}
	if z == 0 {
		return 1, DirectionNone
	}
	if math.Abs(z) < 2 {
		return math.Erfc(math.Abs(z) / math.Sqrt2), dir
	}
	var p float64
	switch {
	case m.p.cfg.Values && z > 0:
		p = m.p.tail.Survival(z)
	case m.p.cfg.Values:
		p = m.p.tail.CDF(z)
	default:
		p = m.countTail(x, pr, dir)
	}
	return min(1, 2*p), dir
}

// countTail is P(X ≥ x) for a spike, P(X ≤ x) for a drop.
func (m *Model) countTail(x float64, pr prediction, dir Direction) float64 {
	c := math.Round(max(x, 0))
	lambda := max(math.Expm1(pr.mu), minRate)
	extra := pr.v - lambda/((1+lambda)*(1+lambda))
	if extra < poissonEnough {
		if dir == DirectionSpike {
			if c == 0 {
				return 1
			}
			return mathext.GammaIncReg(c, lambda)
		}
		return mathext.GammaIncRegComp(c+1, lambda)
	}
	// The rate itself is uncertain: log1p(rate) ~ N(mu, extra). Match the negative
	// binomial's mean and variance to that Poisson mixture's.
	lambda = max(math.Exp(pr.mu+extra/2)-1, minRate)
	vr := math.Exp(2*pr.mu+extra) * math.Expm1(extra) // variance of the rate
	r := lambda * lambda / vr                         // shape: Var = λ + λ²/r
	q := r / (r + lambda)
	if dir == DirectionSpike {
		if c == 0 {
			return 1
		}
		return mathext.RegIncBeta(c, r, 1-q)
	}
	return mathext.RegIncBeta(r, c+1, q)
}

// Observe scores a finished bucket starting at t with x calls (or value x, with
// Config.Values), then learns it. It is the model's core; Add and Advance feed it from
// individual calls.
func (m *Model) Observe(t time.Time, x float64) Result {
	y := m.transform(x)
	res := Result{Time: t, Observed: x, Probability: 1}
	if m.n == 0 {
		// The first bucket of an agent without a prior: it is the level.
		m.level = float32(y)
		m.n = 1
		res.Expected, res.Low, res.High, res.Learning = x, x, x, true
		return res
	}
	pr := m.predict(t)
	sd, band := m.bandOf(pr.mu, pr.v)
	res.Expected, res.Low, res.High = band.Expected, band.Low, band.High
	switch {
	case pr.w[layerWeek] > 0.5:
		res.Season = SeasonWeek
	case pr.w[layerDay] > 0.5:
		res.Season = SeasonDay
	}

	p, dir := m.tail(x, y, pr, sd)
	res.Direction = dir
	p = max(p, math.SmallestNonzeroFloat64)
	k := decade(p)
	if m.n < minLearn {
		res.Learning = true
	} else {
		res.Probability = m.calibrate(p, k)
		res.Score = min(100, -10/math.Ln10*fastmath.Log(max(res.Probability, 1e-300)))
		res.Repeat = m.episode(res.Score, res.Direction)
	}
	m.learn(y, pr, sd)
	m.record(k)
	return res
}

// decade returns the decade of surprise of probability p (0 < p ≤ 1): ⌊−log10 p⌋, at most
// calBins−1, found by comparison rather than a logarithm on the hot path.
func decade(p float64) int {
	k := 0
	for k < calBins-1 && p <= pow10Neg[k+1] {
		k++
	}
	return k
}

// pow10Neg[k] is 10^−k.
var pow10Neg = func() (t [calBins]float64) {
	for k := range t {
		t[k] = math.Pow(10, -float64(k))
	}
	return t
}()

// calibrate turns a probability p, of decade of surprise k, into one tempered by the
// agent's record: the share of past buckets at least this surprising. The record starts as
// a calibrated model's (a tenth of the buckets in each further decade), so the model's own
// probability stands until the agent shows that such surprises are routine for it.
func (m *Model) calibrate(p float64, k int) float64 {
	share := float64(m.cal[k])
	if k < calBins-1 {
		// Within a decade, spread the share as a calibrated model would.
		share *= (p/pow10Neg[k] - 0.1) / 0.9
	}
	for _, c := range m.cal[k+1:] {
		share += float64(c)
	}
	return max(p, share)
}

// record adds a bucket's decade of surprise to the agent's record, once the model has
// learnt for a day: the surprises of its first hours say more about the model than about
// the agent.
func (m *Model) record(k int) {
	if float64(m.n) < m.p.layers[layerDay].buckets {
		return
	}
	a := float32(m.p.calRate)
	for i := range m.cal {
		m.cal[i] -= a * m.cal[i]
	}
	m.cal[k] += a
}

// calibrated is the record of a calibrated model: P(surprise in decade k) = 0.9·10^-k.
func calibrated() [calBins]float32 {
	var c [calBins]float32
	for k := range c {
		c[k] = float32(0.9 * math.Pow(10, -float64(k)))
	}
	c[calBins-1] = float32(math.Pow(10, -float64(calBins-1)))
	return c
}

// episode tracks anomaly episodes and reports whether this bucket repeats the current one.
// A bucket is raised when it is more surprising than anything in the episode so far, so for
// any alert threshold the raised buckets are those above it that escalate the episode.
func (m *Model) episode(score float64, dir Direction) bool {
	if score < episodeFloor {
		if m.peak != 0 {
			m.calm++
			if float64(m.calm) >= m.p.gapBuckets {
				m.peak, m.calm = 0, 0
			}
		}
		return false
	}
	signed := float32(score)
	if dir == DirectionDrop {
		signed = -signed
	}
	m.calm = 0
	if m.peak != 0 && (m.peak > 0) == (signed > 0) && abs32(signed) <= abs32(m.peak) {
		return true
	}
	m.peak = signed
	return false
}

// learn updates the baseline with y clipped to Clip spreads around the prediction, in the
// manner of robust Holt-Winters: a burst barely moves the level and the slots, while a
// lasting shift keeps being clipped at the edge, inflates the slots' variances and so widens
// the clip until the baseline has followed it. The day and week slots average the
// observations at their time; the hour slots average what those leave.
func (m *Model) learn(y float64, pr prediction, sd float64) {
	e := y - pr.mu
	if float64(m.n) >= m.p.layers[layerDay].buckets {
		// For its first day the model learns everything: before it has seen the day's
		// rhythm, the rhythm looks like outliers.
		lim := m.p.cfg.Clip * sd
		e = max(-lim, min(lim, e))
	}
	ystar := pr.mu + e
	aL := max(1/(float64(m.n)+1), m.p.levelRate)
	g := ystar - float64(m.level)
	m.v0 += float32(aL * (g*g - float64(m.v0)))
	m.level += float32(aL * g)

	// What the slots, trusted fully, would have predicted: its residual is the noise the
	// shrinkage weighs them against.
	raw := float64(m.level)
	for _, i := range [...]int{layerDay, layerWeek} {
		if s := pr.idx[i]; s >= 0 {
			if sl := m.slotOf(i, s); sl.n > 0 {
				raw = float64(sl.mean)
			}
		}
	}
	if s := pr.idx[layerHour]; s >= 0 {
		if sl := m.slotOf(layerHour, s); sl.n > 0 {
			raw += float64(sl.mean)
		}
	}
	m.rv += float32(aL * ((ystar-raw)*(ystar-raw) - float64(m.rv)))

	d, w := pr.idx[layerDay], pr.idx[layerWeek]
	m.learnSlot(layerDay, d, ystar, float64(m.v0))
	m.learnSlot(layerWeek, w, ystar, float64(m.v0))
	if d >= 0 && w >= 0 {
		diff := float64(m.hot[layerWeek].mean - m.hot[layerDay].mean) // both just learnt
		m.tw += float32(aL * (diff*diff - float64(m.tw)))
	}
	m.learnSlot(layerHour, pr.idx[layerHour], ystar-pr.season, float64(m.rv))
	m.n = min(m.n+1, 1<<24)
}

// learnSlot moves slot s of profile i (−1: none) towards x: a running average at first,
// then an EWMA; v0 is a new slot's variance. The slot becomes the profile's current one.
func (m *Model) learnSlot(i, s int, x, v0 float64) {
	if s < 0 {
		return
	}
	m.heat(i, s)
	sl := &m.hot[i]
	old := float64(sl.mean)
	if sl.n == 0 {
		sl.mean = float32(x)
		sl.setVariance(v0)
		old = 0
		if i < summedLayers {
			m.touched[i]++
		}
	} else {
		a := max(1/(float64(sl.n)+1), m.p.layers[i].rate)
		r := x - old
		v := sl.variance()
		sl.setVariance(v + a*(r*r-v))
		sl.mean += float32(a * r)
	}
	if sl.n < math.MaxUint8 {
		sl.n++
	}
	m.moveSum(i, old, float64(sl.mean))
}

// summedLayers are the profiles with running sums: hour and day (layerHour, layerDay).
const summedLayers = layerWeek

// moveSum updates profile i's running sums for a slot whose value moved from old to x.
func (m *Model) moveSum(i int, old, x float64) {
	if i < summedLayers {
		m.sum[i] += x - old
		m.sumsq[i] += x*x - old*old
	}
}

// spreadOf returns the variance of the values of profile i's observed slots.
func (m *Model) spreadOf(i int) float64 {
	k := float64(m.touched[i])
	if k == 0 {
		return 0
	}
	mean := m.sum[i] / k
	return max(m.sumsq[i]/k-mean*mean, 0)
}

// resum rebuilds the profiles' running sums from their slots.
func (m *Model) resum() {
	for i, l := range m.p.layers[:summedLayers] {
		m.sum[i], m.sumsq[i], m.touched[i] = 0, 0, 0
		for s := l.first; s < l.first+l.slots; s++ {
			if sl := m.slot(s); sl.n > 0 {
				off := float64(sl.mean)
				m.sum[i] += off
				m.sumsq[i] += off * off
				m.touched[i]++
			}
		}
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
