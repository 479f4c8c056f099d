package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

const alertsUsage = `Usage:
  mcpwatch alerts replay-dlq [--sink NAME] [--dry-run] [-o table|json] [--config FILE]

Commands:
  replay-dlq   re-send dead letters (mcp.alerts.dlq) to their sinks

Run "mcpwatch alerts replay-dlq --help" for its flags.
`

const replayUsage = `Usage:
  mcpwatch alerts replay-dlq [--sink NAME] [--dry-run] [-o table|json] [--config FILE]
                             [--data-dir DIR] [--brokers HOST:PORT,...]

Re-sends the alerts on mcp.alerts.dlq to the sinks they were dead-lettered for, with
their original delivery ids (receivers drop what they already have), using the sinks
of the configuration file. Each one a sink accepts is recorded in the store as
replayed, and only then is that sink's position on the queue moved past it; the
first one a sink still refuses (within alerting.retry's budget) stops that sink's
replay, so the next run starts again from it. Without brokers in the configuration
it uses the embedded broker of a running "mcpwatch run" on this machine.

Exit status: 0 every dead letter was re-sent (or there were none), 1 some were not,
or the replay failed, 2 bad command line.

Flags:
`

// runAlerts runs `mcpwatch alerts …`.
func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "mcpwatch alerts: missing command\n\n%s", alertsUsage)
		return exitUsage
	}
	switch args[0] {
	case "replay-dlq":
		return runReplayDLQ(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, alertsUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mcpwatch alerts: unknown command %q\n\n%s", args[0], alertsUsage)
	return exitUsage
}

func runReplayDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("alerts replay-dlq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration `FILE` (YAML) with the alerting sinks")
	dataDir := fs.String("data-dir", "", "data `DIR` (default ./mcpwatch-data)")
	brokers := fs.String("brokers", "", "Kafka `HOST:PORT` list, comma-separated (default bus.brokers, else the embedded broker)")
	sink := fs.String("sink", "", "replay only this sink's dead letters (`NAME`)")
	dryRun := fs.Bool("dry-run", false, "list what would be re-sent; send, record and commit nothing")
	format := fs.String("o", outputTable, "output `format`: table or json")
	fs.Usage = func() { fmt.Fprint(fs.Output(), replayUsage); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *format != outputTable && *format != outputJSON {
		fmt.Fprintf(stderr, "mcpwatch alerts replay-dlq: -o: must be table or json, got %q\n", *format)
		return exitUsage
	}
	cfg, err := app.LoadConfig(*configPath, func(c *app.Config) error {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
		if *brokers != "" {
			c.Bus.Brokers = strings.Split(*brokers, ",")
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "mcpwatch alerts replay-dlq: invalid configuration: %v\n", err)
		return exitUsage
	}
	addrs := cfg.Bus.Brokers
	if len(addrs) == 0 {
		addrs = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Bus.Embedded.Port))}
		c, err := net.DialTimeout("tcp", addrs[0], 2*time.Second)
		if err != nil {
			fmt.Fprintf(stderr, "mcpwatch alerts replay-dlq: no broker configured and none at %s (is \"mcpwatch run\" running?): %v\n", addrs[0], err)
			return exitFailure
		}
		c.Close()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	set := pipeline.Settings{Logger: logger}

	var st store.Store
	if !*dryRun {
		if cfg.Store.Backend == store.BackendSQLite {
			if err := app.EnsureDataDir(cfg.DataDir); err != nil {
				fmt.Fprintln(stderr, "mcpwatch alerts replay-dlq:", err)
				return exitFailure
			}
		}
		if st, err = store.Open(ctx, cfg.Store, set); err != nil {
			fmt.Fprintln(stderr, "mcpwatch alerts replay-dlq: cannot open store:", err)
			return exitFailure
		}
		defer st.Close()
		if err := st.Migrate(ctx); err != nil {
			fmt.Fprintln(stderr, "mcpwatch alerts replay-dlq:", err)
			return exitFailure
		}
	}
	var rec alerting.DeliveryStore
	if st != nil {
		rec = st
	}
	results, err := alerting.ReplayDLQ(ctx, cfg.Alerting, rec, addrs, alerting.ReplayOptions{Sink: *sink, DryRun: *dryRun}, set)
	if perr := printReplay(stdout, *format, results); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch alerts replay-dlq:", err)
		return exitFailure
	}
	for _, r := range results {
		if r.Status == alerting.ReplayFailed {
			return exitFailure
		}
	}
	return exitOK
}

func printReplay(w io.Writer, format string, results []alerting.ReplayResult) error {
	if format == outputJSON {
		if results == nil {
			results = []alerting.ReplayResult{}
		}
		return printJSON(w, results)
	}
	counts := map[string]int{}
	t := newTextTable(w, "SINK", "DLQ", "DELIVERY", "AGENT", "KIND", "STATUS", "ATTEMPTS", "ERROR")
	for _, r := range results {
		counts[r.Status]++
		attempts := ""
		if r.Attempts > 0 {
			attempts = strconv.Itoa(r.Attempts)
		}
		t.row(r.Sink, fmt.Sprintf("%d/%d", r.Partition, r.Offset), r.DeliveryID, r.AgentID, r.Kind, r.Status, attempts, r.Error)
	}
	if len(results) > 0 {
		if err := t.flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d replayed, %d failed, %d would be replayed, %d invalid\n",
		counts[alerting.ReplayReplayed], counts[alerting.ReplayFailed], counts[alerting.ReplayWouldReplay], counts[alerting.ReplayInvalid])
	return err
}
