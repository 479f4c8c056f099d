package size

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func params(t *testing.T, cfg Config) *Params {
	t.Helper()
	p, err := NewParams(cfg)
	require.NoError(t, err)
	return p
}

// feed observes n sizes around typical bytes (log-normal, a factor of about 1.5).
func feed(s *Sizes, k Key, dir Direction, typical float64, n int, r *rand.Rand) (maxScore float64) {
	for range n {
		x := typical * math.Exp2(r.NormFloat64()*0.6)
		maxScore = max(maxScore, s.Observe(k, dir, int(x)).Score)
	}
	return maxScore
}

func TestSizes(t *testing.T) {
	p := params(t, Config{})
	r := rand.New(rand.NewPCG(1, 2))
	s := p.New()
	read, list := KeyOf("tools/call", "read_file"), KeyOf("tools/call", "list_dir")
	require.NotEqual(t, read, list)
	require.Equal(t, read, KeyOf("tools/call", "read_file"), "stable")

	first := s.Observe(read, Response, 4000)
	require.True(t, first.Learning)
	require.Zero(t, first.Score)
	require.Less(t, feed(s, read, Response, 4000, 2000, r), 45.0, "normal sizes stay below medium")
	feed(s, list, Response, 300, 2000, r)

	// Exfiltration-sized: 50 MB where 4 KB is usual.
	big := s.Observe(read, Response, 50<<20)
	require.False(t, big.Learning)
	require.False(t, big.Overall)
	require.GreaterOrEqual(t, big.Score, 70.0)
	require.InDelta(t, 4000, big.Typical, 1000)
	require.Less(t, big.Low, big.Typical)
	require.Greater(t, big.High, big.Typical)
	// One outlier barely moves the baseline.
	after := s.Observe(read, Response, 4000)
	require.InDelta(t, 4000, after.Typical, 1000)

	// A tool too new to have its own baseline is judged by the agent's overall one.
	fresh := s.Observe(KeyOf("tools/call", "dump_db"), Response, 50<<20)
	require.True(t, fresh.Overall)
	require.GreaterOrEqual(t, fresh.Score, 60.0)

	// 4 KB from list_dir (usually 300 B) stands out for that tool.
	require.Greater(t, s.Observe(list, Response, 4000).Score, 20.0)

	// Snapshots restore the same scores.
	b, err := s.MarshalBinary()
	require.NoError(t, err)
	s2 := p.New()
	require.NoError(t, s2.UnmarshalBinary(b))
	require.Equal(t, s.Observe(read, Response, 1<<20), s2.Observe(read, Response, 1<<20))
	require.Error(t, s2.UnmarshalBinary(b[:len(b)-1]))
	bad := append([]byte(nil), b...)
	bad[0] = 9
	require.Error(t, s2.UnmarshalBinary(bad))
}

func TestSizesBounded(t *testing.T) {
	p := params(t, Config{MaxKeys: 4})
	s := p.New()
	for i := range 100 {
		s.Observe(Key(i), Request, 100)
	}
	require.Len(t, s.keys, 4)
	require.Zero(t, testing.AllocsPerRun(100, func() { s.Observe(Key(3), Request, 100) }))
}

func TestConfigValidate(t *testing.T) {
	require.ErrorContains(t, Config{MaxKeys: 0, MinCount: 1, HalfLife: 0.5}.Validate(), "max_keys")
	_, err := NewParams(Config{MinCount: 1})
	require.ErrorContains(t, err, "min_count: must be at least 2, got 1")
	var c Config
	c.SetDefaults()
	require.NoError(t, c.Validate())
}

// TestCheckIsObserveWithoutTheTypicalBand: Check learns and scores exactly as Observe, and
// leaves the band out only for sizes that are not scored.
func TestCheckIsObserveWithoutTheTypicalBand(t *testing.T) {
	p := params(t, Config{})
	read := KeyOf("tools/call", "read_file")
	observed, checked := p.New(), p.New()
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		bytes  int
		banded bool // Check fills the band
	}{
		{name: "learning", bytes: 4000},
		{name: "typical", bytes: 4100},
		{name: "exfiltration-sized", bytes: 50 << 20, banded: true},
		{name: "typical again", bytes: 3900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "learning" {
				for range 100 {
					x := int(4000 * math.Exp2(r.NormFloat64()*0.6))
					want, got := observed.Observe(read, Response, x), checked.Check(read, Response, x)
					if got.Typical == 0 {
						want.Typical, want.Low, want.High = 0, 0, 0
					}
					require.Equal(t, want, got)
				}
			}
			want, got := observed.Observe(read, Response, tc.bytes), checked.Check(read, Response, tc.bytes)
			if !tc.banded {
				want.Typical, want.Low, want.High = 0, 0, 0
			}
			require.Equal(t, want, got)
			require.Equal(t, tc.banded, got.Typical > 0)
		})
	}
	a, _ := observed.MarshalBinary()
	b, _ := checked.MarshalBinary()
	require.Equal(t, a, b, "both learnt the same")
}
