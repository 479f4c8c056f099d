package size

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Quantile returns the q-quantile (0 < q < 1) of the agent's message sizes in direction dir
// over all its calls, in bytes, as the model sees them: a log-normal with the key's robust
// centre and spread (the same distribution whose 5–95 % band explanations quote). n is how
// many sizes the key has learnt; ok is false when it has learnt none.
func (s *Sizes) Quantile(dir Direction, q float64) (bytes float64, n int, ok bool) {
	if int(dir) >= len(s.all) {
		return 0, 0, false
	}
	return quantile(&s.all[dir], q)
}

// CallQuantile is Quantile for one call's key (KeyOf(method, target)).
func (s *Sizes) CallQuantile(k Key, dir Direction, q float64) (bytes float64, n int, ok bool) {
	i := s.find(k, dir)
	if i < 0 {
		return 0, 0, false
	}
	return quantile(&s.keys[i], q)
}

func quantile(st *stats, q float64) (float64, int, bool) {
	if st.n == 0 || !(q > 0 && q < 1) {
		return 0, int(st.n), false
	}
	z := distuv.UnitNormal.Quantile(q)
	return math.Exp2(float64(st.loc) + z*spread(st)), int(st.n), true
}
