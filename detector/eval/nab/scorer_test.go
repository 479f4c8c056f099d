package nab

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScaledSigmoid(t *testing.T) {
	for _, tc := range []struct{ y, want float64 }{
		{-1, 0.98661429815},   // the left edge of a window: the earliest true positive
		{-0.5, 0.84828363995}, // halfway into the window
		{0, 0},                // the right edge
		{1, -0.98661429815},   // one window width past the right edge
		{3, -0.99999938819},   // still the sigmoid at 3
		{3.01, -1},            // beyond: a flat −1
	} {
		require.InDelta(t, tc.want, scaledSigmoid(tc.y), 1e-10, "A(%g)", tc.y)
	}
}

func TestProbationLength(t *testing.T) {
	for _, tc := range []struct{ rows, want int }{
		{20, 3}, {100, 15}, {4032, 604}, {5000, 750}, {22695, 750},
	} {
		require.Equal(t, tc.want, probationLength(tc.rows), "rows %d", tc.rows)
	}
}

// minutes returns n timestamps a minute apart.
func minutes(n int) []time.Time {
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * time.Minute)
	}
	return ts
}

// handFile is a 20-row file (probation: the first 3 rows) with one window on rows 10–13 (W=4)
// and detections at row 1 (in probation), 5 (before the window), 11 and 12 (inside) and 16
// (after it).
func handFile() File {
	ts := minutes(20)
	scores := make([]float64, 20)
	scores[1], scores[5], scores[11], scores[12], scores[16] = 0.95, 0.8, 0.6, 0.9, 0.7
	return File{Name: "hand.csv", Times: ts, Scores: scores, Windows: []Window{{Start: ts[10], End: ts[13]}}}
}

func TestScoresByThresholdHandComputed(t *testing.T) {
	cost := CostMatrix{TP: 1, FP: 0.11, FN: 1, TN: 1}
	a := func(y float64) float64 { return 2/(1+math.Exp(5*y)) - 1 }
	maxTP := a(-1)
	row12 := a(-0.5) / maxTP            // position −(13−12+1)/4
	row11 := a(-0.75) / maxTP           // position −(13−11+1)/4: earlier, so better
	row5 := -0.11                       // before any window: the full FP cost
	row16 := a(float64(16-13)/3) * 0.11 // (16−13)/(W−1) past the window
	want := []struct{ threshold, score float64 }{
		{1.1, -1},                          // nothing detected: the window is missed
		{0.9, row12},                       // row 1 (0.95) is in probation and never counts
		{0.8, row12 + row5},                //
		{0.7, row12 + row5 + row16},        //
		{0.6, row11 + row5 + row16},        // only the window's best row counts
		{0, 1 + 7*row5 + row16 + farFPs()}, // row 10 opens the window; all else are false positives
	}
	got := scoresByThreshold(sweep(handFile(), cost, 0), cost)
	require.Len(t, got, len(want))
	for i, w := range want {
		require.Equal(t, w.threshold, got[i].Threshold, "entry %d", i)
		require.InDelta(t, w.score, got[i].Score, 1e-12, "threshold %g", w.threshold)
	}
	// At 0.6: rows 11, 12 are true positives; 5 and 16 false positives; 13 rows negative.
	require.Equal(t, ThresholdScore{Threshold: 0.6, Score: got[4].Score, TP: 2, FP: 2, TN: 11, FN: 2}, got[4])

	// The corpus optimum is 0.9 (one early-enough detection, no false positives).
	res := Score([]File{handFile()}, Profile{Name: "standard", Cost: cost})
	require.Equal(t, 0.9, res.Threshold)
	require.InDelta(t, row12, res.Raw, 1e-12)
}

// farFPs is the FP cost of rows 14, 15, 17, 18, 19 (after the window, row 16 excepted).
func farFPs() float64 {
	a := func(y float64) float64 { return 2/(1+math.Exp(5*y)) - 1 }
	s := 0.0
	for _, i := range []int{14, 15, 17, 18, 19} {
		s += a(float64(i-13)/3) * 0.11
	}
	return s
}

func TestScorePerfectNullAndInverted(t *testing.T) {
	files := syntheticCorpus()
	for _, p := range DefaultProfiles() {
		t.Run(p.Name, func(t *testing.T) {
			perfect := withScores(files, func(f File, i int) float64 {
				for _, w := range f.Windows {
					if f.Times[i].Equal(w.Start) {
						return 1
					}
				}
				return 0
			})
			r := Score(perfect, p)
			require.InDelta(t, 100, r.Score, 1e-9, "a detection at the start of every window, nothing else")
			require.InDelta(t, r.Perfect, r.Raw, 1e-9)

			null := withScores(files, func(File, int) float64 { return 0.5 })
			r = Score(null, p)
			require.InDelta(t, 0, r.Score, 1e-9, "the null detector is the zero of the scale")

			inverted := withScores(files, func(f File, i int) float64 {
				if inWindow(f.Times[i], f.Windows) {
					return 0
				}
				return 1
			})
			r = Score(inverted, p)
			require.InDelta(t, 0, r.Score, 1e-9, "flagging everything but the windows is no better than nothing: the sweep keeps the threshold above it")
			require.Equal(t, 1.1, r.Threshold)
		})
	}
}

// syntheticCorpus is three files of 1000 rows: one without windows, one with a window in the
// middle, one with two.
func syntheticCorpus() []File {
	ts := minutes(1000)
	return []File{
		{Name: "a/none.csv", Times: ts},
		{Name: "a/one.csv", Times: ts, Windows: []Window{{Start: ts[500], End: ts[549]}}},
		{Name: "b/two.csv", Times: ts, Windows: []Window{{Start: ts[300], End: ts[339]}, {Start: ts[800], End: ts[859]}}},
	}
}

func withScores(files []File, score func(File, int) float64) []File {
	out := make([]File, len(files))
	for i, f := range files {
		f.Scores = make([]float64, len(f.Times))
		for j := range f.Times {
			f.Scores[j] = score(f, j)
		}
		out[i] = f
	}
	return out
}

func TestScoreEarlierDetectionScoresHigher(t *testing.T) {
	files := syntheticCorpus()[1:2]
	var last float64 = math.Inf(1)
	for _, at := range []int{500, 510, 525, 540, 549} {
		r := Score(withScores(files, func(f File, i int) float64 {
			if i == at {
				return 1
			}
			return 0
		}), DefaultProfiles()[0])
		require.Less(t, r.Raw, last, "a detection at row %d", at)
		require.Greater(t, r.Raw, 0.0, "any detection inside the window beats a miss")
		last = r.Raw
	}
}

// TestRandomDetectorOnNAB checks the port against NAB's published baseline: uniformly random
// scores score 11.0 on the standard profile over the full corpus (1.2 reward_low_FP, 19.5
// reward_low_FN). The shared data is a subset of NAB and one seed varies a lot, so the mean
// of several seeds is held to a loose band around those figures.
func TestRandomDetectorOnNAB(t *testing.T) {
	dir := nabDataDir(t)
	corpus, err := LoadCorpus(dir)
	require.NoError(t, err)
	windows, err := LoadWindows(filepath.Join(dir, "labels", "combined_windows.json"))
	require.NoError(t, err)
	const seeds = 8
	mean := map[string]float64{}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 42))
		files := make([]File, len(corpus))
		for i, s := range corpus {
			scores := make([]float64, len(s.Values))
			for j := range scores {
				scores[j] = rng.Float64()
			}
			files[i] = File{Name: s.Name, Times: s.Times, Scores: scores, Windows: windows[s.Name]}
		}
		for _, p := range DefaultProfiles() {
			mean[p.Name] += Score(files, p).Score / seeds
		}
	}
	t.Logf("random detector, mean of %d seeds: %v", seeds, mean)
	require.InDelta(t, 11, mean[ProfileStandard], 6)
	require.InDelta(t, 19.5, mean[ProfileRewardLowFN], 9)
	require.InDelta(t, 1.2, mean[ProfileRewardLowFP], 5)
	require.Greater(t, mean[ProfileRewardLowFN], mean[ProfileStandard])
	require.Greater(t, mean[ProfileStandard], mean[ProfileRewardLowFP])
}

// nabDataDir is the shared NAB data: $MCPWATCH_NAB_DIR, else ../shared/data/nab beside the
// repository. Without it the test is skipped, unless CI is set: then it fails.
func nabDataDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MCPWATCH_NAB_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "data", "nab")
	}
	if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("NAB data not found at %s (set MCPWATCH_NAB_DIR): %v", dir, err)
		}
		t.Skipf("NAB data not found at %s (set MCPWATCH_NAB_DIR)", dir)
	}
	return dir
}
