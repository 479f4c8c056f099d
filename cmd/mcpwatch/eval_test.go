package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector/eval/nab"
)

// nabCorpus lays out a small NAB directory: a five-minute daily wave with a spike inside a
// labelled window, and a quiet series without windows.
func nabCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, spike int) {
		var b strings.Builder
		b.WriteString("timestamp,value\n")
		t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
		for i := range 3000 {
			v := 50 + 20*math.Sin(2*math.Pi*float64(i%288)/288) + float64(i*7%5)
			if i == spike {
				v = 400
			}
			fmt.Fprintf(&b, "%s,%g\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
		}
		p := filepath.Join(dir, "data", "synthetic", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
	}
	write("spike.csv", 2500)
	write("quiet.csv", -1)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "labels"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "labels", "combined_windows.json"), []byte(`{
		"synthetic/spike.csv": [["2014-04-09 15:00:00.000000", "2014-04-09 23:15:00.000000"]],
		"synthetic/quiet.csv": []
	}`), 0o644))
	return dir
}

func TestEvalNAB(t *testing.T) {
	data, out := nabCorpus(t), t.TempDir()
	r := runCmd(t, "eval", "nab", "--data", data, "--out", out)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "[1/2] synthetic/quiet.csv: 3000 rows")
	require.Contains(t, r.stderr, "[2/2] synthetic/spike.csv: 3000 rows")
	require.Regexp(t, `(?m)^FILE\s+WINDOWS\s+TP\s+FP\s+FN\s+SCORE$`, r.stdout)
	require.Regexp(t, `(?m)^synthetic/spike\.csv\s+1\s+`, r.stdout)
	require.Regexp(t, `(?m)^total \(standard\)\s+1\s+`, r.stdout)
	require.Contains(t, r.stdout, "2 files, 6000 rows, 1 windows")
	require.Regexp(t, `(?m)^standard\s+\d+\.\d\s+[01]\.\d{4}$`, r.stdout)
	require.Regexp(t, `(?m)^synthetic/quiet\.csv\s+0\s+0\s+0\s+0\s+0\.000$`, r.stdout)
	require.Regexp(t, `(?m)^reward_low_FP_rate\s+`, r.stdout)
	require.Regexp(t, `(?m)^reward_low_FN_rate\s+`, r.stdout)
	require.FileExists(t, filepath.Join(out, "synthetic", "mcpwatch_spike.csv"))
	require.FileExists(t, filepath.Join(out, "synthetic", "mcpwatch_quiet.csv"))

	r = runCmd(t, "eval", "nab", "--data", data, "--out", out, "--profile", "reward_low_FN", "-o", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var rep nab.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, 2, rep.Files)
	require.Len(t, rep.Results, 3)
	std, ok := rep.Result(nab.ProfileStandard)
	require.True(t, ok)
	require.Greater(t, std.Score, 50.0, "the spike is found")

	r = runCmd(t, "eval", "nab", "--data", data, "--out", out, "--profile", "reward_low_FP")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Regexp(t, `(?m)^total \(reward_low_FP_rate\)`, r.stdout)
}

func TestEvalUsage(t *testing.T) {
	data := nabCorpus(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no benchmark", []string{"eval"}, exitUsage, "", "mcpwatch eval: missing benchmark"},
		{"unknown benchmark", []string{"eval", "kdd"}, exitUsage, "", `mcpwatch eval: unknown benchmark "kdd"`},
		{"help", []string{"eval", "help"}, exitOK, "mcpwatch eval nab --data DIR --out DIR", ""},
		{"nab help", []string{"eval", "nab", "--help"}, exitOK, "Runs the request-rate model", ""},
		{"sequences help", []string{"eval", "sequences", "--help"}, exitOK, "mcpwatch eval sequences --train F", ""},
		{"no data", []string{"eval", "nab", "--out", "x"}, exitUsage, "", "mcpwatch eval nab: --data is required"},
		{"no out", []string{"eval", "nab", "--data", data}, exitUsage, "", "mcpwatch eval nab: --out is required"},
		{"bad profile", []string{"eval", "nab", "--data", data, "--out", "x", "--profile", "lenient"}, exitUsage, "", `--profile: must be standard, reward_low_FP or reward_low_FN, got "lenient"`},
		{"bad format", []string{"eval", "nab", "--data", data, "--out", "x", "-o", "yaml"}, exitUsage, "", `-o: must be table or json, got "yaml"`},
		{"stray argument", []string{"eval", "nab", "--data", data, "--out", "x", "more"}, exitUsage, "", `unexpected argument "more"`},
		{"missing data", []string{"eval", "nab", "--data", filepath.Join(data, "nope"), "--out", t.TempDir()}, exitFailure, "", "mcpwatch eval nab: cannot list NAB data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.args...)
			require.Equal(t, tc.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stdout, tc.stdout)
			require.Contains(t, r.stderr, tc.stderr)
		})
	}
	r := runCmd(t, "--help")
	require.Contains(t, r.stdout, "eval         run the detection models on benchmarks (nab, sequences, injection)")
}
