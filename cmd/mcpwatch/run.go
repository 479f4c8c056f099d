package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/gcheadroom"
)

const runUsage = `Usage:
  mcpwatch run [--config FILE] [--data-dir DIR] [--upstream [NAME=]URL]... [-target LIST]

Runs mcpwatch. With no brokers configured it starts an embedded Kafka-protocol broker
(127.0.0.1:7492) and with no ClickHouse configured it stores into an embedded SQLite file,
both under the data dir. MCP clients connect to the tap at http://127.0.0.1:7400/mcp (or
/mcp/NAME for a named upstream); the API listens on http://127.0.0.1:7410.
Stop with Ctrl-C (SIGINT) or SIGTERM: work in flight is finished first. SIGHUP reloads the
enricher's policy and inventory files (they are also reloaded when they change).

Flags:
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration `FILE` (YAML); defaults apply without one")
	dataDir := fs.String("data-dir", "", "data `DIR` for the embedded broker and store (default ./mcpwatch-data)")
	target := fs.String("target", app.TargetAll, "roles to run: all, or a comma-separated `LIST` of "+strings.Join(app.AllTargets, ","))
	logLevel := fs.String("log-level", "", "log `LEVEL`: debug, info, warn, error")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long to finish work in flight after a stop signal")
	var upstreams stringList
	fs.Var(&upstreams, "upstream", "MCP server to tap, `[NAME=]URL` (repeatable); /mcp routes to the one named default, else the first; /mcp/NAME to each")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	targets, err := app.ParseTargets(*target)
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch run:", err)
		return exitUsage
	}

	cfg, err := app.LoadConfig(*configPath, func(c *app.Config) error {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
		if *logLevel != "" {
			c.Log.Level = *logLevel
		}
		for _, u := range upstreams {
			if err := c.AddUpstream(u); err != nil {
				return fmt.Errorf("--upstream %s: %w", u, err)
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "mcpwatch run: invalid configuration: %v\n", err)
		return exitUsage
	}
	logger, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch run:", err)
		return exitUsage
	}

	a := app.New(cfg, targets, logger)
	if err := a.Start(ctx); err != nil {
		logger.Error("cannot start", "err", err)
		return exitFailure
	}
	// A collection every few megabytes of the collector's small heap is the slowest percent of
	// the calls it taps; GOGC in the environment overrides this. Started after the detector
	// has restored its baselines: that jump in the live heap is collected as by default.
	if gcheadroom.Start(gcheadroom.DefaultHeadroom) {
		logger.Debug("garbage collector given headroom", "bytes", gcheadroom.DefaultHeadroom)
	}
	if addr := a.TapAddr(); addr != "" {
		logger.Info("MCP tap listening", "url", "http://"+addr+"/mcp")
	}
	if addr := a.APIAddr(); addr != "" {
		logger.Info("API listening", "url", "http://"+addr)
	}
	<-ctx.Done()
	logger.Info("stopping: finishing work in flight", "timeout", *shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := a.Shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown incomplete", "err", err)
		return exitFailure
	}
	logger.Info("stopped")
	return exitOK
}

func newLogger(c app.LogConfig, w io.Writer) (*slog.Logger, error) {
	level, err := c.SlogLevel()
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
