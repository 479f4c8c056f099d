package api

import (
	"fmt"
	"net/url"
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

// params reads a request's query parameters, rejecting unknown and repeated ones so that a typo
// like ?agnet= fails loudly instead of silently returning unfiltered history.
type params struct {
	values url.Values
	now    time.Time
}

func newParams(q url.Values, now time.Time, allowed ...string) (params, error) {
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return params{}, &paramError{name, fmt.Sprintf("unknown parameter (accepted: %s)", strings.Join(allowed, ", "))}
		}
		if len(vs) > 1 {
			return params{}, &paramError{name, "given more than once"}
		}
	}
	return params{values: q, now: now}, nil
}

func (p params) str(name string) string { return p.values.Get(name) }

func (p params) time(name string) (time.Time, error) {
	s := p.values.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s, p.now)
	if err != nil {
		return time.Time{}, &paramError{name, err.Error()}
	}
	return t, nil
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

func (p params) severity(name string) (schemas.Severity, error) {
	s := schemas.Severity(p.values.Get(name))
	if s != "" && s.Rank() < 0 {
		return "", &paramError{name, fmt.Sprintf("must be one of info, low, medium, high, critical, got %q", s)}
	}
	return s, nil
}

// timeRange reads since and until and checks their order.
func (p params) timeRange() (since, until time.Time, err error) {
	if since, err = p.time("since"); err != nil {
		return
	}
	if until, err = p.time("until"); err != nil {
		return
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		err = &paramError{"until", "must be after since"}
	}
	return
}

func sessionQuery(q url.Values, now time.Time) (store.SessionQuery, error) {
	p, err := newParams(q, now, "agent", "server", "since", "until", "limit")
	if err != nil {
		return store.SessionQuery{}, err
	}
	sq := store.SessionQuery{AgentID: p.str("agent"), ServerID: p.str("server")}
	if sq.Since, sq.Until, err = p.timeRange(); err != nil {
		return store.SessionQuery{}, err
	}
	if sq.Limit, err = p.limit(); err != nil {
		return store.SessionQuery{}, err
	}
	return sq, nil
}

func anomalyQuery(q url.Values, now time.Time) (store.AnomalyQuery, error) {
	p, err := newParams(q, now, "agent", "kind", "min_severity", "since", "until", "limit")
	if err != nil {
		return store.AnomalyQuery{}, err
	}
	aq := store.AnomalyQuery{AgentID: p.str("agent"), Kind: p.str("kind")}
	if aq.MinSeverity, err = p.severity("min_severity"); err != nil {
		return store.AnomalyQuery{}, err
	}
	if aq.Since, aq.Until, err = p.timeRange(); err != nil {
		return store.AnomalyQuery{}, err
	}
	if aq.Limit, err = p.limit(); err != nil {
		return store.AnomalyQuery{}, err
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

// encodeSessionQuery and encodeAnomalyQuery are the client side of the above.
func encodeSessionQuery(q store.SessionQuery) url.Values {
	v := url.Values{}
	setIf(v, "agent", q.AgentID)
	setIf(v, "server", q.ServerID)
	setTime(v, "since", q.Since)
	setTime(v, "until", q.Until)
	setLimit(v, q.Limit)
	return v
}

func encodeAnomalyQuery(q store.AnomalyQuery) url.Values {
	v := url.Values{}
	setIf(v, "agent", q.AgentID)
	setIf(v, "kind", q.Kind)
	setIf(v, "min_severity", string(q.MinSeverity))
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

func setLimit(v url.Values, n int) {
	if n != 0 {
		v.Set("limit", strconv.Itoa(n))
	}
}
