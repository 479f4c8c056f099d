package rate

import (
	"math"
	"slices"
)

// Prior is where a cold agent's baseline starts: typically a summary of its peer group's or
// the whole population's models. Its weight is how many buckets of evidence it counts for;
// the agent's own buckets outweigh it as they accumulate.
type Prior struct {
	weight            float32
	level, v0, rv, tw float32
	slots             slots
}

// FlatPrior is a prior without seasonality: about typical calls per bucket (or a typical
// value, with Config.Values), worth weight buckets of evidence.
func (p *Params) FlatPrior(typical, weight float64) *Prior {
	pr := &Prior{weight: float32(max(weight, 1)), slots: p.codec.make(p.nslots)}
	if p.cfg.Values {
		pr.level = float32(typical)
		pr.v0 = float32(max(typical*typical, 1) / 100)
		pr.rv = pr.v0
	} else {
		pr.level = float32(math.Log1p(max(typical, 0)))
		pr.v0 = 0.25 // about a factor of 1.6 either way
		pr.rv = pr.v0
	}
	return pr
}

// PriorFrom summarises models built from p (a peer group, or all agents) into a prior worth
// weight buckets: the median of their levels, spreads and seasonal slots. Models still
// learning are left out; it returns nil when none is left.
func (p *Params) PriorFrom(models []*Model, weight float64) *Prior {
	var use []*Model
	for _, m := range models {
		if m != nil && m.p.layers == p.layers && m.n >= minLearn {
			use = append(use, m)
		}
	}
	if len(use) == 0 {
		return nil
	}
	weight = max(weight, 1)
	pr := &Prior{weight: float32(weight), slots: p.codec.make(p.nslots)}
	buf := make([]float32, 0, len(use))
	median := func(get func(*Model) (float32, bool)) (float32, bool) {
		buf = buf[:0]
		for _, m := range use {
			if x, ok := get(m); ok {
				buf = append(buf, x)
			}
		}
		if len(buf) == 0 {
			return 0, false
		}
		slices.Sort(buf)
		if len(buf)%2 == 1 {
			return buf[len(buf)/2], true
		}
		return (buf[len(buf)/2-1] + buf[len(buf)/2]) / 2, true
	}
	pr.level, _ = median(func(m *Model) (float32, bool) { return m.level, true })
	pr.v0, _ = median(func(m *Model) (float32, bool) { return m.v0, true })
	pr.rv, _ = median(func(m *Model) (float32, bool) { return m.rv, true })
	pr.tw, _ = median(func(m *Model) (float32, bool) { return m.tw, true })
	for _, l := range p.layers {
		// The prior's slots count for as many updates as its weight brings them.
		n := uint8(min(math.MaxUint8, max(1, math.Round(weight*l.share))))
		for i := l.first; i < l.first+l.slots; i++ {
			seen := func(m *Model) bool { return m.slot(i).n > 0 }
			off, ok := median(func(m *Model) (float32, bool) { return m.slot(i).mean, seen(m) })
			if !ok {
				continue
			}
			v, _ := median(func(m *Model) (float32, bool) { return float32(m.slot(i).variance()), seen(m) })
			sl := slot{mean: off, n: n}
			sl.setVariance(float64(v))
			p.codec.set(pr.slots, i, sl)
		}
	}
	return pr
}
