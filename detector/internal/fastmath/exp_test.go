package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExp checks Exp against math.Exp across its range and at the edges.
func TestExp(t *testing.T) {
	src := rand.New(rand.NewPCG(7, 8))
	for range 1_000_000 {
		x := (src.Float64()*2 - 1) * 708
		if src.IntN(2) == 0 {
			x /= 1000 // most arguments are small
		}
		want := math.Exp(x)
		require.InEpsilon(t, want, Exp(x), 1e-15, "x=%v", x)
	}
	for _, x := range []float64{0, 1, -1, 1e-300, 707.9, -707.9, 709, -745, 1000, -1000, math.Inf(1), math.Inf(-1)} {
		require.Equal(t, math.Exp(x) == 0, Exp(x) == 0, "x=%v", x)
		if want := math.Exp(x); want != 0 && !math.IsInf(want, 0) {
			require.InEpsilon(t, want, Exp(x), 1e-15, "x=%v", x)
		} else {
			require.Equal(t, want, Exp(x), "x=%v", x)
		}
	}
	require.True(t, math.IsNaN(Exp(math.NaN())))
}

// BenchmarkExp compares Exp with math.Exp.
func BenchmarkExp(b *testing.B) {
	src := rand.New(rand.NewPCG(1, 2))
	benchmarkAgainstMath(b, func() float64 { return src.Float64()*20 - 10 }, Exp, math.Exp)
}

// TestPow2x256 checks Pow2x256 bit for bit against math.Exp2.
func TestPow2x256(t *testing.T) {
	for n := -(1 << 15); n < 1<<15; n++ {
		require.Equal(t, math.Exp2(float64(n)/256), Pow2x256(n), "n=%d", n)
	}
}
