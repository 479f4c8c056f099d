package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mcpwatch/mcpwatch/detector/eval/sequences"
)

const evalSequencesUsage = `Usage:
  mcpwatch eval sequences --train F --test-abnormal F [--test-normal F] [--kfold K] [flags]

Evaluates the tool-sequence model on labelled sessions: one session per line, keys separated
by spaces (e.g. the HDFS log benchmark). The model learns the normal sessions of --train one
after another, as it learns an agent's sessions live; the alert threshold is the --fpr quantile
of the scores those sessions got before being learnt. It then scores the test sessions and
prints precision, recall, F1 and the share of normal sessions flagged. With --kfold K, each of
K folds of --train is held out in turn as normal test sessions (and --test-normal, if given,
is scored by every fold). Progress goes to stderr.

Flags:
`

// runEvalSequences runs `mcpwatch eval sequences …`; args are the words after "sequences".
func runEvalSequences(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval sequences", flag.ContinueOnError)
	fs.SetOutput(stderr)
	trainPath := fs.String("train", "", "normal training sessions `FILE` (required)")
	normalPath := fs.String("test-normal", "", "normal test sessions `FILE`")
	abnormalPath := fs.String("test-abnormal", "", "abnormal test sessions `FILE` (required)")
	kfold := fs.Int("kfold", 0, "hold out each of `K` folds of the training file as normal test sessions (K ≥ 2)")
	fpr := fs.Float64("fpr", sequences.DefaultFPR, "share of normal training sessions the threshold may flag, in (0, 1)")
	format := fs.String("o", outputTable, "output `format`: table or json")
	fs.Usage = func() { fmt.Fprint(fs.Output(), evalSequencesUsage); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "mcpwatch eval sequences: %s\nRun 'mcpwatch eval sequences --help' for usage.\n", msg)
		return exitUsage
	}
	switch {
	case *trainPath == "":
		return usageErr("--train is required")
	case *abnormalPath == "":
		return usageErr("--test-abnormal is required")
	case *normalPath == "" && *kfold == 0:
		return usageErr("give --test-normal or --kfold: without normal test sessions there is no false-positive rate")
	case *kfold < 0 || *kfold == 1:
		return usageErr(fmt.Sprintf("--kfold: must be at least 2, got %d", *kfold))
	case !(*fpr > 0 && *fpr < 1):
		return usageErr(fmt.Sprintf("--fpr: must be between 0 and 1, got %g", *fpr))
	case *format != outputTable && *format != outputJSON:
		return usageErr(fmt.Sprintf("-o: must be table or json, got %q", *format))
	}

	read := func(path string) ([][]string, bool) {
		if path == "" {
			return nil, true
		}
		s, err := sequences.ReadFile(path)
		if err != nil {
			fmt.Fprintln(stderr, "mcpwatch eval sequences:", err)
			return nil, false
		}
		return s, true
	}
	train, ok1 := read(*trainPath)
	normal, ok2 := read(*normalPath)
	abnormal, ok3 := read(*abnormalPath)
	if !ok1 || !ok2 || !ok3 {
		return exitFailure
	}
	fmt.Fprintf(stderr, "read %d training, %d normal and %d abnormal test sessions\n", len(train), len(normal), len(abnormal))

	res, err := sequences.Run(ctx, train, normal, abnormal, sequences.Options{KFold: *kfold, FPR: *fpr, Progress: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch eval sequences:", err)
		return exitFailure
	}
	if *format == outputJSON {
		err = printJSON(stdout, res)
	} else {
		err = printEvalSequences(stdout, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch eval sequences:", err)
		return exitFailure
	}
	return exitOK
}

func printEvalSequences(w io.Writer, r sequences.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "precision\t%.4f\n", r.Precision)
	fmt.Fprintf(tw, "recall\t%.4f\n", r.Recall)
	fmt.Fprintf(tw, "f1\t%.4f\n", r.F1)
	fmt.Fprintf(tw, "normal flagged\t%.2f%% (%d of %d)\n", 100*r.NormalFlaggedShare, r.NormalFlagged, r.NormalTested)
	fmt.Fprintf(tw, "abnormal flagged\t%d of %d\n", r.AbnormalFlagged, r.AbnormalTested)
	fmt.Fprintf(tw, "folds\t%d\n", len(r.Folds))
	return tw.Flush()
}
