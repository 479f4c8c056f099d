package nab

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRateModelOnNAB is the benchmark target: the request-rate model scores at least 60 on
// NAB's standard profile over the shared data (published: Numenta HTM 70.5, Skyline 58.2,
// windowed Gaussian 39.6).
func TestRateModelOnNAB(t *testing.T) {
	dir := nabDataDir(t)
	out := t.TempDir()
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Options{DataDir: dir, OutDir: out, Progress: &progress})
	require.NoError(t, err)
	for _, r := range rep.Results {
		t.Logf("%s: %.1f (threshold %.3f)", r.Profile, r.Score, r.Threshold)
	}
	std, ok := rep.Result(ProfileStandard)
	require.True(t, ok)
	require.GreaterOrEqual(t, std.Score, 60.0)
	require.Equal(t, rep.Files, strings.Count(progress.String(), "\n"))
	require.Equal(t, 18, rep.Files)
	require.FileExists(t, filepath.Join(out, "realKnownCause", "mcpwatch_nyc_taxi.csv"))
}

// writeCorpus lays out a NAB directory: one category, the given files and windows.
func writeCorpus(t *testing.T, files map[string]string, labels string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, "data", filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "labels"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "labels", "combined_windows.json"), []byte(labels), 0o644))
	return dir
}

// series writes n five-minute rows of a daily wave with a spike at row spike.
func series(n, spike int) string {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ts := t0.Add(time.Duration(i) * 5 * time.Minute)
		v := 50 + 20*math.Sin(2*math.Pi*float64(i%288)/288) + float64(i*7%5)
		if i == spike {
			v = 400
		}
		fmt.Fprintf(&b, "%s,%g\n", ts.Format(timeLayout), v)
	}
	return b.String()
}

func TestRunWritesNABResults(t *testing.T) {
	dir := writeCorpus(t, map[string]string{
		"cat/a.csv": series(3000, 2500),
		"cat/b.csv": series(3000, -1),
	}, `{"cat/a.csv": [["2014-04-09 15:00:00.000000", "2014-04-09 23:15:00.000000"]], "cat/b.csv": []}`)
	out := t.TempDir()
	rep, err := Run(t.Context(), Options{DataDir: dir, OutDir: out})
	require.NoError(t, err)
	require.Equal(t, Report{Detector: "mcpwatch", Files: 2, Rows: 6000, Windows: 1, Results: rep.Results}, rep)
	require.Len(t, rep.Results, 3, "NAB's three profiles without a profiles.json")
	std, _ := rep.Result(ProfileStandard)
	require.InDelta(t, 100*(0.8+1)/2, std.Score, 10, "the spike in the middle of the window is found, nothing else")
	require.Equal(t, 0, std.Files[1].FP, "the quiet file raises nothing at the chosen threshold")

	f, err := os.Open(filepath.Join(out, "cat", "mcpwatch_a.csv"))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3001)
	require.Equal(t, []string{"timestamp", "value", "anomaly_score", "label"}, rows[0])
	require.Equal(t, "2014-04-09 16:20:00", rows[1+2500][0])
	require.Equal(t, "400", rows[1+2500][1])
	require.Equal(t, "1", rows[1+2500][3])
	require.Equal(t, "0", rows[1][3])
	var inWindow int
	for _, r := range rows[1:] {
		if r[3] == "1" {
			inWindow++
		}
	}
	require.Equal(t, 100, inWindow, "15:00 to 23:15, both ends included")
	require.FileExists(t, filepath.Join(out, "cat", "mcpwatch_b.csv"))
}

func TestRunProfilesFromFile(t *testing.T) {
	dir := writeCorpus(t, map[string]string{"cat/a.csv": series(500, -1)}, `{"cat/a.csv": []}`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "profiles.json"), []byte(`{"mine": {"CostMatrix": {"tpWeight": 1, "fpWeight": 0.5, "fnWeight": 1, "tnWeight": 1}}}`), 0o644))
	rep, err := Run(t.Context(), Options{DataDir: dir})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	require.Equal(t, "mine", rep.Results[0].Profile)
}

func TestRunErrors(t *testing.T) {
	good := series(100, -1)
	for _, tc := range []struct {
		name   string
		files  map[string]string
		labels string
		detect func(Series) ([]float64, error)
		want   string
	}{
		{"no data", nil, `{}`, nil, "cannot list NAB data"},
		{"no csv", map[string]string{"cat/README": "x"}, `{}`, nil, "cannot find NAB data: no CSV files under"},
		{"no labels entry", map[string]string{"cat/a.csv": good}, `{}`, nil, "cannot score cat/a.csv: it has no entry in the labels"},
		{"bad labels", map[string]string{"cat/a.csv": good}, `{"cat/a.csv": [["2014-04-01 00:00:00"]]}`, nil, "cat/a.csv window 0 has 1 timestamps, want 2"},
		{"window backwards", map[string]string{"cat/a.csv": good}, `{"cat/a.csv": [["2014-04-02 00:00:00", "2014-04-01 00:00:00"]]}`, nil, "cat/a.csv window 0 ends before it starts"},
		{"bad header", map[string]string{"cat/a.csv": "time,value\n"}, `{"cat/a.csv": []}`, nil, `header is "time,value", want timestamp,value`},
		{"bad timestamp", map[string]string{"cat/a.csv": "timestamp,value\nyesterday,1\n"}, `{"cat/a.csv": []}`, nil, "line 2: parsing time"},
		{"bad value", map[string]string{"cat/a.csv": "timestamp,value\n2014-04-01 00:00:00,x\n"}, `{"cat/a.csv": []}`, nil, "line 2: strconv.ParseFloat"},
		{"no rows", map[string]string{"cat/a.csv": "timestamp,value\n"}, `{"cat/a.csv": []}`, nil, "no rows"},
		{"short detector", map[string]string{"cat/a.csv": good}, `{"cat/a.csv": []}`, func(s Series) ([]float64, error) { return nil, nil }, "cannot score cat/a.csv: the detector returned 0 scores for 100 rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeCorpus(t, tc.files, tc.labels)
			_, err := Run(t.Context(), Options{DataDir: dir, Detector: tc.detect})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	dir := writeCorpus(t, map[string]string{"cat/a.csv": series(100, -1)}, `{"cat/a.csv": []}`)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Run(ctx, Options{DataDir: dir})
	require.ErrorIs(t, err, context.Canceled)
}

func TestTypicalSpacing(t *testing.T) {
	t0 := time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := []time.Time{t0, t0.Add(5 * time.Minute), t0.Add(10 * time.Minute), t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), t0.Add(25 * time.Minute)}
	require.Equal(t, 5*time.Minute, typicalSpacing(ts), "repeated timestamps and gaps do not move the median")
	require.Equal(t, time.Minute, typicalSpacing(ts[:1]))
	require.Equal(t, time.Second, typicalSpacing([]time.Time{t0, t0}))
}
