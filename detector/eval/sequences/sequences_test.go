package sequences

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hdfsDir is the shared HDFS data: $MCPWATCH_HDFS_DIR, else ../shared/data/hdfs beside the
// repository. Without it the test is skipped, except in CI where it must be there.
func hdfsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MCPWATCH_HDFS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "data", "hdfs")
	}
	if _, err := os.Stat(filepath.Join(dir, "hdfs_train")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("HDFS data not found in %s (set MCPWATCH_HDFS_DIR): %v", dir, err)
		}
		t.Skipf("HDFS data not found in %s (set MCPWATCH_HDFS_DIR): %v", dir, err)
	}
	return dir
}

// TestHDFSTarget is the target: trained on normal HDFS sessions with 5-fold
// cross-validation, recall ≥ 0.95 with at most 2% of normal sessions flagged (DeepLog:
// precision 0.95, recall 0.96).
func TestHDFSTarget(t *testing.T) {
	dir := hdfsDir(t)
	train, err := ReadFile(filepath.Join(dir, "hdfs_train"))
	require.NoError(t, err)
	abnormal, err := ReadFile(filepath.Join(dir, "hdfs_test_abnormal_sample"))
	require.NoError(t, err)
	require.Len(t, train, 4855)

	var progress strings.Builder
	res, err := Run(context.Background(), train, nil, abnormal, Options{KFold: 5, Progress: &progress})
	require.NoError(t, err)
	t.Logf("precision %.4f recall %.4f F1 %.4f normal flagged %.2f%% (%d of %d); abnormal findings %v; normal findings %v",
		res.Precision, res.Recall, res.F1, 100*res.NormalFlaggedShare, res.NormalFlagged, res.NormalTested, res.AbnormalFindings, res.NormalFindings)

	require.Len(t, res.Folds, 5)
	require.Equal(t, 4855, res.NormalTested, "every training session is held out once")
	require.Equal(t, 5*len(abnormal), res.AbnormalTested)
	require.GreaterOrEqual(t, res.Recall, 0.95)
	require.LessOrEqual(t, res.NormalFlaggedShare, 0.02)
	require.Equal(t, 5, strings.Count(progress.String(), "\n"))
	require.Contains(t, progress.String(), "fold 5/5: learnt 3884 sessions")
}

// sessions generates n normal sessions: a fixed start, a few of four tools, a fixed end.
func sessions(rng *rand.Rand, n int) [][]string {
	out := make([][]string, n)
	for i := range out {
		s := []string{"init", "list"}
		for range 1 + rng.IntN(4) {
			s = append(s, fmt.Sprint("t", rng.IntN(4)))
		}
		out[i] = append(s, "close")
	}
	return out
}

func TestRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	train, testNormal := sessions(rng, 2000), sessions(rng, 500)
	abnormal := [][]string{
		{"init", "list", "t1", "drop_tables", "close"}, // a call never seen
		{"init", "list", "t1"},                         // ends where no session ended
		{"list", "t2", "close"},                        // starts where no session started
		append([]string{"init", "list"}, append(strings.Fields(strings.Repeat("t3 ", 30)), "close")...), // too many calls
	}
	res, err := Run(context.Background(), train, testNormal, abnormal, Options{})
	require.NoError(t, err)
	require.Len(t, res.Folds, 1)
	f := res.Folds[0]
	require.Equal(t, 2000, f.TrainSessions)
	require.Equal(t, 1000, f.CalibrationSessions)
	require.Equal(t, 500, res.NormalTested)
	require.Equal(t, 4, res.AbnormalTested)
	require.Equal(t, 4, res.AbnormalFlagged)
	require.Equal(t, 1.0, res.Recall)
	require.LessOrEqual(t, res.NormalFlaggedShare, 0.02)
	require.Equal(t, map[string]int{"new_call": 1, "new_transition": 2, "count_above_range": 1}, res.AbnormalFindings)
	require.InDelta(t, float64(res.AbnormalFlagged)/float64(res.AbnormalFlagged+res.NormalFlagged), res.Precision, 1e-12)
	require.InDelta(t, 2*res.Precision*res.Recall/(res.Precision+res.Recall), res.F1, 1e-12)
}

// The threshold comes from the training sessions only: the abnormal test sessions, and whether
// there are any, change nothing about it.
func TestThresholdIgnoresTestLabels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	train := sessions(rng, 600)
	abnormal := [][]string{{"init", "evil", "close"}, {"init"}}
	with, err := Run(context.Background(), train, nil, abnormal, Options{KFold: 3})
	require.NoError(t, err)
	without, err := Run(context.Background(), train, nil, nil, Options{KFold: 3})
	require.NoError(t, err)
	for i := range with.Folds {
		require.Equal(t, with.Folds[i].Threshold, without.Folds[i].Threshold)
		require.Equal(t, with.Folds[i].NormalFlagged, without.Folds[i].NormalFlagged)
	}
	require.Equal(t, 6, with.AbnormalFlagged)
	require.Zero(t, without.AbnormalTested)
	require.Zero(t, without.Recall)
}

func TestKFoldHoldsOutEachSessionOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	train := sessions(rng, 103)
	res, err := Run(context.Background(), train, sessions(rng, 10), nil, Options{KFold: 4})
	require.NoError(t, err)
	require.Len(t, res.Folds, 4)
	held := 0
	for i, f := range res.Folds {
		require.Equal(t, i+1, f.Fold)
		h := f.NormalTested - 10 // the test-normal file is scored by every fold
		require.Equal(t, 103-h, f.TrainSessions)
		held += h
	}
	require.Equal(t, 103, held)
	require.Equal(t, 103+4*10, res.NormalTested)
}

func TestRunRejectsBadOptions(t *testing.T) {
	train := sessions(rand.New(rand.NewPCG(7, 8)), 10)
	for _, tc := range []struct {
		name  string
		train [][]string
		opts  Options
		want  string
	}{
		{"fpr", train, Options{FPR: 1.5}, "fpr must be between 0 and 1, got 1.5"},
		{"one fold", train, Options{KFold: 1}, "kfold must be 0 (no folds) or at least 2, got 1"},
		{"more folds than sessions", train, Options{KFold: 11}, "kfold 11 exceeds the 10 training sessions"},
		{"no training", nil, Options{}, "need at least 2 training sessions, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.train, nil, nil, tc.opts)
			require.EqualError(t, err, tc.want)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, train, nil, nil, Options{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestReadSessions(t *testing.T) {
	got, err := ReadSessions(strings.NewReader("5 5 22 \n\n  \r\n11 9\r\n26"))
	require.NoError(t, err)
	require.Equal(t, [][]string{{"5", "5", "22"}, {"11", "9"}, {"26"}}, got)

	_, err = ReadSessions(strings.NewReader("1 2\n" + strings.Repeat("x", 17<<20)))
	require.EqualError(t, err, "line 2: longer than 16 MiB")

	_, err = ReadFile(filepath.Join(t.TempDir(), "missing"))
	require.ErrorContains(t, err, "cannot read sessions: open ")
}
