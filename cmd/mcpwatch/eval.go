package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mcpwatch/mcpwatch/detector/eval/nab"
)

const evalUsage = `Usage:
  mcpwatch eval nab --data DIR --out DIR [--profile P] [-o table|json]
  mcpwatch eval sequences --train F --test-abnormal F [--test-normal F] [--kfold K] [flags]
  mcpwatch eval injection [--benign F]… [--malicious F]… [--types T,…] [-o table|json]

Runs mcpwatch's detection models on public benchmarks and prints their scores:
  nab        the request-rate model on the Numenta Anomaly Benchmark
  sequences  the tool-sequence model on labelled sessions (e.g. HDFS logs)
  injection  content inspection on benign and malicious prompts (e.g. NotInject, BIPIA)

Run "mcpwatch eval <benchmark> --help" for a benchmark's flags.
`

// runEval runs `mcpwatch eval …`; args are the words after "eval".
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "mcpwatch eval: missing benchmark\n\n%s", evalUsage)
		return exitUsage
	}
	switch bench, rest := args[0], args[1:]; bench {
	case "nab":
		return runEvalNAB(ctx, rest, stdout, stderr)
	case "sequences":
		return runEvalSequences(ctx, rest, stdout, stderr)
	case "injection":
		return runEvalInjection(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, evalUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mcpwatch eval: unknown benchmark %q\n\n%s", bench, evalUsage)
		return exitUsage
	}
}

const evalNABUsage = `Usage:
  mcpwatch eval nab --data DIR --out DIR [--profile P] [-o table|json]

Runs the request-rate model over every series of a Numenta Anomaly Benchmark directory
(DIR/data/<category>/<file>.csv, labels in DIR/labels/combined_windows.json, scoring
profiles in DIR/profiles.json or NAB's own), writes NAB result files
(OUT/<category>/mcpwatch_<file>.csv: timestamp, value, anomaly_score, label) and prints the
NAB scores: 100 is perfect, 0 the null detector. The table shows each file's raw score
under --profile (standard, reward_low_FP or reward_low_FN) with NAB's counts of rows (true
and false positives, false negatives) at the profile's threshold, then the three
normalised scores. Progress goes to stderr.

Flags:
`

// nabProfiles maps the --profile names to NAB's.
var nabProfiles = map[string]string{
	"standard":           nab.ProfileStandard,
	"reward_low_FP":      nab.ProfileRewardLowFP,
	"reward_low_FN":      nab.ProfileRewardLowFN,
	"reward_low_FP_rate": nab.ProfileRewardLowFP,
	"reward_low_FN_rate": nab.ProfileRewardLowFN,
}

func runEvalNAB(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval nab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "NAB `DIR` with data/, labels/ and optionally profiles.json (required)")
	out := fs.String("out", "", "`DIR` to write the result files to (required)")
	profile := fs.String("profile", "standard", "`profile` whose per-file scores the table shows: standard, reward_low_FP or reward_low_FN")
	format := fs.String("o", outputTable, "output `format`: table or json")
	fs.Usage = func() { fmt.Fprint(fs.Output(), evalNABUsage); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "mcpwatch eval nab: %s\nRun 'mcpwatch eval nab --help' for usage.\n", fmt.Sprintf(format, args...))
		return exitUsage
	}
	name, ok := nabProfiles[*profile]
	switch {
	case *data == "":
		return usageErr("--data is required")
	case *out == "":
		return usageErr("--out is required")
	case !ok:
		return usageErr("--profile: must be standard, reward_low_FP or reward_low_FN, got %q", *profile)
	case *format != outputTable && *format != outputJSON:
		return usageErr("-o: must be table or json, got %q", *format)
	}
	rep, err := nab.Run(ctx, nab.Options{DataDir: *data, OutDir: *out, Progress: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch eval nab:", err)
		return exitFailure
	}
	if *format == outputJSON {
		err = printJSON(stdout, rep)
	} else {
		err = printEvalNAB(stdout, rep, name)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch eval nab:", err)
		return exitFailure
	}
	return exitOK
}

// score prints a raw NAB score, without the minus of a negative zero.
func score(x float64) string {
	if x == 0 {
		x = 0
	}
	return fmt.Sprintf("%.3f", x)
}

// printEvalNAB writes the files' raw scores under one profile, then every profile's score.
func printEvalNAB(w io.Writer, rep nab.Report, profile string) error {
	t := newTextTable(w, "FILE", "WINDOWS", "TP", "FP", "FN", "SCORE")
	if res, ok := rep.Result(profile); ok {
		for _, f := range res.Files {
			t.row(f.Name, fmt.Sprint(f.Windows), fmt.Sprint(f.TP), fmt.Sprint(f.FP), fmt.Sprint(f.FN), score(f.Score))
		}
		t.row("total ("+profile+")", fmt.Sprint(rep.Windows), "", "", "", score(res.Raw))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d files, %d rows, %d windows\n", rep.Files, rep.Rows, rep.Windows)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tSCORE\tTHRESHOLD")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%.4f\n", r.Profile, r.Score, r.Threshold)
	}
	return tw.Flush()
}
