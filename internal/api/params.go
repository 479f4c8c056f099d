package api

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// ParseTime parses a query bound: an RFC 3339 timestamp, a date (2006-01-02, midnight UTC), or
// a relative duration meaning now minus it, e.g. 15m, 2h, 1h30m or 7d.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := parseRelative(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 15m, 2h or 7d", s)
	}
	return now.Add(-d), nil
}

// parseRelative accepts Go durations plus a whole-day suffix ("7d"), which Go lacks.
func parseRelative(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("bad day count %q", days)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// paramError is a bad query parameter; it becomes a 400 naming the parameter.
type paramError struct {
	param string
	msg   string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

// query returns r's query parameters, or, when the query string is malformed (a bad %
// escape, say), values holding only a malformedQuery marker for the offending key, which
// newParams turns into a 400 naming it instead of silently ignoring the parameter.
func query(r *http.Request) url.Values {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		return v
	}
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, val, _ := strings.Cut(kv, "=")
		_, kerr := url.QueryUnescape(k)
		_, verr := url.QueryUnescape(val)
		if kerr != nil || verr != nil {
			if kerr != nil {
				k = "query"
			}
			return url.Values{malformedQuery: {k}}
		}
	}
	return url.Values{malformedQuery: {"query"}}
}

// malformedQuery cannot be a real parameter name: ParseQuery unescapes names.
const malformedQuery = "\x00malformed"

// params reads a request's query parameters, rejecting unknown and repeated ones so that a typo
// like ?agnet= fails loudly instead of silently returning unfiltered history.
type params struct {
	values url.Values
	now    time.Time
}

func newParams(q url.Values, now time.Time, allowed ...string) (params, error) {
	if bad, ok := q[malformedQuery]; ok {
		return params{}, &paramError{bad[0], "malformed query string (bad % escape)"}
	}
	for name, vs := range q {
		if !slices.Contains(allowed, name) {
			accepted := "none"
			if len(allowed) > 0 {
				accepted = strings.Join(allowed, ", ")
			}
			return params{}, &paramError{name, fmt.Sprintf("unknown parameter (accepted: %s)", accepted)}
		}
		if len(vs) > 1 {
			return params{}, &paramError{name, "given more than once"}
		}
	}
	return params{values: q, now: now}, nil
}

func (p params) str(name string) string { return p.values.Get(name) }

// oneOf reads a parameter that must be empty or one of choices.
func (p params) oneOf(name string, choices ...string) (string, error) {
	s := p.values.Get(name)
	if s != "" && !slices.Contains(choices, s) {
		return "", &paramError{name, fmt.Sprintf("must be one of %s, got %q", strings.Join(choices, ", "), s)}
	}
	return s, nil
}

func (p params) time(name string) (time.Time, error) {
	s := p.values.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s, p.now)
	if err != nil {
		return time.Time{}, &paramError{name, err.Error()}
	}
	return t.UTC(), nil
}

func (p params) limit() (int, error) {
	s := p.values.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > store.MaxLimit {
		return 0, &paramError{"limit", fmt.Sprintf("must be an integer from 1 to %d, got %q", store.MaxLimit, s)}
	}
	return n, nil
}

// score reads a 0–100 score.
func (p params) score(name string) (float64, error) {
	s := p.values.Get(name)
	if s == "" {
		return 0, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || !(x >= 0 && x <= 100) {
		return 0, &paramError{name, fmt.Sprintf("must be a number from 0 to 100, got %q", s)}
	}
	return x, nil
}

func (p params) severity(name string) (schemas.Severity, error) {
	s := schemas.Severity(p.values.Get(name))
	if s != "" && s.Rank() < 0 {
		return "", &paramError{name, fmt.Sprintf("must be one of info, low, medium, high, critical, got %q", s)}
	}
	return s, nil
}

// timeRange reads since and until and checks their order. When span is not zero and since is
// not given, since is span before until (or before now, without until).
func (p params) timeRange(span time.Duration) (since, until time.Time, err error) {
	if since, err = p.time("since"); err != nil {
		return
	}
	if until, err = p.time("until"); err != nil {
		return
	}
	if since.IsZero() && span > 0 {
		since = cmp.Or(until, p.now.UTC()).Add(-span)
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		err = &paramError{"until", "must be after since"}
	}
	return
}

// rangeAndLimit reads since and until (as timeRange does), then limit.
func (p params) rangeAndLimit(span time.Duration) (since, until time.Time, limit int, err error) {
	if since, until, err = p.timeRange(span); err != nil {
		return
	}
	limit, err = p.limit()
	return
}

const (
	listSessions  = "sessions"
	listAnomalies = "anomalies"
)

func (p params) cursor(list string) (*cursor, error) {
	s := p.values.Get("cursor")
	if s == "" {
		return nil, nil
	}
	c, err := decodeCursor(list, s)
	if err != nil {
		return nil, &paramError{"cursor", err.Error()}
	}
	return &c, nil
}

func sessionQuery(q url.Values, now time.Time) (store.SessionQuery, error) {
	p, err := newParams(q, now, "agent", "server", "tool", "since", "until", "min_score", "limit", "cursor")
	if err != nil {
		return store.SessionQuery{}, err
	}
	sq := store.SessionQuery{AgentID: p.str("agent"), ServerID: p.str("server"), Tool: p.str("tool")}
	if sq.Since, sq.Until, err = p.timeRange(0); err != nil {
		return store.SessionQuery{}, err
	}
	if sq.MinScore, err = p.score("min_score"); err != nil {
		return store.SessionQuery{}, err
	}
	if sq.Limit, err = p.limit(); err != nil {
		return store.SessionQuery{}, err
	}
	c, err := p.cursor(listSessions)
	if err != nil {
		return store.SessionQuery{}, err
	}
	if c != nil {
		sq.After = &store.SessionCursor{LastSeen: c.LastSeen, ID: c.ID}
	}
	return sq, nil
}

func anomalyQuery(q url.Values, now time.Time) (store.AnomalyQuery, error) {
	p, err := newParams(q, now, "agent", "server", "session", "kind", "min_severity", "min_score", "since", "until", "limit", "cursor")
	if err != nil {
		return store.AnomalyQuery{}, err
	}
	aq := store.AnomalyQuery{AgentID: p.str("agent"), ServerID: p.str("server"), SessionID: p.str("session"), Kind: p.str("kind")}
	if aq.MinSeverity, err = p.severity("min_severity"); err != nil {
		return store.AnomalyQuery{}, err
	}
	if aq.MinScore, err = p.score("min_score"); err != nil {
		return store.AnomalyQuery{}, err
	}
	if aq.Since, aq.Until, aq.Limit, err = p.rangeAndLimit(0); err != nil {
		return store.AnomalyQuery{}, err
	}
	c, err := p.cursor(listAnomalies)
	if err != nil {
		return store.AnomalyQuery{}, err
	}
	if c != nil {
		aq.After = &store.AnomalyCursor{LastSeen: c.LastSeen, ID: c.ID}
	}
	return aq, nil
}

func eventsLimit(q url.Values) (int, error) {
	p, err := newParams(q, time.Time{}, "limit")
	if err != nil {
		return 0, err
	}
	return p.limit()
}

// DefaultAgentsSince is how far back the agents endpoints look when since is not given.
const DefaultAgentsSince = 24 * time.Hour

func agentQuery(q url.Values, now time.Time, list bool) (store.AgentQuery, error) {
	allowed := []string{"since", "until"}
	if list {
		allowed = append(allowed, "limit")
	}
	p, err := newParams(q, now, allowed...)
	if err != nil {
		return store.AgentQuery{}, err
	}
	var aq store.AgentQuery
	if aq.Since, aq.Until, aq.Limit, err = p.rangeAndLimit(DefaultAgentsSince); err != nil {
		return store.AgentQuery{}, err
	}
	return aq, nil
}

// Time series: what each metric can be split by and filtered on (as the store accepts).
var (
	seriesBy = map[string][]string{
		"calls":      {"", "agent", "server", "tool"},
		"errors":     {"", "agent", "server", "tool"},
		"anomalies":  {"", "agent", "server", "kind", "severity"},
		"deliveries": {"", "agent", "kind", "severity", "sink", "status"},
	}
	seriesFilters = map[string][]string{
		"calls":      {"agent", "server", "tool"},
		"errors":     {"agent", "server", "tool"},
		"anomalies":  {"agent", "server"},
		"deliveries": {"agent"},
	}
	seriesMetrics = []string{"calls", "errors", "anomalies", "deliveries"}
)

// Time series defaults and bounds.
const (
	DefaultSeriesSince = time.Hour
	DefaultSeriesStep  = time.Minute
	MaxSeriesBuckets   = 10000
)

func seriesQuery(q url.Values, now time.Time) (store.SeriesQuery, error) {
	p, err := newParams(q, now, "metric", "by", "step", "since", "until", "agent", "server", "tool", "limit")
	if err != nil {
		return store.SeriesQuery{}, err
	}
	sq := store.SeriesQuery{Metric: p.str("metric"), By: p.str("by")}
	if sq.Metric == "" {
		return store.SeriesQuery{}, &paramError{"metric", "required: one of " + strings.Join(seriesMetrics, ", ")}
	}
	if _, err := p.oneOf("metric", seriesMetrics...); err != nil {
		return store.SeriesQuery{}, err
	}
	if !slices.Contains(seriesBy[sq.Metric], sq.By) {
		return store.SeriesQuery{}, &paramError{"by", fmt.Sprintf("%s can be split by %s, got %q",
			sq.Metric, strings.Join(seriesBy[sq.Metric][1:], ", "), sq.By)}
	}
	for _, f := range []string{"agent", "server", "tool"} {
		if p.str(f) != "" && !slices.Contains(seriesFilters[sq.Metric], f) {
			return store.SeriesQuery{}, &paramError{f, fmt.Sprintf("%s cannot be filtered by %s (only by %s)",
				sq.Metric, f, strings.Join(seriesFilters[sq.Metric], ", "))}
		}
	}
	sq.AgentID, sq.ServerID, sq.Tool = p.str("agent"), p.str("server"), p.str("tool")
	sq.Step = DefaultSeriesStep
	if s := p.str("step"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second || d%time.Microsecond != 0 {
			return store.SeriesQuery{}, &paramError{"step", fmt.Sprintf("must be a duration of at least 1s, like 1m or 1h, got %q", s)}
		}
		sq.Step = d
	}
	if sq.Since, sq.Until, err = p.timeRange(DefaultSeriesSince); err != nil {
		return store.SeriesQuery{}, err
	}
	if sq.Until.IsZero() {
		sq.Until = p.now.UTC()
		if !sq.Until.After(sq.Since) {
			return store.SeriesQuery{}, &paramError{"since", "must be before now when until is not given"}
		}
	}
	if n := len(bucketStarts(sq.Since, sq.Until, sq.Step)); n > MaxSeriesBuckets {
		return store.SeriesQuery{}, &paramError{"step", fmt.Sprintf("%s from since to until makes %d buckets, more than %d: use a longer step or a shorter range", sq.Step, n, MaxSeriesBuckets)}
	}
	if sq.Limit, err = p.limit(); err != nil {
		return store.SeriesQuery{}, err
	}
	return sq, nil
}

// bucketStarts lists the starts of the buckets covering [since, until): multiples of step since
// the Unix epoch, the first at or before since. It returns at most MaxSeriesBuckets+1 entries
// (enough to tell a range with too many).
func bucketStarts(since, until time.Time, step time.Duration) []time.Time {
	w := step.Microseconds()
	first := since.UnixMicro()
	first -= ((first % w) + w) % w // floor, also before 1970
	var out []time.Time
	for t := first; t < until.UnixMicro() && len(out) <= MaxSeriesBuckets; t += w {
		out = append(out, time.UnixMicro(t).UTC())
	}
	return out
}

// Values endpoint fields and the store's names for them.
var valueFields = map[string]string{"agents": "agent", "servers": "server", "tools": "tool"}

func valuesQuery(q url.Values, now time.Time) (store.ValuesQuery, error) {
	p, err := newParams(q, now, "since", "until", "agent", "limit")
	if err != nil {
		return store.ValuesQuery{}, err
	}
	vq := store.ValuesQuery{AgentID: p.str("agent")}
	if vq.Since, vq.Until, vq.Limit, err = p.rangeAndLimit(0); err != nil {
		return store.ValuesQuery{}, err
	}
	return vq, nil
}

// DefinitionKinds are the kinds of definitions the store records.
var DefinitionKinds = []string{"tool", "prompt", "resource", "resource_template"}

func definitionQuery(q url.Values, now time.Time) (store.DefinitionQuery, error) {
	p, err := newParams(q, now, "server", "kind", "name", "since", "until", "limit")
	if err != nil {
		return store.DefinitionQuery{}, err
	}
	dq := store.DefinitionQuery{ServerID: p.str("server"), Name: p.str("name")}
	if dq.Kind, err = p.oneOf("kind", DefinitionKinds...); err != nil {
		return store.DefinitionQuery{}, err
	}
	if dq.Since, dq.Until, dq.Limit, err = p.rangeAndLimit(0); err != nil {
		return store.DefinitionQuery{}, err
	}
	return dq, nil
}

// DeliveryStatuses are the outcomes the store records.
var DeliveryStatuses = []string{"delivered", "dead_lettered", "replayed"}

func deliveryQuery(q url.Values, now time.Time) (store.DeliveryQuery, error) {
	p, err := newParams(q, now, "anomaly", "sink", "status", "since", "until", "limit")
	if err != nil {
		return store.DeliveryQuery{}, err
	}
	dq := store.DeliveryQuery{AnomalyID: p.str("anomaly"), Sink: p.str("sink")}
	if dq.Status, err = p.oneOf("status", DeliveryStatuses...); err != nil {
		return store.DeliveryQuery{}, err
	}
	if dq.Since, dq.Until, dq.Limit, err = p.rangeAndLimit(0); err != nil {
		return store.DeliveryQuery{}, err
	}
	return dq, nil
}

// The client side of the above.

func encodeSessionQuery(q store.SessionQuery) url.Values {
	v := url.Values{}
	setIf(v, "agent", q.AgentID)
	setIf(v, "server", q.ServerID)
	setIf(v, "tool", q.Tool)
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setScore(v, "min_score", q.MinScore)
	setLimit(v, q.Limit)
	return v
}

func encodeAnomalyQuery(q store.AnomalyQuery) url.Values {
	v := url.Values{}
	setIf(v, "agent", q.AgentID)
	setIf(v, "server", q.ServerID)
	setIf(v, "session", q.SessionID)
	setIf(v, "kind", q.Kind)
	setIf(v, "min_severity", string(q.MinSeverity))
	setScore(v, "min_score", q.MinScore)
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setLimit(v, q.Limit)
	return v
}

func encodeAgentQuery(q store.AgentQuery) url.Values {
	v := url.Values{}
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setLimit(v, q.Limit)
	return v
}

func setIf(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setTime(v url.Values, k string, t time.Time) {
	if !t.IsZero() {
		v.Set(k, t.UTC().Format(time.RFC3339Nano))
	}
}

func setScore(v url.Values, k string, x float64) {
	if x != 0 && !math.IsNaN(x) {
		v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
	}
}

func setLimit(v url.Values, n int) {
	if n != 0 {
		v.Set("limit", strconv.Itoa(n))
	}
}
