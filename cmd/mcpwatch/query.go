package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// The query commands talk to a running mcpwatch over its HTTP API.

const defaultAPIURL = "http://127.0.0.1:7410"

// Exit codes of the query commands.
const (
	queryExitOK     = 0
	queryExitFailed = 1 // the API could not be reached or answered an error
	queryExitUsage  = 2
)

const sessionsUsage = `Usage:
  mcpwatch sessions list [--agent A] [--server S] [--since T] [--until T] [--limit N] [flags]
  mcpwatch sessions show ID [--limit N] [flags]

List recorded MCP sessions (most recently active first), or show one session's
summary and its events as a timeline.
T is an RFC 3339 time (2026-11-03T02:00:00Z), a date (2026-11-03) or a duration
back from now (15m, 2h, 7d).
Run "mcpwatch sessions list --help" for every flag.
`

const anomaliesUsage = `Usage:
  mcpwatch anomalies list [--agent A] [--kind K] [--min-severity S] [--since T] [--until T] [--limit N] [flags]

List detected anomalies, most recently seen first.
S is one of info, low, medium, high, critical.
T is an RFC 3339 time (2026-11-03T02:00:00Z), a date (2026-11-03) or a duration
back from now (15m, 2h, 7d).
Run "mcpwatch anomalies list --help" for every flag.
`

// runSessions runs `mcpwatch sessions …`; args are the words after "sessions".
func runSessions(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatchQuery(ctx, "sessions", sessionsUsage, map[string]querySubcmd{
		"list": sessionsList,
		"show": sessionsShow,
	}, args, stdout, stderr)
}

// runAnomalies runs `mcpwatch anomalies …`; args are the words after "anomalies".
func runAnomalies(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatchQuery(ctx, "anomalies", anomaliesUsage, map[string]querySubcmd{
		"list": anomaliesList,
	}, args, stdout, stderr)
}

type querySubcmd func(ctx context.Context, c *queryCmd, args []string) int

func dispatchQuery(ctx context.Context, name, usage string, subs map[string]querySubcmd, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "mcpwatch %s: missing command\n\n%s", name, usage)
		return queryExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return queryExitOK
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mcpwatch %s: unknown command %q\n\n%s", name, args[0], usage)
		return queryExitUsage
	}
	c := &queryCmd{
		name:   "mcpwatch " + name + " " + args[0],
		fs:     flag.NewFlagSet("mcpwatch "+name+" "+args[0], flag.ContinueOnError),
		stdout: stdout,
		stderr: stderr,
	}
	c.fs.SetOutput(io.Discard) // parse errors and help are printed by parse, to the right stream
	c.fs.StringVar(&c.apiURL, "api", "", "mcpwatch API `URL` (default $MCPWATCH_API, else "+defaultAPIURL+")")
	c.fs.StringVar(&c.token, "token", "", "bearer `token` for the API (default $MCPWATCH_TOKEN)")
	c.fs.StringVar(&c.format, "o", outputTable, "output `format`: table or json")
	return run(ctx, c, args[1:])
}

// queryCmd is one query subcommand: its flags, streams and the API it talks to.
type queryCmd struct {
	name           string
	synopsis       string
	fs             *flag.FlagSet
	stdout, stderr io.Writer
	apiURL, token  string
	format         string
}

// parse parses flags and positional arguments in any order (`show ID --limit 5` works too).
// When ok is false, the command should exit with code.
func (c *queryCmd) parse(args []string) (positional []string, code int, ok bool) {
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printUsage(c.stdout)
				return nil, queryExitOK, false
			}
			return nil, c.usageError("%v", err), false
		}
		if c.fs.NArg() == 0 {
			break
		}
		positional = append(positional, c.fs.Arg(0))
		args = c.fs.Args()[1:]
	}
	if c.format != outputTable && c.format != outputJSON {
		return nil, c.usageError("-o: must be table or json, got %q", c.format), false
	}
	return positional, queryExitOK, true
}

func (c *queryCmd) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  %s\n\nFlags:\n", c.synopsis)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

func (c *queryCmd) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(c.stderr, "Run '%s --help' for usage.\n", c.name)
	return queryExitUsage
}

// fail reports an API or output error on one line.
func (c *queryCmd) fail(err error) int {
	msg := err.Error()
	var apiErr *api.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
		msg += " (pass --token or set MCPWATCH_TOKEN)"
	}
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, strings.ReplaceAll(msg, "\n", " "))
	return queryExitFailed
}

// printList prints a list answer: the API's JSON body with -o json, else a table, or a note on
// stderr when the list is empty.
func (c *queryCmd) printList(body any, n int, what string, table func() error) int {
	var err error
	switch {
	case c.format == outputJSON:
		err = printJSON(c.stdout, body)
	case n == 0:
		fmt.Fprintf(c.stderr, "No %s found.\n", what)
	default:
		err = table()
	}
	if err != nil {
		return c.fail(err)
	}
	return queryExitOK
}

func (c *queryCmd) client() (*api.Client, error) {
	base := cmp.Or(c.apiURL, os.Getenv("MCPWATCH_API"), defaultAPIURL)
	token := cmp.Or(c.token, os.Getenv("MCPWATCH_TOKEN"))
	return api.NewClient(base, token, nil)
}

// queryTimeFlag holds a --since/--until value, parsed once flags are read.
type queryTimeFlag struct{ s string }

func (f *queryTimeFlag) String() string     { return f.s }
func (f *queryTimeFlag) Set(s string) error { f.s = s; return nil }

func (c *queryCmd) times(since, until *queryTimeFlag) (time.Time, time.Time, int, bool) {
	now := time.Now()
	var ts [2]time.Time
	for i, f := range []struct {
		name string
		v    *queryTimeFlag
	}{{"since", since}, {"until", until}} {
		if f.v.s == "" {
			continue
		}
		t, err := api.ParseTime(f.v.s, now)
		if err != nil {
			return time.Time{}, time.Time{}, c.usageError("--%s: %v", f.name, err), false
		}
		ts[i] = t
	}
	if !ts[0].IsZero() && !ts[1].IsZero() && !ts[1].After(ts[0]) {
		return time.Time{}, time.Time{}, c.usageError("--until: must be after --since"), false
	}
	return ts[0], ts[1], queryExitOK, true
}

func (c *queryCmd) checkLimit(n int) (int, bool) {
	if n < 0 || n > store.MaxLimit {
		return c.usageError("--limit: must be from 1 to %d (0 means the server's default of %d)", store.MaxLimit, store.DefaultLimit), false
	}
	return queryExitOK, true
}

func (c *queryCmd) noArgs(positional []string) (int, bool) {
	if len(positional) > 0 {
		return c.usageError("unexpected argument %q", positional[0]), false
	}
	return queryExitOK, true
}

func sessionsList(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch sessions list [--agent A] [--server S] [--since T] [--until T] [--limit N] [flags]"
	var q store.SessionQuery
	var since, until queryTimeFlag
	c.fs.StringVar(&q.AgentID, "agent", "", "only sessions of this agent `id`")
	c.fs.StringVar(&q.ServerID, "server", "", "only sessions with this MCP server `id`")
	c.fs.Var(&since, "since", "only sessions active at or after `T` (RFC 3339, date, or 15m/2h/7d ago)")
	c.fs.Var(&until, "until", "only sessions that started before `T`")
	c.fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most `N` sessions (default %d)", store.DefaultLimit))
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs(pos); !ok {
		return code
	}
	if code, ok := c.checkLimit(q.Limit); !ok {
		return code
	}
	if q.Since, q.Until, code, ok = c.times(&since, &until); !ok {
		return code
	}
	cl, err := c.client()
	if err != nil {
		return c.usageError("--api: %v", err)
	}
	sessions, err := cl.Sessions(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	return c.printList(api.SessionsResponse{Sessions: sessions}, len(sessions), "sessions",
		func() error { return printSessions(c.stdout, sessions) })
}

// sessionShowJSON is `sessions show -o json`: the summary and the events endpoint's body.
type sessionShowJSON struct {
	Session store.Session   `json:"session"`
	Events  []schemas.Event `json:"events"`
}

func sessionsShow(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch sessions show ID [--limit N] [flags]"
	var limit int
	c.fs.IntVar(&limit, "limit", 0, fmt.Sprintf("at most `N` events, oldest first (default %d)", store.DefaultLimit))
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("want exactly one session ID, got %d arguments", len(pos))
	}
	if code, ok := c.checkLimit(limit); !ok {
		return code
	}
	cl, err := c.client()
	if err != nil {
		return c.usageError("--api: %v", err)
	}
	sess, err := cl.Session(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	events, err := cl.SessionEvents(ctx, pos[0], limit)
	if err != nil {
		return c.fail(err)
	}
	if c.format == outputJSON {
		err = printJSON(c.stdout, sessionShowJSON{Session: sess, Events: events})
	} else {
		err = printSession(c.stdout, sess, events)
	}
	if err != nil {
		return c.fail(err)
	}
	return queryExitOK
}

func anomaliesList(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch anomalies list [--agent A] [--kind K] [--min-severity S] [--since T] [--until T] [--limit N] [flags]"
	var q store.AnomalyQuery
	var since, until queryTimeFlag
	var minSeverity string
	c.fs.StringVar(&q.AgentID, "agent", "", "only anomalies of this agent `id`")
	c.fs.StringVar(&q.Kind, "kind", "", "only anomalies of this `kind`, e.g. new_tool")
	c.fs.StringVar(&minSeverity, "min-severity", "", "only anomalies at least this `severe`: info, low, medium, high or critical")
	c.fs.Var(&since, "since", "only anomalies last seen at or after `T` (RFC 3339, date, or 15m/2h/7d ago)")
	c.fs.Var(&until, "until", "only anomalies first seen before `T`")
	c.fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most `N` anomalies (default %d)", store.DefaultLimit))
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs(pos); !ok {
		return code
	}
	if code, ok := c.checkLimit(q.Limit); !ok {
		return code
	}
	q.MinSeverity = schemas.Severity(minSeverity)
	if minSeverity != "" && q.MinSeverity.Rank() < 0 {
		return c.usageError("--min-severity: must be one of info, low, medium, high, critical, got %q", minSeverity)
	}
	if q.Since, q.Until, code, ok = c.times(&since, &until); !ok {
		return code
	}
	cl, err := c.client()
	if err != nil {
		return c.usageError("--api: %v", err)
	}
	anomalies, err := cl.Anomalies(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	return c.printList(api.AnomaliesResponse{Anomalies: anomalies}, len(anomalies), "anomalies",
		func() error { return printAnomalies(c.stdout, anomalies) })
}
