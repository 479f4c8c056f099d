package size

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/mcpwatch/mcpwatch/detector/internal/fastmath"
	"github.com/mcpwatch/mcpwatch/internal/config"
)

// ModelName names the model in anomalies.
const ModelName = "context_size"

// Config holds the model's parameters; zero fields take the defaults.
type Config struct {
	// MaxKeys caps the (call, direction) keys an agent keeps (default 32); a new key evicts
	// the least used.
	MaxKeys int `yaml:"max_keys"`
	// MinCount is how many sizes a key learns before it scores (default 20); until then the
	// agent's key over all calls scores instead.
	MinCount int `yaml:"min_count"`
	// HalfLife is how many sizes a key remembers, at most (default 200).
	HalfLife float64 `yaml:"half_life"`
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.MaxKeys == 0 {
		c.MaxKeys = 32
	}
	if c.MinCount == 0 {
		c.MinCount = 20
	}
	if c.HalfLife == 0 {
		c.HalfLife = 200
	}
}

// Validate names every invalid field, relative to the model's section.
func (c Config) Validate() error {
	var errs config.Errors
	if c.MaxKeys < 1 || c.MaxKeys > 1024 {
		errs.Addf("max_keys", "must be from 1 to 1024, got %d", c.MaxKeys)
	}
	if c.MinCount < 2 {
		errs.Addf("min_count", "must be at least 2, got %d", c.MinCount)
	}
	if !(c.HalfLife >= 1) {
		errs.Addf("half_life", "must be at least 1, got %g", c.HalfLife)
	}
	return errs.Err()
}

// Direction of a message.
type Direction uint8

// Directions.
const (
	Request Direction = iota
	Response
)

// Params is a validated Config shared by every agent's Sizes.
type Params struct {
	cfg  Config
	rate float64 // EWMA floor
	tail distuv.StudentsT
}

// NewParams validates cfg (after SetDefaults).
func NewParams(cfg Config) (*Params, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Params{
		cfg:  cfg,
		rate: 1 - math.Exp2(-1/cfg.HalfLife),
		tail: distuv.StudentsT{Mu: 0, Sigma: 1, Nu: 10},
	}, nil
}

// Key identifies a call: a hash of its method and tool (or prompt) name.
type Key uint64

// KeyOf hashes (method, target) with 64-bit FNV-1a, without allocating; keys are stable
// across processes, so snapshots keep them.
func KeyOf(method, target string) Key {
	h := uint64(14695981039346656037)
	for i := 0; i < len(method); i++ {
		h = (h ^ uint64(method[i])) * 1099511628211
	}
	h *= 1099511628211 // a zero byte between method and target
	for i := 0; i < len(target); i++ {
		h = (h ^ uint64(target[i])) * 1099511628211
	}
	return Key(h)
}

// stats is one key's robust distribution of log2(bytes), in 16 bytes: it is kept per agent
// for every call and direction. Within an agent's few keys, 32 bits of the key tell them
// apart (two keys in a million agents of 64 keys each might share their stats).
type stats struct {
	key uint32 // fold(Key)
	dir Direction
	n   uint16  // observations, saturating
	loc float32 // robust location
	dev float32 // mean absolute deviation about loc (clipped)
}

// fold is a Key's 32 bits kept in stats.
func fold(k Key) uint32 { return uint32(k ^ k>>32) }

// Sizes is one agent's message-size baseline. It is not safe for concurrent use.
type Sizes struct {
	p    *Params
	all  [2]stats // over all calls, per direction
	keys []stats
}

// New returns an empty baseline.
func (p *Params) New() *Sizes { return &Sizes{p: p} }

// Result is the verdict on one size.
type Result struct {
	// Observed is the size in bytes; Typical the key's robust centre and Low–High its 5–95 %
	// band, in bytes.
	Observed, Typical, Low, High float64
	// P is the upper-tail probability (1 for sizes within three spreads of the centre, which
	// are not scored); Score is 0–100, ten points per decade.
	P, Score float64
	// Overall reports that the agent's key over all calls scored (the call's own had learnt
	// too little). Learning reports that neither had: Score is 0.
	Overall, Learning bool
}

func (s *Sizes) find(k Key, dir Direction) int {
	f := fold(k)
	for i := range s.keys {
		if s.keys[i].key == f && s.keys[i].dir == dir {
			return i
		}
	}
	return -1
}

// Observe scores bytes for call k in direction dir, then learns it.
func (s *Sizes) Observe(k Key, dir Direction, bytes int) Result {
	return s.observe(k, dir, bytes, true)
}

// Check is Observe for callers that explain only what scores: the band (Typical, Low, High)
// is filled only for a size that is scored (Score above 0 is possible), which spares the
// hot path its exponentials for every typical size.
func (s *Sizes) Check(k Key, dir Direction, bytes int) Result {
	return s.observe(k, dir, bytes, false)
}

func (s *Sizes) observe(k Key, dir Direction, bytes int, band bool) Result {
	y := fastmath.Log2(float64(max(bytes, 1)))
	i := s.find(k, dir)
	if i < 0 {
		i = s.add(k, dir)
	}
	st := &s.keys[i]
	res := Result{Observed: float64(bytes), P: 1}
	switch min := uint16(min(s.p.cfg.MinCount, math.MaxUint16)); {
	case st.n >= min:
		s.p.score(&res, st, y, band)
	case s.all[dir].n >= min:
		s.p.score(&res, &s.all[dir], y, band)
		res.Overall = true
	default:
		res.Learning = true
	}
	s.p.learn(st, y)
	s.all[dir].dir = dir
	s.p.learn(&s.all[dir], y)
	return res
}

// Stats is one key's distribution kept by its caller, for a model that knows its keys up
// front (the session-shape features): 16 bytes, where a Sizes holding a few keys takes over
// a hundred. Params' ObserveStats and PeekStats score and learn it; it has no overall
// distribution to fall back on while it learns.
type Stats struct{ st stats }

// ObserveStats scores value against st, then learns it.
func (p *Params) ObserveStats(st *Stats, value int) Result {
	res := p.PeekStats(st, value)
	p.learn(&st.st, fastmath.Log2(float64(max(value, 1))))
	return res
}

// PeekStats scores value against st like ObserveStats, without learning it.
func (p *Params) PeekStats(st *Stats, value int) Result {
	res := Result{Observed: float64(value), P: 1}
	if int(st.st.n) >= p.cfg.MinCount {
		p.score(&res, &st.st, fastmath.Log2(float64(max(value, 1))), true)
	} else {
		res.Learning = true
	}
	return res
}

// MarshalStats encodes sts, one per key of keys, in the format of Sizes.MarshalBinary (so
// either restores the other's).
func MarshalStats(keys []Key, sts []Stats) []byte {
	s := Sizes{keys: make([]stats, len(keys))}
	for i, k := range keys {
		s.keys[i] = sts[i].st
		s.keys[i].key = fold(k)
	}
	b, _ := s.MarshalBinary()
	return b
}

// UnmarshalStats restores into sts, one per key of keys, what MarshalStats (or
// Sizes.MarshalBinary) wrote; keys the snapshot lacks are left as they were, and on error
// all are.
func (p *Params) UnmarshalStats(b []byte, keys []Key, sts []Stats) error {
	s := Sizes{p: p}
	if err := s.UnmarshalBinary(b); err != nil {
		return err
	}
	for i, k := range keys {
		if j := s.find(k, Request); j >= 0 {
			sts[i].st = s.keys[j]
		}
	}
	return nil
}

// Peek scores value for key k in direction dir like Observe, without learning it: for a
// count that is still growing (servers an agent reached so far this hour).
func (s *Sizes) Peek(k Key, dir Direction, value int) Result {
	res := Result{Observed: float64(value), P: 1}
	y := fastmath.Log2(float64(max(value, 1)))
	min := uint16(min(s.p.cfg.MinCount, math.MaxUint16))
	if i := s.find(k, dir); i >= 0 && s.keys[i].n >= min {
		s.p.score(&res, &s.keys[i], y, true)
	} else {
		res.Learning = true
	}
	return res
}

// spread is the key's scale in log2 units: 1.25 mean absolute deviations (a normal's σ),
// at least a quarter (a factor of 1.2), so a key of constant size does not flag every byte.
func spread(st *stats) float64 { return max(1.25*float64(st.dev), 0.25) }

// typicalZ is the z-score below which a size counts as typical and is not scored (the t's
// upper tail there is above 0.7 %, a score of at most 21).
const typicalZ = 3

// score fills res for y against st; band false leaves a typical size's band out.
func (p *Params) score(res *Result, st *stats, y float64, band bool) {
	sd := spread(st)
	z := (y - float64(st.loc)) / sd
	if band || z >= typicalZ {
		res.Typical = math.Exp2(float64(st.loc))
		f := math.Exp2(1.645 * sd) // the band is symmetric in log space
		res.Low, res.High = res.Typical/f, res.Typical*f
	}
	if z < typicalZ {
		return // typical: P stays 1, and the costly tail is skipped on the hot path
	}
	res.P = p.tail.Survival(z)
	if res.P < 1e-300 {
		res.P = 1e-300
	}
	res.Score = max(0, min(100, -10*fastmath.Log10(res.P)))
}

// learn moves the key toward y, clipped to three spreads (Huber) once it has history.
func (p *Params) learn(st *stats, y float64) {
	if st.n == 0 {
		st.loc, st.dev, st.n = float32(y), 0, 1
		return
	}
	if st.n < math.MaxUint16 {
		st.n++
	}
	r := max(1/float64(st.n), p.rate)
	e := y - float64(st.loc)
	if st.n > 3 {
		c := 3 * spread(st)
		e = max(-c, min(c, e))
	}
	st.loc += float32(r * e)
	st.dev += float32(r * (math.Abs(e) - float64(st.dev)))
}

// add makes room for a key, evicting the least used when full.
func (s *Sizes) add(k Key, dir Direction) int {
	if len(s.keys) < s.p.cfg.MaxKeys {
		if n := len(s.keys); n == cap(s.keys) {
			// Most agents make a few calls, each a request and a response: grow two keys at
			// a time, where append's doubling would leave a quarter of the slice empty.
			c := n + 2
			if n >= 8 {
				c = 2 * n
			}
			keys := make([]stats, n, min(c, s.p.cfg.MaxKeys))
			copy(keys, s.keys)
			s.keys = keys
		}
		s.keys = append(s.keys, stats{key: fold(k), dir: dir})
		return len(s.keys) - 1
	}
	low := 0
	for i := range s.keys {
		if s.keys[i].n < s.keys[low].n {
			low = i
		}
	}
	s.keys[low] = stats{key: fold(k), dir: dir}
	return low
}

const snapshotVersion = 1

// entrySize is one encoded stats: key (a Key, or since the keys are folded, its fold),
// direction, n, location, deviation.
const entrySize = 8 + 1 + 4 + 4 + 4

// MarshalBinary encodes the baseline: version, the two overall keys, then the call keys.
func (s *Sizes) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+(2+len(s.keys))*entrySize)
	b = append(b, snapshotVersion)
	put := func(st *stats) {
		b = binary.LittleEndian.AppendUint64(b, uint64(st.key))
		b = append(b, byte(st.dir))
		b = binary.LittleEndian.AppendUint32(b, uint32(st.n))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(st.loc))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(st.dev))
	}
	for i := range s.all {
		put(&s.all[i])
	}
	for i := range s.keys {
		put(&s.keys[i])
	}
	return b, nil
}

// UnmarshalBinary restores what MarshalBinary wrote into a baseline from Params.New; keys
// beyond MaxKeys are dropped. On error the baseline is left as it was.
func (s *Sizes) UnmarshalBinary(b []byte) error {
	if len(b) < 1+2*entrySize || (len(b)-1)%entrySize != 0 {
		return fmt.Errorf("cannot restore size baseline: %d bytes", len(b))
	}
	if b[0] != snapshotVersion {
		return fmt.Errorf("cannot restore size baseline: unknown version %d", b[0])
	}
	var out []stats
	for o := 1; o < len(b); o += entrySize {
		st := stats{
			key: fold(Key(binary.LittleEndian.Uint64(b[o:]))),
			dir: Direction(b[o+8]),
			n:   uint16(min(binary.LittleEndian.Uint32(b[o+9:]), math.MaxUint16)),
			loc: math.Float32frombits(binary.LittleEndian.Uint32(b[o+13:])),
			dev: math.Float32frombits(binary.LittleEndian.Uint32(b[o+17:])),
		}
		if st.dir > Response || math.IsNaN(float64(st.loc)) || math.IsInf(float64(st.loc), 0) || !(st.dev >= 0) || math.IsInf(float64(st.dev), 0) {
			return errors.New("cannot restore size baseline: it holds an invalid entry")
		}
		out = append(out, st)
	}
	s.all = [2]stats{out[0], out[1]}
	s.keys = append(s.keys[:0], out[2:min(len(out), 2+s.p.cfg.MaxKeys)]...)
	return nil
}
