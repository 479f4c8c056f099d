package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

const migrateUsage = `Usage:
  mcpwatch migrate [--config FILE] [--data-dir DIR]

Creates or upgrades the store's schema (the embedded SQLite file, or ClickHouse when
configured) and prints the schema version. Safe to run repeatedly; mcpwatch run also
migrates at start.

Flags:
`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration `FILE` (YAML)")
	dataDir := fs.String("data-dir", "", "data `DIR` (default ./mcpwatch-data)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), migrateUsage); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	cfg, err := app.LoadConfig(*configPath, func(c *app.Config) error {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "mcpwatch migrate: invalid configuration: %v\n", err)
		return exitUsage
	}
	if cfg.Store.Backend == store.BackendSQLite {
		if err := app.EnsureDataDir(cfg.DataDir); err != nil {
			fmt.Fprintln(stderr, "mcpwatch migrate:", err)
			return exitFailure
		}
	}
	st, err := store.Open(ctx, cfg.Store, pipeline.Settings{Logger: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch migrate: cannot open store:", err)
		return exitFailure
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		fmt.Fprintln(stderr, "mcpwatch migrate:", err)
		return exitFailure
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "mcpwatch migrate:", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "store %s is at schema version %d\n", cfg.Store.Backend, v)
	return exitOK
}

const configUsage = `Usage:
  mcpwatch config check FILE

Validates a configuration file: YAML syntax, unknown keys, and every field's value; then the
policy and inventory files it names (enricher.policy_file, enricher.inventory_file). Prints
"FILE: ok" for each file and exits 0, or prints each problem with its line or field path and
exits 1.
`

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelp(args[0]) || len(args) == 2 && isHelp(args[1]) {
		fmt.Fprint(stdout, configUsage)
		return exitOK
	}
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	cfg, err := app.LoadConfig(args[1], nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	if err := cfg.Enricher.Files.Check(); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	for _, f := range []string{args[1], cfg.Enricher.PolicyFile, cfg.Enricher.InventoryFile} {
		if f != "" {
			fmt.Fprintf(stdout, "%s: ok\n", f)
		}
	}
	return exitOK
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// parseFlags parses args; done reports that the command should exit with code (help or a
// usage error).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	// Help goes to stdout and exits 0; the flag package would print it to stderr.
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK, true
		}
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "mcpwatch %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, true
	}
	return 0, false
}
