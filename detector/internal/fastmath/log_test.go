package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLog checks Log, Log2 and Log10 against the math package across the range and at the
// edges.
func TestLog(t *testing.T) {
	src := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		x := math.Ldexp(1+src.Float64(), src.IntN(2000)-1000)
		for _, f := range []struct{ got, want func(float64) float64 }{{Log, math.Log}, {Log2, math.Log2}, {Log10, math.Log10}} {
			want := f.want(x)
			require.InDelta(t, want, f.got(x), 1e-14*max(1, math.Abs(want)), "x=%v", x)
		}
	}
	for _, x := range []float64{1, 2, 0.5, 1 - 1e-16, math.SmallestNonzeroFloat64, math.MaxFloat64, 0, -1, math.Inf(1), math.NaN()} {
		want, got := math.Log(x), Log(x)
		require.True(t, want == got || (math.IsNaN(want) && math.IsNaN(got)) || math.Abs(want-got) <= 1e-14*max(1, math.Abs(want)),
			"x=%v: %v, want %v", x, got, want)
	}
}

// BenchmarkLog compares Log with math.Log over mantissas and exponents.
func BenchmarkLog(b *testing.B) {
	src := rand.New(rand.NewPCG(1, 2))
	benchmarkAgainstMath(b, func() float64 { return math.Ldexp(1+src.Float64(), src.IntN(40)-20) }, Log, math.Log)
}

// benchmarkAgainstMath runs fast and the math package's std over 1,024 arguments from arg,
// side by side.
func benchmarkAgainstMath(b *testing.B, arg func() float64, fast, std func(float64) float64) {
	xs := make([]float64, 1024)
	for i := range xs {
		xs[i] = arg()
	}
	for _, f := range []struct {
		name string
		fn   func(float64) float64
	}{{"fastmath", fast}, {"math", std}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			var sum float64
			for i := 0; b.Loop(); i++ {
				sum += f.fn(xs[i&1023])
			}
			if math.IsNaN(sum) {
				b.Fatal("NaN")
			}
		})
	}
}
