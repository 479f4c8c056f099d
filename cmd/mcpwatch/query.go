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

// The query commands (sessions, anomalies, agents) talk to a running mcpwatch over its HTTP API.

const defaultAPIURL = "http://127.0.0.1:7410"

// Exit codes of the query commands.
const (
	queryExitOK       = 0
	queryExitFailed   = 1 // the API could not be reached or answered an error
	queryExitUsage    = 2 // the command line was wrong
	queryExitNotFound = 4 // the session, anomaly or agent asked for does not exist
)

// queryCommon is the help text every query command ends with.
const queryCommon = `T is an RFC 3339 time (2026-11-03T02:00:00Z), a date (2026-11-03) or a duration
back from now (15m, 2h, 7d). Output is a table, or -o json (the API's answer) or
-o csv (for spreadsheets and tickets). The API is --api, else $MCPWATCH_API, else
` + defaultAPIURL + `; a bearer token is --token, else $MCPWATCH_TOKEN.

Exit status: 0 done (an empty list too), 1 the API could not be reached or failed,
2 bad command line, 4 the session, anomaly or agent does not exist.
`

const sessionsUsage = `Usage:
  mcpwatch sessions list [--agent A] [--server S] [--tool T] [--since T] [--until T]
                         [--min-score N] [--limit N] [--all] [flags]
  mcpwatch sessions show ID [--limit N] [flags]

List recorded MCP sessions (most recently active first), or show one session as a
timeline: every event with its time offset, call, status, latency, sizes and flags,
and the session's anomalies marked where they happened.
Run "mcpwatch sessions list --help" for every flag.

` + queryCommon

const anomaliesUsage = `Usage:
  mcpwatch anomalies list [--agent A] [--server S] [--session ID] [--kind K]
                          [--min-severity S] [--min-score N] [--since T] [--until T]
                          [--limit N] [--all] [flags]
  mcpwatch anomalies show ID [--timeline] [flags]

List detected anomalies (most recently seen first), or show one with its
explanation and evidence (--timeline: and the timeline of its session).
S is one of info, low, medium, high, critical.
Run "mcpwatch anomalies list --help" for every flag.

` + queryCommon

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
		"show": anomaliesShow,
	}, args, stdout, stderr)
}

type querySubcmd func(ctx context.Context, c *queryCmd, args []string) int

// queryNow is the query commands' clock (relative --since/--until, the current hour); tests
// set it.
var queryNow = time.Now

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
		now:    queryNow,
	}
	c.fs.SetOutput(io.Discard) // parse errors and help are printed by parse, to the right stream
	c.fs.StringVar(&c.apiURL, "api", "", "mcpwatch API `URL` (default $MCPWATCH_API, else "+defaultAPIURL+")")
	c.fs.StringVar(&c.token, "token", "", "bearer `token` for the API (default $MCPWATCH_TOKEN)")
	c.fs.StringVar(&c.format, "o", outputTable, "output `format`: table, json or csv")
	return run(ctx, c, args[1:])
}

// queryCmd is one query subcommand: its flags, streams and the API it talks to.
type queryCmd struct {
	name           string
	synopsis       string
	about          string // a paragraph under the synopsis in --help
	fs             *flag.FlagSet
	stdout, stderr io.Writer
	apiURL, token  string
	format         string
	now            func() time.Time
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
	switch c.format {
	case outputTable, outputJSON, outputCSV:
	default:
		return nil, c.usageError("-o: must be table, json or csv, got %q", c.format), false
	}
	return positional, queryExitOK, true
}

func (c *queryCmd) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  %s\n\n", c.synopsis)
	if c.about != "" {
		fmt.Fprintf(w, "%s\n\n", c.about)
	}
	fmt.Fprintln(w, "Flags:")
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\n%s", queryCommon)
}

func (c *queryCmd) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(c.stderr, "Run '%s --help' for usage.\n", c.name)
	return queryExitUsage
}

// fail reports an API or output error on one line; a 404 exits with queryExitNotFound.
func (c *queryCmd) fail(err error) int {
	msg := err.Error()
	code := queryExitFailed
	var apiErr *api.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.StatusCode {
		case http.StatusUnauthorized:
			msg += " (pass --token or set MCPWATCH_TOKEN)"
		case http.StatusNotFound:
			code = queryExitNotFound
		}
	}
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, strings.ReplaceAll(msg, "\n", " "))
	return code
}

// printList prints a list answer: the API's JSON body with -o json, CSV with -o csv, else a
// table, or a note on stderr when the list is empty.
func (c *queryCmd) printList(body any, n int, what string, table, csv func() error) int {
	var err error
	switch {
	case c.format == outputJSON:
		err = printJSON(c.stdout, body)
	case c.format == outputCSV:
		err = csv()
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

// client is the API client of --api and --token; when ok is false, the command should exit
// with code.
func (c *queryCmd) client() (cl *api.Client, code int, ok bool) {
	base := cmp.Or(c.apiURL, os.Getenv("MCPWATCH_API"), defaultAPIURL)
	token := cmp.Or(c.token, os.Getenv("MCPWATCH_TOKEN"))
	cl, err := api.NewClient(base, token, nil)
	if err != nil {
		return nil, c.usageError("--api: %v", err), false
	}
	return cl, queryExitOK, true
}

// queryTimeFlag holds a --since/--until value, parsed once flags are read.
type queryTimeFlag struct{ s string }

func (f *queryTimeFlag) String() string     { return f.s }
func (f *queryTimeFlag) Set(s string) error { f.s = s; return nil }

func (c *queryCmd) times(since, until *queryTimeFlag) (time.Time, time.Time, int, bool) {
	now := c.now()
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

func (c *queryCmd) checkScore(x float64) (int, bool) {
	if !(x >= 0 && x <= 100) {
		return c.usageError("--min-score: must be from 0 to 100, got %g", x), false
	}
	return queryExitOK, true
}

func (c *queryCmd) noArgs(positional []string) (int, bool) {
	if len(positional) > 0 {
		return c.usageError("unexpected argument %q", positional[0]), false
	}
	return queryExitOK, true
}

// parseNoArgs parses a command line that takes flags only.
func (c *queryCmd) parseNoArgs(args []string) (int, bool) {
	pos, code, ok := c.parse(args)
	if !ok {
		return code, false
	}
	return c.noArgs(pos)
}

// parseID parses a command line that takes flags and one what ID.
func (c *queryCmd) parseID(args []string, what string) (string, int, bool) {
	pos, code, ok := c.parse(args)
	if !ok {
		return "", code, false
	}
	return c.oneID(pos, what)
}

func (c *queryCmd) oneID(positional []string, what string) (string, int, bool) {
	if len(positional) != 1 {
		return "", c.usageError("want exactly one %s ID, got %d arguments", what, len(positional)), false
	}
	return positional[0], queryExitOK, true
}

// allPageSize is the page size of --all when --limit is not given.
const allPageSize = 1000

// fetchList fetches the first page of a list, or with all every page, following next cursors
// until the last and reporting progress on stderr (next is then empty). page fetches the page
// after cursor and returns its rows and the next cursor.
func fetchList[T any](ctx context.Context, c *queryCmd, what string, all bool, page func(cursor string) ([]T, string, error)) ([]T, string, error) {
	if !all {
		return page("")
	}
	var (
		rows   []T
		cursor string
	)
	for {
		more, next, err := page(cursor)
		if err != nil {
			return nil, "", err
		}
		rows = append(rows, more...)
		if next == "" {
			fmt.Fprintf(c.stderr, "%s: fetched %d %s.\n", c.name, len(rows), what)
			return nonNil(rows), "", nil
		}
		fmt.Fprintf(c.stderr, "%s: fetched %d %s, more to come…\n", c.name, len(rows), what)
		cursor = next
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
	}
}

// moreNote tells a table reader that the list goes on.
func (c *queryCmd) moreNote(next, what string) {
	if next != "" && c.format == outputTable {
		fmt.Fprintf(c.stderr, "More %s match: use --all to fetch them all, or a larger --limit.\n", what)
	}
}

func sessionsList(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch sessions list [--agent A] [--server S] [--tool T] [--since T] [--until T] [--min-score N] [--limit N] [--all] [flags]"
	c.about = "Sessions most recently active first. --agent, --server and --tool select sessions\nwith at least one such event; a session is listed whole."
	var q store.SessionQuery
	var since, until queryTimeFlag
	var all bool
	c.fs.StringVar(&q.AgentID, "agent", "", "only sessions of this agent `id`")
	c.fs.StringVar(&q.ServerID, "server", "", "only sessions with this MCP server `id`")
	c.fs.StringVar(&q.Tool, "tool", "", "only sessions that called this `tool`")
	c.fs.Var(&since, "since", "only sessions active at or after `T`")
	c.fs.Var(&until, "until", "only sessions that started before `T`")
	c.fs.Float64Var(&q.MinScore, "min-score", 0, "only sessions with an anomaly scoring at least `N` (0–100)")
	c.fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most `N` sessions (default %d; with --all, per page: default %d)", store.DefaultLimit, allPageSize))
	c.fs.BoolVar(&all, "all", false, "fetch every matching session, following the API's pages")
	code, ok := c.parseNoArgs(args)
	if !ok {
		return code
	}
	if code, ok := c.checkLimit(q.Limit); !ok {
		return code
	}
	if code, ok := c.checkScore(q.MinScore); !ok {
		return code
	}
	if q.Since, q.Until, code, ok = c.times(&since, &until); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	if all {
		q.Limit = cmp.Or(q.Limit, allPageSize)
	}
	var resp api.SessionsResponse
	var err error
	resp.Sessions, resp.NextCursor, err = fetchList(ctx, c, "sessions", all, func(cursor string) ([]store.Session, string, error) {
		page, err := cl.SessionsPage(ctx, q, cursor)
		return page.Sessions, page.NextCursor, err
	})
	if err != nil {
		return c.fail(err)
	}
	code = c.printList(resp, len(resp.Sessions), "sessions",
		func() error { return printSessions(c.stdout, resp.Sessions) },
		func() error { return csvSessions(c.stdout, resp.Sessions) })
	c.moreNote(resp.NextCursor, "sessions")
	return code
}

// sessionShowJSON is `sessions show -o json`: the summary, the events and the anomalies.
type sessionShowJSON struct {
	Session   store.Session     `json:"session"`
	Events    []schemas.Event   `json:"events"`
	Anomalies []schemas.Anomaly `json:"anomalies"`
}

// sessionAnomaliesLimit bounds the anomalies a timeline marks.
const sessionAnomaliesLimit = 1000

func sessionsShow(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch sessions show ID [--limit N] [flags]"
	c.about = "The session's summary, then its events in order: offset from the first event, time\n(UTC), direction, call, status, latency, request and response sizes, flags. Lines\nstarting with >> mark the session's anomalies, after the event they cite as evidence\n(or the last event before they were first seen)."
	var limit int
	c.fs.IntVar(&limit, "limit", 0, fmt.Sprintf("at most `N` events, oldest first (default %d, at most %d)", store.DefaultLimit, store.MaxLimit))
	id, code, ok := c.parseID(args, "session")
	if !ok {
		return code
	}
	if code, ok := c.checkLimit(limit); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	out, err := fetchSession(ctx, cl, id, limit)
	if err != nil {
		return c.fail(err)
	}
	switch c.format {
	case outputJSON:
		err = printJSON(c.stdout, out)
	case outputCSV:
		err = csvTimeline(c.stdout, out.Events, out.Anomalies)
	default:
		err = printSession(c.stdout, out.Session, out.Events, out.Anomalies)
	}
	if err != nil {
		return c.fail(err)
	}
	return queryExitOK
}

// fetchSession gets a session's summary, events and anomalies.
func fetchSession(ctx context.Context, cl *api.Client, id string, limit int) (sessionShowJSON, error) {
	sess, err := cl.Session(ctx, id)
	if err != nil {
		return sessionShowJSON{}, err
	}
	events, err := cl.SessionEvents(ctx, id, limit)
	if err != nil {
		return sessionShowJSON{}, err
	}
	anomalies, err := cl.Anomalies(ctx, store.AnomalyQuery{SessionID: id, Limit: sessionAnomaliesLimit})
	if err != nil {
		return sessionShowJSON{}, err
	}
	return sessionShowJSON{Session: sess, Events: nonNil(events), Anomalies: nonNil(anomalies)}, nil
}

func anomaliesList(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch anomalies list [--agent A] [--server S] [--session ID] [--kind K] [--min-severity S] [--min-score N] [--since T] [--until T] [--limit N] [--all] [flags]"
	c.about = "Anomalies most recently seen first, each in its latest version."
	var q store.AnomalyQuery
	var since, until queryTimeFlag
	var minSeverity string
	var all bool
	c.fs.StringVar(&q.AgentID, "agent", "", "only anomalies of this agent `id`")
	c.fs.StringVar(&q.ServerID, "server", "", "only anomalies involving this MCP server `id`")
	c.fs.StringVar(&q.SessionID, "session", "", "only anomalies recorded in this session `id`")
	c.fs.StringVar(&q.Kind, "kind", "", "only anomalies of this `kind`, e.g. new_tool, rate_spike, unusual_session")
	c.fs.StringVar(&minSeverity, "min-severity", "", "only anomalies at least this `severe`: info, low, medium, high or critical")
	c.fs.Float64Var(&q.MinScore, "min-score", 0, "only anomalies scoring at least `N` (0–100)")
	c.fs.Var(&since, "since", "only anomalies last seen at or after `T`")
	c.fs.Var(&until, "until", "only anomalies first seen before `T`")
	c.fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most `N` anomalies (default %d; with --all, per page: default %d)", store.DefaultLimit, allPageSize))
	c.fs.BoolVar(&all, "all", false, "fetch every matching anomaly, following the API's pages")
	code, ok := c.parseNoArgs(args)
	if !ok {
		return code
	}
	if code, ok := c.checkLimit(q.Limit); !ok {
		return code
	}
	if code, ok := c.checkScore(q.MinScore); !ok {
		return code
	}
	q.MinSeverity = schemas.Severity(minSeverity)
	if minSeverity != "" && q.MinSeverity.Rank() < 0 {
		return c.usageError("--min-severity: must be one of info, low, medium, high, critical, got %q", minSeverity)
	}
	if q.Since, q.Until, code, ok = c.times(&since, &until); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	if all {
		q.Limit = cmp.Or(q.Limit, allPageSize)
	}
	var resp api.AnomaliesResponse
	var err error
	resp.Anomalies, resp.NextCursor, err = fetchList(ctx, c, "anomalies", all, func(cursor string) ([]schemas.Anomaly, string, error) {
		page, err := cl.AnomaliesPage(ctx, q, cursor)
		return page.Anomalies, page.NextCursor, err
	})
	if err != nil {
		return c.fail(err)
	}
	code = c.printList(resp, len(resp.Anomalies), "anomalies",
		func() error { return printAnomalies(c.stdout, resp.Anomalies) },
		func() error { return csvAnomalies(c.stdout, resp.Anomalies) })
	c.moreNote(resp.NextCursor, "anomalies")
	return code
}

// anomalyShowJSON is `anomalies show --timeline -o json`.
type anomalyShowJSON struct {
	Anomaly schemas.Anomaly  `json:"anomaly"`
	Session *sessionShowJSON `json:"session,omitempty"`
}

func anomaliesShow(ctx context.Context, c *queryCmd, args []string) int {
	c.synopsis = "mcpwatch anomalies show ID [--timeline] [flags]"
	c.about = "One anomaly: what was observed against what is typical, its score, the events it\ncites as evidence, and the session it happened in."
	var timeline bool
	var limit int
	c.fs.BoolVar(&timeline, "timeline", false, "also print the timeline of the anomaly's session")
	c.fs.IntVar(&limit, "limit", 0, fmt.Sprintf("with --timeline, at most `N` events (default %d)", store.DefaultLimit))
	id, code, ok := c.parseID(args, "anomaly")
	if !ok {
		return code
	}
	if code, ok := c.checkLimit(limit); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	a, err := cl.Anomaly(ctx, id)
	if err != nil {
		return c.fail(err)
	}
	var sess *sessionShowJSON
	if timeline && a.SessionID != "" {
		s, err := fetchSession(ctx, cl, a.SessionID, limit)
		if err != nil {
			return c.fail(err)
		}
		sess = &s
	}
	switch c.format {
	case outputJSON:
		if timeline {
			err = printJSON(c.stdout, anomalyShowJSON{Anomaly: a, Session: sess})
		} else {
			err = printJSON(c.stdout, a)
		}
	case outputCSV:
		if sess != nil {
			err = csvTimeline(c.stdout, sess.Events, sess.Anomalies)
		} else {
			err = csvAnomalies(c.stdout, []schemas.Anomaly{a})
		}
	default:
		err = printAnomaly(c.stdout, a, !timeline)
		if err == nil && timeline {
			fmt.Fprintln(c.stdout)
			if sess == nil {
				fmt.Fprintln(c.stdout, "The anomaly belongs to no session: there is no timeline to show.")
			} else {
				err = printSession(c.stdout, sess.Session, sess.Events, sess.Anomalies)
			}
		}
	}
	if err != nil {
		return c.fail(err)
	}
	return queryExitOK
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
