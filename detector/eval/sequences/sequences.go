package sequences

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat"

	"github.com/mcpwatch/mcpwatch/detector/sequence"
)

// Options configure an evaluation.
type Options struct {
	// KFold, when 2 or more, splits the training sessions into KFold contiguous folds: each
	// fold in turn is held out as normal test sessions while the model learns the others.
	KFold int
	// FPR is the share of normal sessions the threshold is allowed to flag, estimated on the
	// training sessions (default 0.01).
	FPR float64
	// Model configures the sequence model; zero fields take their defaults.
	Model sequence.Config
	// Progress, when not nil, receives a line per fold.
	Progress io.Writer
}

// DefaultFPR is Options.FPR's default.
const DefaultFPR = 0.01

// Result is the outcome of an evaluation. Confusion counts are summed over folds, so with
// k-fold every abnormal session is counted once per fold.
type Result struct {
	TrainSessions   int     `json:"train_sessions"`
	NormalTested    int     `json:"normal_tested"`
	NormalFlagged   int     `json:"normal_flagged"`
	AbnormalTested  int     `json:"abnormal_tested"`
	AbnormalFlagged int     `json:"abnormal_flagged"`
	Precision       float64 `json:"precision"`
	Recall          float64 `json:"recall"`
	F1              float64 `json:"f1"`
	// NormalFlaggedShare is NormalFlagged / NormalTested: the false-positive rate.
	NormalFlaggedShare float64 `json:"normal_flagged_share"`
	Folds              []Fold  `json:"folds"`
	// Findings counts flagged sessions by the kind of their most surprising finding
	// (new_transition, count_above_range, …), separately for abnormal and normal sessions.
	AbnormalFindings map[string]int `json:"abnormal_findings"`
	NormalFindings   map[string]int `json:"normal_findings"`
}

// Fold is one train/test split.
type Fold struct {
	Fold          int `json:"fold"`
	TrainSessions int `json:"train_sessions"`
	// CalibrationSessions are the training sessions whose pre-learning scores set the
	// threshold: the second half, when the baseline had seen at least half the training data.
	CalibrationSessions int `json:"calibration_sessions"`
	// Threshold: a session is flagged when its probability is below it (ThresholdScore is the
	// same on the 0–100 scale).
	Threshold       float64 `json:"threshold"`
	ThresholdScore  float64 `json:"threshold_score"`
	NormalTested    int     `json:"normal_tested"`
	NormalFlagged   int     `json:"normal_flagged"`
	AbnormalTested  int     `json:"abnormal_tested"`
	AbnormalFlagged int     `json:"abnormal_flagged"`
}

// Run learns train (normal sessions), then scores testNormal and testAbnormal. With
// opts.KFold ≥ 2 it does so once per fold, adding the held-out fold to the normal test
// sessions.
func Run(ctx context.Context, train, testNormal, testAbnormal [][]string, opts Options) (Result, error) {
	if opts.FPR == 0 {
		opts.FPR = DefaultFPR
	}
	switch {
	case !(opts.FPR > 0 && opts.FPR < 1):
		return Result{}, fmt.Errorf("fpr must be between 0 and 1, got %g", opts.FPR)
	case opts.KFold < 0 || opts.KFold == 1:
		return Result{}, fmt.Errorf("kfold must be 0 (no folds) or at least 2, got %d", opts.KFold)
	case opts.KFold > len(train):
		return Result{}, fmt.Errorf("kfold %d exceeds the %d training sessions", opts.KFold, len(train))
	case len(train) < 2:
		return Result{}, fmt.Errorf("need at least 2 training sessions, got %d", len(train))
	}
	if _, err := sequence.New(opts.Model, nil); err != nil {
		return Result{}, err
	}
	res := Result{TrainSessions: len(train), AbnormalFindings: map[string]int{}, NormalFindings: map[string]int{}}
	folds := max(opts.KFold, 1)
	for k := range folds {
		fit, held := train, [][]string(nil)
		if opts.KFold >= 2 {
			lo, hi := k*len(train)/folds, (k+1)*len(train)/folds
			held = train[lo:hi]
			fit = append(slices.Clip(train[:lo]), train[hi:]...)
		}
		f, err := runFold(ctx, fit, held, testNormal, testAbnormal, opts, &res)
		if err != nil {
			return Result{}, err
		}
		f.Fold = k + 1
		res.Folds = append(res.Folds, f)
		res.NormalTested += f.NormalTested
		res.NormalFlagged += f.NormalFlagged
		res.AbnormalTested += f.AbnormalTested
		res.AbnormalFlagged += f.AbnormalFlagged
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "fold %d/%d: learnt %d sessions; threshold p < %.3g (score %.1f); normal flagged %d/%d, abnormal flagged %d/%d\n",
				k+1, folds, f.TrainSessions, f.Threshold, f.ThresholdScore, f.NormalFlagged, f.NormalTested, f.AbnormalFlagged, f.AbnormalTested)
		}
	}
	tp, fp := float64(res.AbnormalFlagged), float64(res.NormalFlagged)
	fn := float64(res.AbnormalTested - res.AbnormalFlagged)
	if tp+fp > 0 {
		res.Precision = tp / (tp + fp)
	}
	if tp+fn > 0 {
		res.Recall = tp / (tp + fn)
	}
	if res.Precision+res.Recall > 0 {
		res.F1 = 2 * res.Precision * res.Recall / (res.Precision + res.Recall)
	}
	if res.NormalTested > 0 {
		res.NormalFlaggedShare = fp / float64(res.NormalTested)
	}
	return res, nil
}

func runFold(ctx context.Context, fit, held, testNormal, testAbnormal [][]string, opts Options, res *Result) (Fold, error) {
	m, err := sequence.New(opts.Model, nil)
	if err != nil {
		return Fold{}, err
	}
	b, s := m.NewBaseline(), m.NewSession()
	syms := m.Symbols()
	score := func(keys []string) sequence.Verdict {
		s.Reset()
		for _, k := range keys {
			b.Step(s, syms.Intern(k, ""), nil)
		}
		return b.End(s, nil)
	}

	// Learn the training sessions in order, as the live detector would, keeping the score each
	// got just before it was learnt: an honest, out-of-sample view of normal sessions.
	calib := make([]float64, 0, len(fit)-len(fit)/2)
	for i, keys := range fit {
		if i%1024 == 0 && ctx.Err() != nil {
			return Fold{}, ctx.Err()
		}
		v := score(keys)
		if i >= len(fit)/2 {
			calib = append(calib, v.Finding.P)
		}
		b.Learn(s)
	}
	slices.Sort(calib)
	thr := stat.Quantile(opts.FPR, stat.Empirical, calib, nil)
	f := Fold{TrainSessions: len(fit), CalibrationSessions: len(calib), Threshold: thr, ThresholdScore: sequence.Score(thr)}

	test := func(sets [][][]string, tested, flagged *int, findings map[string]int) error {
		for _, set := range sets {
			for i, keys := range set {
				if i%1024 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				*tested++
				if v := score(keys); v.Finding.P < thr {
					*flagged++
					findings[v.Finding.Name()]++
				}
			}
		}
		return nil
	}
	if err := test([][][]string{held, testNormal}, &f.NormalTested, &f.NormalFlagged, res.NormalFindings); err != nil {
		return Fold{}, err
	}
	if err := test([][][]string{testAbnormal}, &f.AbnormalTested, &f.AbnormalFlagged, res.AbnormalFindings); err != nil {
		return Fold{}, err
	}
	return f, nil
}

// ReadSessions reads one session per line, keys separated by spaces; blank lines are skipped.
func ReadSessions(r io.Reader) ([][]string, error) {
	var out [][]string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		keys := strings.Fields(sc.Text())
		if len(keys) > 0 {
			out = append(out, keys)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than 16 MiB", line+1)
		}
		return nil, err
	}
	return out, nil
}

// ReadFile reads the sessions in the file at path (see ReadSessions).
func ReadFile(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read sessions: %w", err)
	}
	defer f.Close()
	sessions, err := ReadSessions(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read sessions from %s: %w", path, err)
	}
	return sessions, nil
}
