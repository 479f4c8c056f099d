package nab

import (
	"math"
	"slices"
	"time"
)

// This file ports NAB's scoring (nab/sweeper.py, nab/optimizer.py and the normalisation in
// nab/runner.py) faithfully, quirks included: a row is a detection when its anomaly score is
// at least the threshold; rows in the probationary period are ignored; inside a window only
// the best (earliest) detection counts, weighted by the scaled sigmoid of its position; a
// window without detections costs fnWeight; a detection outside windows costs fpWeight,
// scaled by its distance from the end of the previous window (full cost before any window).

// ProbationPercent is NAB's share of each file's first rows that is not scored.
const ProbationPercent = 0.15

// probationLength is NAB's min(floor(15% of rows), 15% of 5000).
func probationLength(rows int) int {
	return int(math.Min(math.Floor(ProbationPercent*float64(rows)), ProbationPercent*5000))
}

// scaledSigmoid is NAB's A(y) = 2/(1+e^{5y}) − 1, and −1 beyond y > 3.
func scaledSigmoid(y float64) float64 {
	if y > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// File is one data file's detector output, ready to be scored.
type File struct {
	Name    string
	Times   []time.Time
	Scores  []float64 // anomaly scores in [0, 1]
	Windows []Window
}

// Row kinds in a sweep.
const (
	rowOutside     = -1 // not in a window: a detection here is a false positive
	rowProbationer = -2 // in the probationary period: ignored
)

// sweepRow is NAB's AnomalyPoint: a row's anomaly score, the score it contributes when it is
// a detection, and its window (a corpus-wide index) or rowOutside / rowProbationer.
type sweepRow struct {
	anomaly float64
	sweep   float64
	window  int
}

// sweep is NAB's Sweeper.calcSweepScore for one file; window ids start at firstWindow.
func sweep(f File, cost CostMatrix, firstWindow int) []sweepRow {
	maxTP := scaledSigmoid(-1)
	probation := probationLength(len(f.Times))
	rows := make([]sweepRow, len(f.Times))
	windows := f.Windows
	cur, curRight, prevRight := -1, 0, -1
	var curWidth, prevWidth float64
	next := 0 // index into windows of the next window to enter
	for i, t := range f.Times {
		// Enter a window at its first row. NAB matches the start timestamp exactly; labels
		// are made from the data, so the first row at or after the start is the same row.
		if cur < 0 && next < len(windows) && !t.Before(windows[next].Start) {
			w := windows[next]
			if !t.After(w.End) {
				cur = next
				curRight = windowEnd(f.Times, i, w.End)
				curWidth = float64(curRight - i + 1)
			}
			next++
		}
		var score float64
		if cur >= 0 {
			pos := -float64(curRight-i+1) / curWidth
			score = scaledSigmoid(pos) * cost.TP / maxTP
		} else {
			unweighted := -1.0
			if prevRight >= 0 {
				// NAB divides by (width − 1): a one-row window would divide by zero there.
				pos := math.Abs(float64(prevRight-i)) / math.Max(prevWidth-1, 1)
				unweighted = scaledSigmoid(pos)
			}
			score = unweighted * cost.FP
		}
		kind := rowOutside
		if cur >= 0 {
			kind = firstWindow + cur
		}
		if i < probation {
			kind = rowProbationer
		}
		anomaly := 0.0
		if i < len(f.Scores) {
			anomaly = f.Scores[i]
		}
		rows[i] = sweepRow{anomaly: anomaly, sweep: score, window: kind}
		if cur >= 0 && i == curRight {
			prevRight, prevWidth = curRight, curWidth
			cur = -1
		}
	}
	return rows
}

// windowEnd is the index of a window's last row: NAB's timestamps.index(end), the first row
// stamped end; failing an exact match, the last row of the run from start not after end.
func windowEnd(ts []time.Time, start int, end time.Time) int {
	if i := slices.IndexFunc(ts, func(t time.Time) bool { return t.Equal(end) }); i >= 0 {
		return i
	}
	i := start
	for i+1 < len(ts) && !ts[i+1].After(end) {
		i++
	}
	return i
}

// ThresholdScore is the raw NAB score when every row scoring at least Threshold is a
// detection, with the counts of rows (probation excluded) in each class.
type ThresholdScore struct {
	Threshold      float64
	Score          float64
	TP, TN, FP, FN int
}

// scoresByThreshold is NAB's Sweeper.calcScoreByThreshold: it walks the rows from the highest
// anomaly score down and records the score each time the threshold changes. The first entry
// (threshold 1.1) detects nothing.
func scoresByThreshold(rows []sweepRow, cost CostMatrix) []ThresholdScore {
	scorable := make([]sweepRow, 0, len(rows))
	for _, r := range rows {
		if r.window != rowProbationer {
			scorable = append(scorable, r)
		}
	}
	// Python's sort is stable; so is this one, so counts match NAB's on ties.
	slices.SortStableFunc(scorable, func(a, b sweepRow) int {
		switch {
		case a.anomaly > b.anomaly:
			return -1
		case a.anomaly < b.anomaly:
			return 1
		}
		return 0
	})
	// Each window with a scorable row starts as a miss; total is NAB's sum(scoreParts).
	best := map[int]float64{}
	var tp, tn, fp, fn int
	for _, r := range scorable {
		if r.window >= 0 {
			fn++
			best[r.window] = -cost.FN
		} else {
			tn++
		}
	}
	total := -cost.FN * float64(len(best))
	threshold := 1.1
	var out []ThresholdScore
	for _, r := range scorable {
		if r.anomaly != threshold {
			out = append(out, ThresholdScore{Threshold: threshold, Score: total, TP: tp, TN: tn, FP: fp, FN: fn})
			threshold = r.anomaly
		}
		if r.window >= 0 {
			tp++
			fn--
			if r.sweep > best[r.window] {
				total += r.sweep - best[r.window]
				best[r.window] = r.sweep
			}
		} else {
			fp++
			tn--
			total += r.sweep
		}
	}
	return append(out, ThresholdScore{Threshold: threshold, Score: total, TP: tp, TN: tn, FP: fp, FN: fn})
}

// atThreshold is NAB's Sweeper.scoreDataSet lookup: the entry for exactly threshold, else the
// lowest threshold above it (the same detections).
func atThreshold(scores []ThresholdScore, threshold float64) ThresholdScore {
	prev := scores[0]
	for _, s := range scores {
		if s.Threshold == threshold {
			return s
		}
		if s.Threshold < threshold {
			return prev
		}
		prev = s
	}
	// Every row scores at least the threshold: all are detections (NAB would fail here).
	return prev
}

// FileScore is one file's raw score at the corpus threshold.
type FileScore struct {
	Name string `json:"file"`
	ThresholdScore
	Windows int `json:"windows"`
}

// Result is a detector's NAB score under one profile.
type Result struct {
	Profile string `json:"profile"`
	// Threshold is the anomaly score threshold that maximises Raw over the corpus.
	Threshold float64 `json:"threshold"`
	// Raw is the sum of the files' scores; Null and Perfect are the raw scores of the null
	// detector (a constant score: it detects nothing) and of a perfect one (every window
	// detected at its start, tpWeight each).
	Raw     float64 `json:"raw"`
	Null    float64 `json:"null"`
	Perfect float64 `json:"perfect"`
	// Score is NAB's normalised score, 100·(Raw−Null)/(Perfect−Null).
	Score float64     `json:"score"`
	Files []FileScore `json:"files"`
}

// Score scores files under one profile as NAB does: sweep scores per row, one threshold
// optimised over the whole corpus, each file scored at it, the total normalised against the
// null and perfect detectors.
func Score(files []File, p Profile) Result {
	raw, threshold, perFile := optimise(files, p.Cost)
	null := make([]File, len(files))
	windows := 0
	for i, f := range files {
		null[i] = File{Name: f.Name, Times: f.Times, Scores: constant(len(f.Times), 0.5), Windows: f.Windows}
		windows += len(f.Windows)
	}
	nullRaw, _, _ := optimise(null, p.Cost)
	perfect := float64(windows) * p.Cost.TP
	r := Result{Profile: p.Name, Threshold: threshold, Raw: raw, Null: nullRaw, Perfect: perfect, Files: perFile}
	if perfect != nullRaw {
		r.Score = 100 * (raw - nullRaw) / (perfect - nullRaw)
	}
	return r
}

// optimise is NAB's optimizeThreshold followed by scoreCorpus: the best corpus-wide threshold,
// the corpus score at it, and each file's score at it.
func optimise(files []File, cost CostMatrix) (float64, float64, []FileScore) {
	var all []sweepRow
	perFile := make([][]sweepRow, len(files))
	nextWindow := 0
	for i, f := range files {
		perFile[i] = sweep(f, cost, nextWindow)
		nextWindow += len(f.Windows)
		all = append(all, perFile[i]...)
	}
	corpus := scoresByThreshold(all, cost)
	// NAB sorts by score, descending, stably: among equal scores the highest threshold wins.
	bestScore := corpus[0]
	for _, s := range corpus[1:] {
		if s.Score > bestScore.Score {
			bestScore = s
		}
	}
	out := make([]FileScore, len(files))
	total := 0.0
	for i, f := range files {
		s := atThreshold(scoresByThreshold(perFile[i], cost), bestScore.Threshold)
		out[i] = FileScore{Name: f.Name, ThresholdScore: s, Windows: len(f.Windows)}
		total += s.Score
	}
	return total, bestScore.Threshold, out
}

func constant(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
