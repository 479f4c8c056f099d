package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Output formats of the query commands.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// writeJSON prints v indented, for scripts (jq and friends).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; cells are sanitised, so data captured from untrusted agents
// and servers cannot break the layout or send escape sequences to the terminal.
type textTable struct{ tw *tabwriter.Writer }

func newTextTable(w io.Writer, headers ...string) *textTable {
	t := &textTable{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(headers, "\t"))
	return t
}

func (t *textTable) row(cells ...string) {
	for i, c := range cells {
		cells[i] = tableCell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *textTable) flush() error { return t.tw.Flush() }

// cell shows "-" for empty values and escapes control, format and invalid bytes Go-style.
func tableCell(s string) string {
	if s == "" {
		return "-"
	}
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// fmtTime is UTC RFC 3339 without sub-seconds; "-" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// fmtLatency is milliseconds with one decimal; notifications have none.
func fmtLatency(e schemas.Event) string {
	if e.Kind == schemas.KindNotification {
		return ""
	}
	return strconv.FormatFloat(float64(e.LatencyMicros)/1000, 'f', 1, 64)
}

func fmtStatus(e schemas.Event) string {
	if e.ErrorCode != 0 {
		return fmt.Sprintf("%s %d", e.Status, e.ErrorCode)
	}
	return string(e.Status)
}

func fmtFlags(flags []schemas.Flag) string {
	var parts []string
	for _, f := range flags {
		parts = append(parts, f.Type+"("+string(f.Severity)+")")
	}
	return strings.Join(parts, ",")
}

func printSessions(w io.Writer, sessions []store.Session) error {
	t := newTextTable(w, "SESSION", "AGENT", "SERVER", "CLIENT", "FIRST SEEN", "LAST SEEN", "EVENTS", "ERRORS", "TOOLS")
	for _, s := range sessions {
		t.row(s.ID, s.AgentID, s.ServerID, s.ClientName, fmtTime(s.FirstSeen), fmtTime(s.LastSeen),
			strconv.Itoa(s.Events), strconv.Itoa(s.Errors), strings.Join(s.Tools, ","))
	}
	return t.flush()
}

// printSession writes the summary as "key: value" lines, then the events as a timeline.
func printSession(w io.Writer, s store.Session, events []schemas.Event) error {
	summary := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, kv := range [][2]string{
		{"Session:", s.ID},
		{"Agent:", s.AgentID},
		{"Server:", s.ServerID},
		{"Client:", s.ClientName},
		{"Protocol:", s.ProtocolVersion},
		{"First seen:", fmtTime(s.FirstSeen)},
		{"Last seen:", fmtTime(s.LastSeen)},
		{"Events:", fmt.Sprintf("%d (%d errors)", s.Events, s.Errors)},
		{"Tools:", strings.Join(s.Tools, ", ")},
	} {
		fmt.Fprintf(summary, "%s\t%s\n", kv[0], tableCell(kv[1]))
	}
	if err := summary.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(events) == 0 {
		fmt.Fprintln(w, "No events.")
		return nil
	}
	t := newTextTable(w, "TIME", "DIR", "METHOD", "TARGET", "STATUS", "LATENCY (ms)", "REQ BYTES", "RESP BYTES", "FLAGS")
	for _, e := range events {
		t.row(fmtTime(e.ObservedAt), string(e.Direction), e.Method, e.Target, fmtStatus(e), fmtLatency(e),
			strconv.Itoa(e.RequestBytes), strconv.Itoa(e.ResponseBytes), fmtFlags(e.Flags))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(events) < s.Events {
		fmt.Fprintf(w, "\nShowing the first %d of %d events; use --limit to see more.\n", len(events), s.Events)
	}
	return nil
}

func printAnomalies(w io.Writer, anomalies []schemas.Anomaly) error {
	t := newTextTable(w, "LAST SEEN", "SEVERITY", "SCORE", "AGENT", "SESSION", "KIND", "SUBJECT", "COUNT", "TITLE")
	for _, a := range anomalies {
		sev := string(a.Severity)
		if a.Learning {
			sev += " (learning)"
		}
		t.row(fmtTime(a.LastSeen), sev, strconv.FormatFloat(a.Score, 'f', 0, 64), a.AgentID, a.SessionID,
			a.Kind, a.Subject, strconv.Itoa(a.Count), a.Title)
	}
	return t.flush()
}
