package plugin

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Query types: the value of a query's queryType.
const (
	QuerySessions      = "sessions"       // sessions, most recently active first (table)
	QuerySessionEvents = "session_events" // one session's events in observed order (timeline)
	QueryAnomalies     = "anomalies"      // anomalies, most recently seen first (table)
	QueryAgents        = "agents"         // agents ranked by risk (table)
	QueryAgentRate     = "agent_rate"     // an agent's calls/min against its learned band (time series)
	QueryAgentProfile  = "agent_profile"  // an agent's tool mix or transitions against its baseline (table)
	QueryAgentSizes    = "agent_sizes"    // an agent's message sizes against its quantiles (time series)
	QueryTimeSeries    = "timeseries"     // calls, errors, anomalies or deliveries per step (time series)
	QueryDeliveries    = "deliveries"     // alert delivery outcomes, newest first (table)
	QueryValues        = "values"         // agents, servers or tools, for template variables
)

// QueryTypes lists every query type, for error messages and the query editor.
var QueryTypes = []string{
	QuerySessions, QuerySessionEvents, QueryAnomalies, QueryAgents, QueryAgentRate,
	QueryAgentProfile, QueryAgentSizes, QueryTimeSeries, QueryDeliveries, QueryValues,
}

// Query is the JSON model of a query, next to Grafana's own fields (refId, queryType, …).
// Empty fields mean "no filter"; so do "*" and "$__all", which template variables set to "All"
// produce.
type Query struct {
	Agent   string `json:"agent,omitempty"`
	Server  string `json:"server,omitempty"`
	Tool    string `json:"tool,omitempty"`
	Session string `json:"session,omitempty"`
	// Kind filters anomalies by kind; several kinds are separated by commas.
	Kind string `json:"kind,omitempty"`
	// MinSeverity is info, low, medium, high or critical (anomalies).
	MinSeverity string `json:"minSeverity,omitempty"`
	// MinScore keeps anomalies (or sessions with an anomaly) scoring at least this.
	MinScore float64 `json:"minScore,omitempty"`
	// Metric is calls, errors, anomalies or deliveries (timeseries).
	Metric string `json:"metric,omitempty"`
	// By splits a time series: agent, server, tool, kind, severity, sink or status.
	By string `json:"by,omitempty"`
	// Step overrides the bucket width Grafana's interval implies (a Go duration, e.g. 5m).
	Step string `json:"step,omitempty"`
	// Field is agents, servers or tools (values).
	Field string `json:"field,omitempty"`
	// Section is tools or transitions (agent_profile).
	Section string `json:"section,omitempty"`
	// Direction is request or response (agent_sizes).
	Direction string `json:"direction,omitempty"`
	// Sink and Status filter deliveries.
	Sink   string `json:"sink,omitempty"`
	Status string `json:"status,omitempty"`
	// Limit caps rows (lists), series (timeseries) or sessions read (agent_sizes).
	Limit int `json:"limit,omitempty"`
}

// parseQuery reads a query's JSON and checks what the plugin can check without the API.
func parseQuery(dq backend.DataQuery) (Query, error) {
	var q Query
	if len(dq.JSON) > 0 {
		if err := json.Unmarshal(dq.JSON, &q); err != nil {
			return q, fmt.Errorf("cannot read the query: %w", err)
		}
	}
	for _, s := range []*string{&q.Agent, &q.Server, &q.Tool, &q.Session, &q.Kind, &q.MinSeverity,
		&q.Metric, &q.By, &q.Step, &q.Field, &q.Section, &q.Direction, &q.Sink, &q.Status} {
		*s = filterValue(*s)
	}
	if q.Limit < 0 || q.Limit > 10000 {
		return q, fmt.Errorf("limit: %d is out of range 1–10000", q.Limit)
	}
	if q.MinScore < 0 || q.MinScore > 100 || math.IsNaN(q.MinScore) {
		return q, fmt.Errorf("minScore: %v is out of range 0–100", q.MinScore)
	}
	need := func(name, v string, allowed ...string) error {
		if v == "" {
			if len(allowed) > 0 {
				return fmt.Errorf("%s: required for %s queries (one of %s)", name, dq.QueryType, strings.Join(allowed, ", "))
			}
			return fmt.Errorf("%s: required for %s queries", name, dq.QueryType)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, v) {
			return fmt.Errorf("%s: %q is not one of %s", name, v, strings.Join(allowed, ", "))
		}
		return nil
	}
	switch dq.QueryType {
	case QuerySessionEvents:
		return q, need("session", q.Session)
	case QueryAgentRate:
		return q, need("agent", q.Agent)
	case QueryAgentProfile:
		if err := need("agent", q.Agent); err != nil {
			return q, err
		}
		return q, need("section", q.Section, "tools", "transitions")
	case QueryAgentSizes:
		if err := need("agent", q.Agent); err != nil {
			return q, err
		}
		if q.Direction == "" {
			q.Direction = "request"
		}
		return q, need("direction", q.Direction, "request", "response")
	case QueryTimeSeries:
		if err := need("metric", q.Metric, "calls", "errors", "anomalies", "deliveries"); err != nil {
			return q, err
		}
		if q.By != "" {
			return q, need("by", q.By, "agent", "server", "tool", "kind", "severity", "sink", "status")
		}
	case QueryValues:
		return q, need("field", q.Field, "agents", "servers", "tools")
	}
	return q, nil
}

// filterValue maps what Grafana's "All" option substitutes to "no filter".
func filterValue(s string) string {
	s = strings.TrimSpace(s)
	if s == "*" || s == "$__all" {
		return ""
	}
	return s
}

// limitOr is the query's limit, or def when it set none.
func limitOr(q Query, def int) int {
	if q.Limit > 0 {
		return q.Limit
	}
	return def
}

// values builds API query parameters, leaving out empty ones.
type values url.Values

func (v values) set(name, value string) values {
	if value != "" {
		url.Values(v).Set(name, value)
	}
	return v
}

func (v values) setInt(name string, n int) values {
	if n != 0 {
		url.Values(v).Set(name, strconv.Itoa(n))
	}
	return v
}

func (v values) setFloat(name string, f float64) values {
	if f != 0 {
		url.Values(v).Set(name, strconv.FormatFloat(f, 'f', -1, 64))
	}
	return v
}

// timeRange sets since and until to the query's time range.
func (v values) timeRange(tr backend.TimeRange) values {
	return v.set("since", tr.From.UTC().Format(time.RFC3339Nano)).set("until", tr.To.UTC().Format(time.RFC3339Nano))
}

// maxBuckets is the most buckets the API computes for one time series query.
const maxBuckets = 10000

// niceSteps are the bucket widths the plugin picks from, so buckets line up with the clock.
var niceSteps = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// chooseStep picks a time series' bucket width: the query's step when it sets one, else the
// smallest nice step at least Grafana's interval, wide enough that the range holds no more
// than MaxDataPoints buckets, and at least min. Either way the range holds at most maxBuckets.
func chooseStep(dq backend.DataQuery, override string, min time.Duration) (time.Duration, error) {
	span := dq.TimeRange.Duration()
	if span <= 0 {
		return 0, fmt.Errorf("time range: %s to %s is empty", dq.TimeRange.From.UTC().Format(time.RFC3339), dq.TimeRange.To.UTC().Format(time.RFC3339))
	}
	if override != "" {
		step, err := time.ParseDuration(override)
		if err != nil || step < time.Second {
			return 0, fmt.Errorf("step: %q must be a duration of at least 1s, like 30s, 5m or 1h", override)
		}
		if n := buckets(span, step) + 1; n > maxBuckets {
			return 0, fmt.Errorf("step: %s makes %d buckets over %s; at most %d", step, n, span, maxBuckets)
		}
		return step, nil
	}
	want := max(dq.Interval, min, time.Second)
	if dq.MaxDataPoints > 0 {
		want = max(want, time.Duration(math.Ceil(float64(span)/float64(dq.MaxDataPoints))))
	}
	// One bucket less than the cap: buckets start at multiples of the step, so an unaligned
	// range touches one more than span/step.
	want = max(want, time.Duration(math.Ceil(float64(span)/(maxBuckets-1))))
	for _, s := range niceSteps {
		if s >= want {
			return s, nil
		}
	}
	day := 24 * time.Hour
	return (want + day - 1) / day * day, nil
}

func buckets(span, step time.Duration) int64 {
	return int64((span + step - 1) / step)
}
