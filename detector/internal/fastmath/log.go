package fastmath

import "math"

// Log is math.Log(x) to within about 1e-14 (absolute, or relative for |log x| > 1): the
// exponent's multiple of ln 2, a table's log of the mantissa's first 8 bits, and a short
// series for the rest. Non-positive, subnormal, infinite and NaN inputs take math.Log.
func Log(x float64) float64 {
	bits := math.Float64bits(x)
	exp := int(bits>>52) & 0x7ff
	if !(x > 0) || exp == 0 || exp == 0x7ff {
		return math.Log(x)
	}
	i := bits >> 44 & 0xff
	r := math.Float64frombits(bits&(1<<52-1)|1023<<52)*inv[i] - 1 // |r| < 1/512
	return float64(exp-1023)*math.Ln2 + mid[i] + r*(1-r*(0.5-r*(1.0/3-r*(0.25-r*0.2))))
}

// Log2 is math.Log2(x) to within about 1e-14.
func Log2(x float64) float64 { return Log(x) * (1 / math.Ln2) }

// Log10 is math.Log10(x) to within about 1e-14.
func Log10(x float64) float64 { return Log(x) * (1 / math.Ln10) }

// mid[i] is ln c and inv[i] is 1/c for c = 1 + (i+0.5)/256, the middle of the mantissas
// whose first 8 bits are i.
var mid, inv = func() (l, v [256]float64) {
	for i := range l {
		c := 1 + (float64(i)+0.5)/256
		l[i], v[i] = math.Log(c), 1/c
	}
	return
}()
