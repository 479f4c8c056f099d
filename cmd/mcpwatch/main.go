package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `mcpwatch watches the traffic between AI agents and their MCP servers, learns what
is normal for every agent, and tells you when an agent stops behaving like itself.

Usage:
  mcpwatch <command> [arguments]

Commands:
  run          run the pipeline (all roles by default; -target for a subset)
  wrap         run a stdio MCP server and record its traffic (mcpwatch wrap -- CMD ARGS...)
  sessions     list recorded MCP sessions, or show one as a timeline
  anomalies    list detected anomalies, or show one with its evidence
  agents       list agents by risk, or show one with its learnt baseline
  alerts       re-send dead-lettered alerts (alerts replay-dlq)
  eval         run the detection models on benchmarks (nab, sequences, injection)
  migrate      create or upgrade the store's schema
  config check validate a configuration file
  version      print the version

Run "mcpwatch <command> --help" for a command's flags.

Exit status: 0 done, 1 the command failed, 2 bad command line; the query commands
(sessions, anomalies, agents) exit 4 when the session, anomaly or agent does not exist.
`

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitFailure = 1 // the command could not do its work
	exitUsage   = 2 // the command line was wrong
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling: a second Ctrl-C quits at once.
	go func() { <-ctx.Done(); stop() }()
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return runRun(ctx, rest, stdout, stderr)
	case "wrap":
		return runWrap(ctx, rest, os.Stdin, stdout, stderr)
	case "sessions":
		return runSessions(ctx, rest, stdout, stderr)
	case "anomalies":
		return runAnomalies(ctx, rest, stdout, stderr)
	case "agents":
		return runAgents(ctx, rest, stdout, stderr)
	case "alerts":
		return runAlerts(ctx, rest, stdout, stderr)
	case "eval":
		return runEval(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "config":
		return runConfig(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "mcpwatch %s (%s)\n", version, goVersion())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mcpwatch: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown Go version"
}
