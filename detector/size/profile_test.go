package size

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuantiles(t *testing.T) {
	p := params(t, Config{})
	r := rand.New(rand.NewPCG(3, 4))
	s := p.New()
	_, n, ok := s.Quantile(Response, 0.5)
	require.False(t, ok, "nothing learnt")
	require.Zero(t, n)

	read := KeyOf("tools/call", "read_file")
	var sizes []float64
	for range 3000 {
		x := int(4000 * math.Exp2(r.NormFloat64()*0.6))
		sizes = append(sizes, float64(max(x, 1)))
		s.Observe(read, Response, x)
	}
	s.Observe(read, Request, 120)
	slices.Sort(sizes)
	empirical := func(q float64) float64 { return sizes[int(q*float64(len(sizes)))] }

	for _, q := range []float64{0.5, 0.9, 0.99} {
		got, n, ok := s.Quantile(Response, q)
		require.True(t, ok)
		require.Equal(t, 3000, n)
		// The model remembers the last few hundred sizes, robustly: within 25 % of the sample's.
		require.InEpsilon(t, empirical(q), got, 0.25, "p%g", 100*q)
		own, _, ok := s.CallQuantile(read, Response, q)
		require.True(t, ok)
		require.InEpsilon(t, got, own, 1e-9, "one call: its key and the overall one agree")
	}
	p50, _, _ := s.Quantile(Response, 0.5)
	p99, _, _ := s.Quantile(Response, 0.99)
	require.Greater(t, p99, 2*p50)

	// The quantiles are the distribution the model's own band comes from.
	res := s.Observe(read, Response, 4000)
	lo, _, _ := s.CallQuantile(read, Response, 0.05)
	hi, _, _ := s.CallQuantile(read, Response, 0.95)
	mid, _, _ := s.CallQuantile(read, Response, 0.5)
	// Observe learnt one more size after scoring: compare with a tolerance.
	require.InEpsilon(t, res.Low, lo, 0.01)
	require.InEpsilon(t, res.High, hi, 0.01)
	require.InEpsilon(t, res.Typical, mid, 0.01)

	req, n, ok := s.Quantile(Request, 0.9)
	require.True(t, ok)
	require.Equal(t, 1, n)
	require.InEpsilon(t, 120*math.Exp2(1.2816*0.25), req, 1e-3, "one size: the minimum spread")

	for _, q := range []float64{0, 1, -1, math.NaN()} {
		_, _, ok := s.Quantile(Response, q)
		require.False(t, ok, "q=%g", q)
	}
	_, _, ok = s.CallQuantile(KeyOf("tools/call", "other"), Response, 0.5)
	require.False(t, ok)
	_, _, ok = s.Quantile(Direction(7), 0.5)
	require.False(t, ok)
}
