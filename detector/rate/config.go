package rate

import (
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/mcpwatch/mcpwatch/internal/config"
)

// Config holds the request-rate model's parameters. Zero values take the defaults.
type Config struct {
	// Bucket is the width of a counting bucket (default 1m): the model scores calls per bucket.
	Bucket time.Duration `yaml:"bucket"`
	// HourSlots is the number of slots of the time-of-hour profile (default 12: five
	// minutes each), which catches agents that wake on the clock (polling, cron jobs).
	// 1 turns the profile off, as for the others; it needs buckets shorter than its slots.
	HourSlots int `yaml:"hour_slots"`
	// DaySlots is the number of slots of the time-of-day profile (default 24: hours).
	DaySlots int `yaml:"day_slots"`
	// WeekSlots is the number of slots of the day-of-week profile (default 168: hours of the
	// week). It refines the daily profile (weekends, office hours) once weeks have been seen.
	WeekSlots int `yaml:"week_slots"`
	// LevelHalfLife is how fast the level follows slow trends (default 7 days).
	LevelHalfLife time.Duration `yaml:"level_half_life"`
	// SeasonHalfLife is how many periods (hours, days, weeks) a seasonal slot remembers, and
	// at least a day (default 3).
	SeasonHalfLife float64 `yaml:"season_half_life"`
	// Shrinkage is how many whole periods a profile must have seen before it counts at all;
	// after that, each slot counts as far as it stands out from noise (default 1).
	Shrinkage float64 `yaml:"shrinkage"`
	// Clip bounds what one observation can teach: residuals beyond Clip spreads are clipped
	// before they are learnt (Huber), so bursts do not drag the baseline (default 3).
	Clip float64 `yaml:"clip"`
	// TailDF is the degrees of freedom of the Student's t the residuals are scored under;
	// smaller values have heavier tails and give lower scores (default 10).
	TailDF float64 `yaml:"tail_df"`
	// CalibrationHalfLife is the memory of how often the agent has been this surprising
	// before: a surprise the agent produces routinely scores lower (default 7 days).
	CalibrationHalfLife time.Duration `yaml:"calibration_half_life"`
	// EpisodeGap is how long without an anomalous bucket ends an anomaly episode. Within an
	// episode, buckets that are not more surprising than its peak are repeats (default 24h).
	EpisodeGap time.Duration `yaml:"episode_gap"`
	// Values makes observations plain values (a metric per bucket) rather than call counts:
	// no log scale and no Poisson floor. Used to run the model on generic benchmarks.
	Values bool `yaml:"values"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	if c.Bucket == 0 {
		c.Bucket = time.Minute
	}
	if c.HourSlots == 0 {
		c.HourSlots = 12
	}
	if c.DaySlots == 0 {
		c.DaySlots = 24
	}
	if c.WeekSlots == 0 {
		c.WeekSlots = 168
	}
	if c.LevelHalfLife == 0 {
		c.LevelHalfLife = 7 * 24 * time.Hour
	}
	if c.SeasonHalfLife == 0 {
		c.SeasonHalfLife = 3
	}
	if c.Shrinkage == 0 {
		c.Shrinkage = 1
	}
	if c.Clip == 0 {
		c.Clip = 3
	}
	if c.TailDF == 0 {
		c.TailDF = 10
	}
	if c.CalibrationHalfLife == 0 {
		c.CalibrationHalfLife = 7 * 24 * time.Hour
	}
	if c.EpisodeGap == 0 {
		c.EpisodeGap = 24 * time.Hour
	}

}

// Limits on the slot counts keep a model's state bounded (see the memory benchmark).
const (
	maxHourSlots = 60
	maxDaySlots  = 288
	maxWeekSlots = 168
)

// Validate names every invalid field, with paths relative to the model's section.
func (c Config) Validate() error {
	var errs config.Errors
	if c.Bucket < time.Second {
		errs.Addf("bucket", "must be at least 1s, got %s", c.Bucket)
	}
	if c.HourSlots < 1 || c.HourSlots > maxHourSlots {
		errs.Addf("hour_slots", "must be from 1 to %d, got %d", maxHourSlots, c.HourSlots)
	}
	if c.DaySlots < 1 || c.DaySlots > maxDaySlots {
		errs.Addf("day_slots", "must be from 1 to %d, got %d", maxDaySlots, c.DaySlots)
	}
	if c.WeekSlots < 1 || c.WeekSlots > maxWeekSlots {
		errs.Addf("week_slots", "must be from 1 to %d, got %d", maxWeekSlots, c.WeekSlots)
	}
	if c.LevelHalfLife < c.Bucket {
		errs.Addf("level_half_life", "must be at least one bucket (%s), got %s", c.Bucket, c.LevelHalfLife)
	}
	if !(c.SeasonHalfLife >= 0.5) {
		errs.Addf("season_half_life", "must be at least 0.5 periods, got %g", c.SeasonHalfLife)
	}
	if !(c.Shrinkage > 0) {
		errs.Addf("shrinkage", "must be positive, got %g", c.Shrinkage)
	}
	if !(c.Clip >= 1) {
		errs.Addf("clip", "must be at least 1 spread, got %g", c.Clip)
	}
	if !(c.TailDF >= 1) {
		errs.Addf("tail_df", "must be at least 1, got %g", c.TailDF)
	}
	if c.CalibrationHalfLife < c.Bucket {
		errs.Addf("calibration_half_life", "must be at least one bucket (%s), got %s", c.Bucket, c.CalibrationHalfLife)
	}
	if c.EpisodeGap < c.Bucket {
		errs.Addf("episode_gap", "must be at least one bucket (%s), got %s", c.Bucket, c.EpisodeGap)
	}

	return errs.Err()
}

// Params is a validated Config with the constants derived from it, shared by every Model
// built from it.
type Params struct {
	cfg Config

	layers [numLayers]layer
	nslots int // slots of all profiles
	codec  slotCodec
	arena  slotArena // models' slots

	// Per-bucket learning rates (floors: early on, models average their history instead).
	levelRate, calRate float64
	// Buckets of calm that end an episode.
	gapBuckets float64

	tail distuv.StudentsT
	band float64 // t quantile of the typical band's upper end
}

// The seasonal profiles, finest period first.
const (
	layerHour = iota
	layerDay
	layerWeek
	numLayers
)

// layer is one seasonal profile: a period cut into slots.
type layer struct {
	period  int64   // seconds
	offset  int64   // seconds added to Unix time before taking the phase (weeks start on Monday)
	slots   int     // 0: the profile is off
	first   int     // index of its first slot in Model.slots
	buckets float64 // buckets per period
	share   float64 // updates a slot receives per bucket observed
	rate    float64 // per-update learning rate floor of a slot
	memory  float64 // periods of history a slot's offset averages, at most
	perSlot float64 // updates a slot receives a period
}

// layerOf returns the profile slot s belongs to.
func (p *Params) layerOf(s int) int {
	for i, l := range p.layers {
		if s >= l.first && s < l.first+l.slots {
			return i
		}
	}
	panic("BUG: slot out of range")
}

// BandProbability is the central probability of the "typical" band in explanations.
const BandProbability = 0.9

// NewParams validates cfg (after SetDefaults) and derives the model's constants.
func NewParams(cfg Config) (*Params, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Params{cfg: cfg}
	b := cfg.Bucket.Seconds()
	p.levelRate = halfLifeRate(cfg.LevelHalfLife.Seconds() / b)
	p.calRate = halfLifeRate(cfg.CalibrationHalfLife.Seconds() / b)
	p.gapBuckets = math.Ceil(cfg.EpisodeGap.Seconds() / b)
	for i, l := range []struct {
		period time.Duration
		offset int64
		slots  int
	}{
		layerHour: {time.Hour, 0, cfg.HourSlots},
		layerDay:  {24 * time.Hour, 0, cfg.DaySlots},
		layerWeek: {7 * 24 * time.Hour, 3 * 86400, cfg.WeekSlots}, // 1970-01-01 was a Thursday
	} {
		lp := layer{period: int64(l.period / time.Second), offset: l.offset, buckets: l.period.Seconds() / b}
		// A profile needs at least two slots, each at least a bucket wide.
		if l.slots > 1 && lp.buckets >= float64(l.slots) {
			lp.slots = l.slots
			lp.first = p.nslots
			p.nslots += l.slots
			perSlot := lp.buckets / float64(l.slots)
			lp.perSlot = perSlot
			lp.share = 1 / perSlot
			// A slot remembers SeasonHalfLife periods, and at least a day: the hour
			// profile's slots need many hours to average out the noise.
			halfLife := max(cfg.SeasonHalfLife*l.period.Seconds(), 86400)
			lp.rate = halfLifeRate(halfLife / b * lp.share)
			// An EWMA is as precise as a mean of (2−rate)/rate updates: so many periods.
			lp.memory = (2 - lp.rate) / lp.rate / perSlot
		}
		p.layers[i] = lp
	}
	p.codec = slotCodec{compact: !cfg.Values, width: 6, nQuantum: 1, minLogVariance: -math.MaxInt16 / 256.0 * math.Ln2}
	if p.codec.compact {
		p.codec.minLogVariance = -lvCompactMax << lvCompactShift / 256.0 * math.Ln2
		// n counts until 1/(n+1) falls to the slowest-learning profile's rate:
		// nCompactMax steps of nQuantum must reach that far.
		p.codec.width = 4
		for _, l := range p.layers {
			if l.slots > 0 {
				saturated := math.Ceil(1 / l.rate)
				p.codec.nQuantum = max(p.codec.nQuantum, min(nQuantumMax, int(math.Ceil(saturated/nCompactMax))))
			}
		}
	}
	p.tail = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: cfg.TailDF}
	p.band = p.tail.Quantile(0.5 + BandProbability/2)
	return p, nil
}

// Config returns the parameters' configuration, defaults filled in.
func (p *Params) Config() Config { return p.cfg }

// halfLifeRate is the EWMA weight whose memory halves after n updates.
func halfLifeRate(n float64) float64 {
	if n <= 1 {
		return 0.5
	}
	return 1 - math.Exp2(-1/n)
}
