package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
	outputCSV   = "csv"
)

// printJSON prints v indented, for scripts (jq and friends).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// textTable writes aligned columns, two spaces apart; cells are sanitised, so data captured
// from untrusted agents and servers cannot break the layout or send escape sequences to the
// terminal. Between rows it can hold free lines (a timeline's anomaly markers), which do not
// take part in the alignment.
type textTable struct {
	w     io.Writer
	lines []tableLine
	width []int
}

type tableLine struct {
	cells []string // nil for a free line
	text  string
}

func newTextTable(w io.Writer, headers ...string) *textTable {
	t := &textTable{w: w}
	t.add(headers)
	return t
}

func (t *textTable) add(cells []string) {
	for i, c := range cells {
		if i == len(t.width) {
			t.width = append(t.width, 0)
		}
		t.width[i] = max(t.width[i], utf8.RuneCountInString(c))
	}
	t.lines = append(t.lines, tableLine{cells: cells})
}

func (t *textTable) row(cells ...string) {
	for i, c := range cells {
		cells[i] = tableCell(c)
	}
	t.add(cells)
}

// line adds a free line (sanitised).
func (t *textTable) line(s string) { t.lines = append(t.lines, tableLine{text: sanitize(s)}) }

func (t *textTable) flush() error {
	var b strings.Builder
	for _, l := range t.lines {
		if l.cells == nil {
			b.WriteString(l.text)
			b.WriteByte('\n')
			continue
		}
		for i, c := range l.cells {
			b.WriteString(c)
			if i < len(l.cells)-1 {
				b.WriteString(strings.Repeat(" ", t.width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// tableCell shows "-" for empty values, and sanitizes the rest.
func tableCell(s string) string {
	if s == "" {
		return "-"
	}
	return sanitize(s)
}

// sanitize escapes control, format and invalid bytes Go-style.
func sanitize(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// keyValues writes "Key: value" lines with aligned values.
func keyValues(w io.Writer, kvs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, kv := range kvs {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], tableCell(kv[1]))
	}
	return tw.Flush()
}

// fmtTime is UTC RFC 3339 without sub-seconds; "" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// csvTime is UTC RFC 3339 with all the precision there is.
func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
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

// fmtBytes writes sizes as people read them: 812 B, 4.1 KB, 52 MB (as anomaly explanations do).
func fmtBytes(n float64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	if i == 0 || n >= 10 {
		return strconv.FormatFloat(n, 'f', 0, 64) + " " + units[i]
	}
	return strconv.FormatFloat(n, 'f', 1, 64) + " " + units[i]
}

// fmtOffset is a timeline offset: +MM:SS.mmm, or +H:MM:SS.mmm from an hour on.
func fmtOffset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	ms := d.Milliseconds()
	h, m, s, frac := ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000
	if h > 0 {
		return fmt.Sprintf("%s%d:%02d:%02d.%03d", sign, h, m, s, frac)
	}
	return fmt.Sprintf("%s%02d:%02d.%03d", sign, m, s, frac)
}

func fmtScore(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }

func fmtSeverity(a schemas.Anomaly) string {
	if a.Learning {
		return string(a.Severity) + " (learning)"
	}
	return string(a.Severity)
}

func fmtAnomalyCount(n int, maxScore float64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d (max %s)", n, fmtScore(maxScore))
}

func printSessions(w io.Writer, sessions []store.Session) error {
	t := newTextTable(w, "SESSION", "AGENT", "SERVER", "CLIENT", "FIRST SEEN", "LAST SEEN", "EVENTS", "ERRORS", "ANOMALIES", "TOOLS")
	for _, s := range sessions {
		t.row(s.ID, s.AgentID, s.ServerID, s.ClientName, fmtTime(s.FirstSeen), fmtTime(s.LastSeen),
			strconv.Itoa(s.Events), strconv.Itoa(s.Errors), fmtAnomalyCount(s.Anomalies, s.MaxScore), strings.Join(s.Tools, ","))
	}
	return t.flush()
}

// printSession writes the summary as "key: value" lines, then the events as a timeline with
// the session's anomalies marked where they happened.
func printSession(w io.Writer, s store.Session, events []schemas.Event, anomalies []schemas.Anomaly) error {
	anoms := "none"
	if s.Anomalies > 0 {
		anoms = fmt.Sprintf("%d (max score %s)", s.Anomalies, fmtScore(s.MaxScore))
	}
	if err := keyValues(w, [][2]string{
		{"Session:", s.ID},
		{"Agent:", s.AgentID},
		{"Server:", s.ServerID},
		{"Client:", s.ClientName},
		{"Protocol:", s.ProtocolVersion},
		{"First seen:", fmtTime(s.FirstSeen)},
		{"Last seen:", fmtTime(s.LastSeen) + later(s.LastSeen.Sub(s.FirstSeen))},
		{"Events:", fmt.Sprintf("%d (%s)", s.Events, plural(s.Errors, "error"))},
		{"Tools:", strings.Join(s.Tools, ", ")},
		{"Anomalies:", anoms},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(events) == 0 {
		fmt.Fprintln(w, "No events.")
		return nil
	}
	before, after, beyond := placeAnomalies(events, anomalies, len(events) < s.Events)
	t := newTextTable(w, "OFFSET", "TIME (UTC)", "DIR", "METHOD", "TARGET", "STATUS", "LATENCY (ms)", "REQ", "RESP", "FLAGS")
	for _, a := range before {
		t.line(anomalyMarker(a))
	}
	start := events[0].ObservedAt
	for i, e := range events {
		t.row(fmtOffset(e.ObservedAt.Sub(start)), e.ObservedAt.UTC().Format("15:04:05.000"), string(e.Direction), e.Method, e.Target,
			fmtStatus(e), fmtLatency(e), fmtBytes(float64(e.RequestBytes)), fmtBytes(float64(e.ResponseBytes)), fmtFlags(e.Flags))
		for _, a := range after[i] {
			t.line(anomalyMarker(a))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(events) < s.Events {
		fmt.Fprintf(w, "\nShowing the first %d of %d events; use --limit to see more.\n", len(events), s.Events)
	}
	if len(beyond) > 0 {
		fmt.Fprintln(w, "\nAnomalies after the events shown:")
		for _, a := range beyond {
			fmt.Fprintln(w, sanitize(anomalyMarker(a)))
		}
	}
	return nil
}

// later is " (3m26s later)", or nothing for a session of one instant.
func later(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " (" + d.Round(time.Millisecond).String() + " later)"
}

// anomalyMarker is an anomaly's line in a timeline (the title names the subject).
func anomalyMarker(a schemas.Anomaly) string {
	return fmt.Sprintf("   >> %s %s %s: %s [%s]", fmtSeverity(a), fmtScore(a.Score), a.Kind, a.Title, a.ID)
}

// placeAnomalies decides where a timeline marks each anomaly: after the last event shown that
// it cites as evidence, else after the last event observed at or before its first sighting
// (before the first event when it precedes them all). When the events are truncated, an
// anomaly first seen after the last event shown goes to beyond.
func placeAnomalies(events []schemas.Event, anomalies []schemas.Anomaly, truncated bool) (before []schemas.Anomaly, after map[int][]schemas.Anomaly, beyond []schemas.Anomaly) {
	after = map[int][]schemas.Anomaly{}
	pos := make(map[string]int, len(events))
	for i, e := range events {
		pos[e.ID] = i
	}
	// Oldest first, so markers after one event read in order.
	sorted := slices.Clone(anomalies)
	slices.SortStableFunc(sorted, func(a, b schemas.Anomaly) int { return a.FirstSeen.Compare(b.FirstSeen) })
	for _, a := range sorted {
		at := -1
		for _, id := range a.EvidenceEventIDs {
			if i, ok := pos[id]; ok && i > at {
				at = i
			}
		}
		if at < 0 {
			last := events[len(events)-1].ObservedAt
			if truncated && a.FirstSeen.After(last) {
				beyond = append(beyond, a)
				continue
			}
			at = -1
			for i, e := range events {
				if !e.ObservedAt.After(a.FirstSeen) {
					at = i
				}
			}
		}
		if at < 0 {
			before = append(before, a)
			continue
		}
		after[at] = append(after[at], a)
	}
	return before, after, beyond
}

func printAnomalies(w io.Writer, anomalies []schemas.Anomaly) error {
	t := newTextTable(w, "LAST SEEN", "SEVERITY", "SCORE", "AGENT", "SESSION", "KIND", "SUBJECT", "COUNT", "ID", "TITLE")
	for _, a := range anomalies {
		t.row(fmtTime(a.LastSeen), fmtSeverity(a), fmtScore(a.Score), a.AgentID, a.SessionID,
			a.Kind, a.Subject, strconv.Itoa(a.Count), a.ID, a.Title)
	}
	return t.flush()
}

// printAnomaly writes one anomaly in full; hint adds how to see its session's timeline.
func printAnomaly(w io.Writer, a schemas.Anomaly, hint bool) error {
	learning := "no"
	if a.Learning {
		learning = "yes: the agent's baseline is still warming up, so it is not alerted"
	}
	x := a.Explanation
	model := x.Model
	if x.Probability > 0 {
		model += fmt.Sprintf(" (probability %.2g)", x.Probability)
	}
	kvs := [][2]string{
		{"Anomaly:", a.ID},
		{"Title:", a.Title},
		{"Severity:", fmt.Sprintf("%s (score %s)", a.Severity, fmtScore(a.Score))},
		{"Kind:", a.Kind},
		{"Subject:", a.Subject},
		{"Agent:", a.AgentID},
		{"Server:", a.ServerID},
		{"Session:", a.SessionID},
		{"First seen:", fmtTime(a.FirstSeen)},
		{"Last seen:", fmt.Sprintf("%s (seen %s)", fmtTime(a.LastSeen), plural(a.Count, "time"))},
		{"Learning:", learning},
		{"Tags:", strings.Join(a.Tags, ", ")},
		{"Summary:", x.Summary},
		{"Observed:", x.Observed},
		{"Typical:", x.Typical},
		{"Model:", model},
		{"Evidence:", strings.Join(a.EvidenceEventIDs, ", ")},
	}
	// Optional fields the anomaly lacks are left out.
	kvs = slices.DeleteFunc(kvs, func(kv [2]string) bool {
		return kv[1] == "" && kv[0] != "Session:" && kv[0] != "Title:"
	})
	if err := keyValues(w, kvs); err != nil {
		return err
	}
	if a.SessionID != "" && hint {
		fmt.Fprintf(w, "\nTimeline: mcpwatch anomalies show %s --timeline (or mcpwatch sessions show %s)\n", shellQuote(a.ID), shellQuote(a.SessionID))
	}
	return nil
}

// plural writes "1 error", "2 errors", "1 anomaly", "3 anomalies".
func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	if strings.HasSuffix(one, "y") {
		return strconv.Itoa(n) + " " + strings.TrimSuffix(one, "y") + "ies"
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// shellQuote quotes s for a shell command line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < utf8.RuneSelf && (r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(sanitize(s), "'", `'\''`) + "'"
}

func printAgents(w io.Writer, agents []store.Agent) error {
	t := newTextTable(w, "AGENT", "RISK", "ANOMALIES", "EVENTS", "ERRORS", "SESSIONS", "LAST SEEN", "SERVERS", "TOOLS")
	for _, a := range agents {
		t.row(a.ID, strconv.FormatFloat(a.Risk, 'f', 1, 64), fmtAnomalyCount(a.Anomalies, a.MaxScore), strconv.Itoa(a.Events),
			strconv.Itoa(a.Errors), strconv.Itoa(a.Sessions), fmtTime(a.LastSeen), strings.Join(a.Servers, ","), strings.Join(a.Tools, ","))
	}
	return t.flush()
}

// printAgent writes agents show: the summary, the baseline and the latest anomalies.
func printAgent(w io.Writer, s agentShowJSON, now time.Time) error {
	a := s.Agent
	risk := strconv.FormatFloat(a.Risk, 'f', 1, 64)
	if a.Anomalies > 0 {
		risk += fmt.Sprintf(" (%s, max score %s)", plural(a.Anomalies, "anomaly"), fmtScore(a.MaxScore))
	} else {
		risk += " (no anomalies)"
	}
	if err := keyValues(w, [][2]string{
		{"Agent:", a.ID},
		{"Risk:", risk},
		{"First seen:", fmtTime(a.FirstSeen)},
		{"Last seen:", fmtTime(a.LastSeen)},
		{"Events:", fmt.Sprintf("%d (%s) in %s", a.Events, plural(a.Errors, "error"), plural(a.Sessions, "session"))},
		{"Servers:", strings.Join(a.Servers, ", ")},
		{"Tools:", strings.Join(a.Tools, ", ")},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if p := s.Profile; p == nil {
		fmt.Fprintln(w, "Baseline: none saved yet (the detector saves baselines every 30s by default).")
	} else {
		state := "warmed up"
		if p.Learning {
			state = "still learning: its anomalies are not alerted yet"
		}
		since := ""
		if p.FirstSeen != nil {
			since = fmt.Sprintf(", %d requests since %s", p.Requests, fmtTime(*p.FirstSeen))
		}
		fmt.Fprintf(w, "Baseline (saved %s; %s%s)\n", fmtTime(p.UpdatedAt), state, since)
		var kvs [][2]string
		if r := s.RecentRate; r != nil {
			hour := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.HourOfWeek) * time.Hour) // a Monday
			where := "within the band"
			switch {
			case r.PerMinute > r.Upper:
				where = "ABOVE the band"
			case r.PerMinute < r.Lower:
				where = "below the band"
			}
			kvs = append(kvs,
				[2]string{"Rate band:", fmt.Sprintf("%s %s–%02d:00 UTC: %s–%s %s, expected %s",
					hour.Weekday(), hour.Format("15:04"), (hour.Hour()+1)%24, fmtRate(r.Lower), fmtRate(r.Upper), p.Rate.Unit, fmtRate(r.Expected))},
				[2]string{"Last hour:", fmt.Sprintf("%s %s (%d calls since %s): %s", fmtRate(r.PerMinute), p.Rate.Unit, r.Calls, r.Since.Format("15:04"), where)})
		} else if p.Rate != nil {
			h := hourOfWeek(now)
			for _, b := range p.Rate.Band {
				if b.HourOfWeek == h {
					kvs = append(kvs, [2]string{"Rate band:", fmt.Sprintf("this hour: %s–%s %s, expected %s", fmtRate(b.Lower), fmtRate(b.Upper), p.Rate.Unit, fmtRate(b.Expected))})
				}
			}
		}
		if z := p.Sizes; z != nil {
			var parts []string
			if q := z.RequestBytes; q != nil {
				parts = append(parts, fmt.Sprintf("requests p50 %s, p90 %s, p99 %s", fmtBytes(q.P50), fmtBytes(q.P90), fmtBytes(q.P99)))
			}
			if q := z.ResponseBytes; q != nil {
				parts = append(parts, fmt.Sprintf("responses p50 %s, p90 %s, p99 %s", fmtBytes(q.P50), fmtBytes(q.P90), fmtBytes(q.P99)))
			}
			kvs = append(kvs, [2]string{"Sizes:", strings.Join(parts, "; ")})
		}
		kvs = append(kvs, [2]string{"Known tools:", strings.Join(p.KnownTools, ", ")})
		if err := keyValues(w, kvs); err != nil {
			return err
		}
		if len(p.TopTools) > 0 {
			fmt.Fprintln(w)
			t := newTextTable(w, "TOP TOOLS", "CALLS", "SHARE", "SESSIONS")
			for _, u := range p.TopTools {
				t.row(u.Tool, strconv.Itoa(u.Calls), strconv.FormatFloat(100*u.Share, 'f', 1, 64)+"%", strconv.Itoa(u.Sessions))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if len(p.TopTransitions) > 0 {
			fmt.Fprintln(w)
			t := newTextTable(w, "TOP TRANSITIONS", "COUNT", "P(TO|FROM)")
			for _, tr := range p.TopTransitions {
				t.row(tr.From+" → "+tr.To, strconv.Itoa(tr.Count), strconv.FormatFloat(tr.Probability, 'f', 2, 64))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(w)
	if len(s.Anomalies) == 0 {
		fmt.Fprintln(w, "No anomalies recorded for this agent.")
		return nil
	}
	fmt.Fprintln(w, "Latest anomalies:")
	return printAnomalies(w, s.Anomalies)
}

// fmtRate writes a rate with the precision it deserves: 212, 3.5, 0.25.
func fmtRate(x float64) string {
	switch a := max(x, -x); {
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a == 0:
		return "0"
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

// CSV output. Text cells that a spreadsheet would run as a formula (=, +, -, @ first) get a
// leading apostrophe: tool names and titles come from untrusted agents and servers.

func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil { // WriteAll flushes
		return fmt.Errorf("cannot write CSV: %w", err)
	}
	return nil
}

func csvList(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = csvText(s)
	}
	return strings.Join(out, ";")
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func errorCode(e schemas.Event) string {
	if e.ErrorCode == 0 {
		return ""
	}
	return strconv.Itoa(e.ErrorCode)
}

func csvSessions(w io.Writer, sessions []store.Session) error {
	rows := make([][]string, 0, len(sessions))
	for _, s := range sessions {
		rows = append(rows, []string{csvText(s.ID), csvText(s.AgentID), csvText(s.ServerID), csvText(s.ClientName), csvText(s.ProtocolVersion),
			csvTime(s.FirstSeen), csvTime(s.LastSeen), strconv.Itoa(s.Events), strconv.Itoa(s.Errors), strconv.Itoa(s.Anomalies), num(s.MaxScore), csvList(s.Tools)})
	}
	return writeCSV(w, []string{"session_id", "agent_id", "server_id", "client_name", "protocol_version", "first_seen", "last_seen",
		"events", "errors", "anomalies", "max_score", "tools"}, rows)
}

func csvAnomalies(w io.Writer, anomalies []schemas.Anomaly) error {
	rows := make([][]string, 0, len(anomalies))
	for _, a := range anomalies {
		rows = append(rows, []string{csvText(a.ID), csvTime(a.FirstSeen), csvTime(a.LastSeen), string(a.Severity), num(a.Score),
			strconv.FormatBool(a.Learning), csvText(a.AgentID), csvText(a.SessionID), csvText(a.ServerID), csvText(a.Kind), csvText(a.Subject),
			strconv.Itoa(a.Count), csvText(a.Title), csvText(a.Explanation.Summary), csvList(a.EvidenceEventIDs)})
	}
	return writeCSV(w, []string{"anomaly_id", "first_seen", "last_seen", "severity", "score", "learning", "agent_id", "session_id",
		"server_id", "kind", "subject", "count", "title", "summary", "evidence_event_ids"}, rows)
}

func csvAgents(w io.Writer, agents []store.Agent) error {
	rows := make([][]string, 0, len(agents))
	for _, a := range agents {
		rows = append(rows, []string{csvText(a.ID), num(a.Risk), strconv.Itoa(a.Anomalies), num(a.MaxScore), strconv.Itoa(a.Events),
			strconv.Itoa(a.Errors), strconv.Itoa(a.Sessions), csvTime(a.FirstSeen), csvTime(a.LastSeen), csvList(a.Servers), csvList(a.Tools)})
	}
	return writeCSV(w, []string{"agent_id", "risk", "anomalies", "max_score", "events", "errors", "sessions", "first_seen", "last_seen",
		"servers", "tools"}, rows)
}

// csvTimeline writes a session's events, each with the ids of the anomalies the table marks
// after it.
func csvTimeline(w io.Writer, events []schemas.Event, anomalies []schemas.Anomaly) error {
	var after map[int][]schemas.Anomaly
	if len(events) > 0 {
		_, after, _ = placeAnomalies(events, anomalies, false)
	}
	rows := make([][]string, 0, len(events))
	for i, e := range events {
		var ids []string
		for _, a := range after[i] {
			ids = append(ids, a.ID)
		}
		rows = append(rows, []string{csvText(e.ID), csvTime(e.ObservedAt), num(e.ObservedAt.Sub(events[0].ObservedAt).Seconds()),
			string(e.Direction), string(e.Kind), csvText(e.Method), csvText(e.Target), string(e.Status), errorCode(e),
			num(float64(e.LatencyMicros) / 1000), strconv.Itoa(e.RequestBytes), strconv.Itoa(e.ResponseBytes), csvText(fmtFlags(e.Flags)), csvList(ids)})
	}
	return writeCSV(w, []string{"event_id", "observed_at", "offset_seconds", "direction", "kind", "method", "target", "status",
		"error_code", "latency_ms", "request_bytes", "response_bytes", "flags", "anomaly_ids"}, rows)
}
