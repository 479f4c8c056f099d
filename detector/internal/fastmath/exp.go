package fastmath

import "math"

// Exp is math.Exp(x) to within about 1e-15 relative: x = (k + j/256)·ln 2 + r with |r| below
// ln 2/512, so e^x = 2^k · 2^(j/256) (a table) · e^r (a short series). Beyond ±708 and for NaN
// it takes math.Exp.
func Exp(x float64) float64 {
	if !(x > -708 && x < 708) {
		return math.Exp(x)
	}
	n := math.Round(x * (256 / math.Ln2)) // x ≈ n/256 · ln 2
	r := x - n*ln2Over256Hi - n*ln2Over256Lo
	i := int(n)
	k, j := i>>8, i&0xff
	er := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120)))))
	// 2^k as a float64 needs k in the normal range, which |x| < 708 keeps.
	return pow2Frac[j] * er * math.Float64frombits(uint64(1023+k)<<52)
}

// Pow2x256 is 2^(n/256) for |n| < 2^18 (a normal float64): a table entry times an exact
// power of two, bit for bit math.Exp2's result.
func Pow2x256(n int) float64 {
	return pow2Frac[uint8(n)] * math.Float64frombits(uint64(1023+n>>8)<<52)
}

// ln 2/256 split in two, so that n·ln2Over256Hi (32 significant bits) is exact for the n Exp meets (|n| < 2¹⁸).
const (
	ln2Over256Hi = 0x1.62e42fee00000p-9
	ln2Over256Lo = 0x1.a39ef35793c76p-41
)

// pow2Frac[j] is 2^(j/256).
var pow2Frac = func() (t [256]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 256)
	}
	return t
}()
