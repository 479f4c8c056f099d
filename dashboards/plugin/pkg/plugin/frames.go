package plugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// table makes a frame Grafana shows as a table.
func table(name string, fields ...*data.Field) *data.Frame {
	f := data.NewFrame(name, fields...)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable}
	return f
}

// wide makes a wide time series frame (one time field, numeric fields with labels), the shape
// Grafana alerting evaluates.
func wide(name string, fields ...*data.Field) *data.Frame {
	f := data.NewFrame(name, fields...)
	f.Meta = &data.FrameMeta{
		Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1},
		PreferredVisualization: data.VisTypeGraph,
	}
	return f
}

// field sets a field's display name and unit.
func field(f *data.Field, display, unit string) *data.Field {
	f.Config = &data.FieldConfig{DisplayNameFromDS: display, Unit: unit}
	return f
}

func notice(f *data.Frame, sev data.NoticeSeverity, format string, args ...any) {
	f.AppendNotices(data.Notice{Severity: sev, Text: fmt.Sprintf(format, args...)})
}

func joined(s []string) string { return strings.Join(s, ", ") }

func (d *Datasource) sessions(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	r := request{path: "/api/v1/sessions", query: url.Values(values{}.timeRange(dq.TimeRange).
		set("agent", q.Agent).set("server", q.Server).set("tool", q.Tool).
		setFloat("min_score", q.MinScore).setInt("limit", limitOr(q, 100)))}
	var resp sessionsResponse
	if err := d.api.get(ctx, r, &resp); err != nil {
		return nil, nil, err
	}
	n := len(resp.Sessions)
	var (
		ids, agents, servers, clients, tools = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		first, last                          = make([]time.Time, n), make([]time.Time, n)
		duration                             = make([]float64, n)
		evs, errs, anoms                     = make([]int64, n), make([]int64, n), make([]int64, n)
		scores                               = make([]float64, n)
	)
	for i, s := range resp.Sessions {
		ids[i], agents[i], servers[i], clients[i], tools[i] = s.ID, s.AgentID, s.ServerID, s.ClientName, joined(s.Tools)
		first[i], last[i] = s.FirstSeen, s.LastSeen
		duration[i] = s.LastSeen.Sub(s.FirstSeen).Seconds()
		evs[i], errs[i], anoms[i], scores[i] = s.Events, s.Errors, s.Anomalies, s.MaxScore
	}
	f := table("sessions",
		field(data.NewField("last_seen", nil, last), "Last seen", ""),
		field(data.NewField("session_id", nil, ids), "Session", ""),
		field(data.NewField("agent_id", nil, agents), "Agent", ""),
		field(data.NewField("server_id", nil, servers), "Server", ""),
		field(data.NewField("client_name", nil, clients), "Client", ""),
		field(data.NewField("first_seen", nil, first), "First seen", ""),
		field(data.NewField("duration", nil, duration), "Duration", "s"),
		field(data.NewField("events", nil, evs), "Events", "none"),
		field(data.NewField("errors", nil, errs), "Errors", "none"),
		field(data.NewField("anomalies", nil, anoms), "Anomalies", "none"),
		field(data.NewField("max_score", nil, scores), "Max score", "none"),
		field(data.NewField("tools", nil, tools), "Tools", ""),
	)
	if resp.NextCursor != "" {
		notice(f, data.NoticeSeverityInfo, "showing the %d most recently active sessions; raise the limit or narrow the filters to see more", n)
	}
	return data.Frames{f}, []request{r}, nil
}

func (d *Datasource) sessionEvents(ctx context.Context, _ backend.DataQuery, q Query) (data.Frames, []request, error) {
	r := request{path: "/api/v1/sessions/" + url.PathEscape(q.Session) + "/events",
		query: url.Values(values{}.setInt("limit", limitOr(q, 1000)))}
	var resp eventsResponse
	if err := d.api.get(ctx, r, &resp); err != nil {
		return nil, nil, err
	}
	n := len(resp.Events)
	var (
		times                                                 = make([]time.Time, n)
		methods, targets, statuses, kinds, dirs, shapes, flgs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		argsHash, resHash, traces, ids, agents, servers       = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		latency                                               = make([]float64, n)
		reqBytes, respBytes, codes                            = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, e := range resp.Events {
		times[i], methods[i], targets[i], statuses[i], kinds[i], dirs[i] = e.ObservedAt, e.Method, e.Target, e.Status, e.Kind, e.Direction
		shapes[i], argsHash[i], resHash[i], traces[i], ids[i] = e.ArgsShape, e.ArgsHash, e.ResultHash, e.TraceID, e.ID
		agents[i], servers[i] = e.AgentID, e.ServerID
		latency[i] = float64(e.LatencyMicros) / 1000
		reqBytes[i], respBytes[i], codes[i] = e.RequestBytes, e.ResponseBytes, e.ErrorCode
		fs := make([]string, len(e.Flags))
		for j, fl := range e.Flags {
			fs[j] = fl.Type + " (" + fl.Severity + ")"
			if fl.Path != "" {
				fs[j] += " at " + fl.Path
			}
		}
		flgs[i] = strings.Join(fs, "; ")
	}
	f := table("events",
		field(data.NewField("time", nil, times), "Time", ""),
		field(data.NewField("method", nil, methods), "Method", ""),
		field(data.NewField("target", nil, targets), "Target", ""),
		field(data.NewField("status", nil, statuses), "Status", ""),
		field(data.NewField("latency", nil, latency), "Latency", "ms"),
		field(data.NewField("request_bytes", nil, reqBytes), "Request size", "bytes"),
		field(data.NewField("response_bytes", nil, respBytes), "Response size", "bytes"),
		field(data.NewField("error_code", nil, codes), "Error code", "none"),
		field(data.NewField("flags", nil, flgs), "Flags", ""),
		field(data.NewField("args_shape", nil, shapes), "Arguments (shape)", ""),
		field(data.NewField("args_hash", nil, argsHash), "Arguments hash", ""),
		field(data.NewField("result_hash", nil, resHash), "Result hash", ""),
		field(data.NewField("kind", nil, kinds), "Kind", ""),
		field(data.NewField("direction", nil, dirs), "Direction", ""),
		field(data.NewField("agent_id", nil, agents), "Agent", ""),
		field(data.NewField("server_id", nil, servers), "Server", ""),
		field(data.NewField("trace_id", nil, traces), "Trace", ""),
		field(data.NewField("event_id", nil, ids), "Event", ""),
	)
	if n == limitOr(q, 1000) {
		notice(f, data.NoticeSeverityWarning, "showing the first %d events of the session; raise the limit to see more", n)
	}
	return data.Frames{f}, []request{r}, nil
}

func (d *Datasource) anomalies(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	limit := limitOr(q, 100)
	base := values{}.timeRange(dq.TimeRange).set("agent", q.Agent).set("server", q.Server).
		set("session", q.Session).set("min_severity", q.MinSeverity).setFloat("min_score", q.MinScore).
		setInt("limit", limit)
	// The API filters one kind at a time; several kinds are one call each, merged.
	kinds := []string{""}
	if q.Kind != "" {
		kinds = nil
		for k := range strings.SplitSeq(q.Kind, ",") {
			if k = strings.TrimSpace(k); k != "" && !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	var (
		all   []anomaly
		calls []request
		more  bool
	)
	for _, k := range kinds {
		v := values(maps.Clone(url.Values(base)))
		r := request{path: "/api/v1/anomalies", query: url.Values(v.set("kind", k))}
		var resp anomaliesResponse
		if err := d.api.get(ctx, r, &resp); err != nil {
			return nil, nil, err
		}
		calls = append(calls, r)
		all = append(all, resp.Anomalies...)
		more = more || resp.NextCursor != ""
	}
	slices.SortStableFunc(all, func(a, b anomaly) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(all) > limit {
		all, more = all[:limit], true
	}
	n := len(all)
	var (
		last, first                                   = make([]time.Time, n), make([]time.Time, n)
		sev, kind, subj, title, agents, servers, sess = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		summary, observed, typical, model, tags, ids  = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		scores                                        = make([]float64, n)
		counts                                        = make([]int64, n)
		learning                                      = make([]bool, n)
	)
	for i, a := range all {
		last[i], first[i] = a.LastSeen, a.FirstSeen
		sev[i], kind[i], subj[i], title[i] = a.Severity, a.Kind, a.Subject, a.Title
		agents[i], servers[i], sess[i] = a.AgentID, a.ServerID, a.SessionID
		summary[i], observed[i], typical[i], model[i] = a.Explanation.Summary, a.Explanation.Observed, a.Explanation.Typical, a.Explanation.Model
		tags[i], ids[i] = joined(a.Tags), a.ID
		scores[i], counts[i], learning[i] = a.Score, a.Count, a.Learning
	}
	f := table("anomalies",
		field(data.NewField("last_seen", nil, last), "Last seen", ""),
		field(data.NewField("severity", nil, sev), "Severity", ""),
		field(data.NewField("score", nil, scores), "Score", "none"),
		field(data.NewField("agent_id", nil, agents), "Agent", ""),
		field(data.NewField("kind", nil, kind), "Kind", ""),
		field(data.NewField("subject", nil, subj), "Subject", ""),
		field(data.NewField("title", nil, title), "Title", ""),
		field(data.NewField("count", nil, counts), "Count", "none"),
		field(data.NewField("first_seen", nil, first), "First seen", ""),
		field(data.NewField("server_id", nil, servers), "Server", ""),
		field(data.NewField("session_id", nil, sess), "Session", ""),
		field(data.NewField("summary", nil, summary), "Explanation", ""),
		field(data.NewField("observed", nil, observed), "Observed", ""),
		field(data.NewField("typical", nil, typical), "Typical", ""),
		field(data.NewField("model", nil, model), "Model", ""),
		field(data.NewField("learning", nil, learning), "Learning", ""),
		field(data.NewField("tags", nil, tags), "Tags", ""),
		field(data.NewField("anomaly_id", nil, ids), "Anomaly", ""),
	)
	if more {
		notice(f, data.NoticeSeverityInfo, "showing the %d most recently seen anomalies; raise the limit or narrow the filters to see more", n)
	}
	return data.Frames{f}, calls, nil
}

func (d *Datasource) agents(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	r := request{path: "/api/v1/agents", query: url.Values(values{}.timeRange(dq.TimeRange).setInt("limit", limitOr(q, 100)))}
	var resp agentsResponse
	if err := d.api.get(ctx, r, &resp); err != nil {
		return nil, nil, err
	}
	n := len(resp.Agents)
	var (
		ids, servers, tools     = make([]string, n), make([]string, n), make([]string, n)
		risk, maxScore, errRate = make([]float64, n), make([]float64, n), make([]float64, n)
		anoms, evs, errs, sess  = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		first, last             = make([]time.Time, n), make([]time.Time, n)
	)
	for i, a := range resp.Agents {
		ids[i], servers[i], tools[i] = a.ID, joined(a.Servers), joined(a.Tools)
		risk[i], maxScore[i] = a.Risk, a.MaxScore
		if a.Events > 0 {
			errRate[i] = float64(a.Errors) / float64(a.Events)
		}
		anoms[i], evs[i], errs[i], sess[i] = a.Anomalies, a.Events, a.Errors, a.Sessions
		first[i], last[i] = a.FirstSeen, a.LastSeen
	}
	f := table("agents",
		field(data.NewField("agent_id", nil, ids), "Agent", ""),
		field(data.NewField("risk", nil, risk), "Risk", "none"),
		field(data.NewField("anomalies", nil, anoms), "Anomalies", "none"),
		field(data.NewField("max_score", nil, maxScore), "Max score", "none"),
		field(data.NewField("events", nil, evs), "Events", "none"),
		field(data.NewField("error_rate", nil, errRate), "Error rate", "percentunit"),
		field(data.NewField("sessions", nil, sess), "Sessions", "none"),
		field(data.NewField("servers", nil, servers), "Servers", ""),
		field(data.NewField("tools", nil, tools), "Tools", ""),
		field(data.NewField("errors", nil, errs), "Errors", "none"),
		field(data.NewField("first_seen", nil, first), "First seen", ""),
		field(data.NewField("last_seen", nil, last), "Last seen", ""),
	)
	return data.Frames{f}, []request{r}, nil
}

func (d *Datasource) deliveries(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	r := request{path: "/api/v1/deliveries", query: url.Values(values{}.timeRange(dq.TimeRange).
		set("sink", q.Sink).set("status", q.Status).setInt("limit", limitOr(q, 100)))}
	var resp deliveriesResponse
	if err := d.api.get(ctx, r, &resp); err != nil {
		return nil, nil, err
	}
	n := len(resp.Deliveries)
	var (
		times                                                 = make([]time.Time, n)
		status, sink, sev, kind, agents, errs, anomalies, ids = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		attempts                                              = make([]int64, n)
	)
	for i, x := range resp.Deliveries {
		times[i], status[i], sink[i], sev[i], kind[i] = x.Time, x.Status, x.Sink, x.Severity, x.Kind
		agents[i], errs[i], anomalies[i], ids[i], attempts[i] = x.AgentID, x.Error, x.AnomalyID, x.ID, x.Attempts
	}
	f := table("deliveries",
		field(data.NewField("time", nil, times), "Time", ""),
		field(data.NewField("status", nil, status), "Status", ""),
		field(data.NewField("sink", nil, sink), "Sink", ""),
		field(data.NewField("severity", nil, sev), "Severity", ""),
		field(data.NewField("kind", nil, kind), "Kind", ""),
		field(data.NewField("agent_id", nil, agents), "Agent", ""),
		field(data.NewField("attempts", nil, attempts), "Attempts", "none"),
		field(data.NewField("error", nil, errs), "Last error", ""),
		field(data.NewField("anomaly_id", nil, anomalies), "Anomaly", ""),
		field(data.NewField("delivery_id", nil, ids), "Delivery", ""),
	)
	return data.Frames{f}, []request{r}, nil
}

func (d *Datasource) values(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	r := request{path: "/api/v1/values/" + url.PathEscape(q.Field), query: url.Values(values{}.timeRange(dq.TimeRange).
		set("agent", q.Agent).setInt("limit", q.Limit))}
	var resp valuesResponse
	if err := d.api.get(ctx, r, &resp); err != nil {
		return nil, nil, err
	}
	f := data.NewFrame("values", data.NewField("text", nil, resp.Values))
	return data.Frames{f}, []request{r}, nil
}

// seriesRequest is a /api/v1/timeseries call.
func seriesRequest(dq backend.DataQuery, metric, by string, step time.Duration, agent, server, tool string, limit int) request {
	return request{path: "/api/v1/timeseries", query: url.Values(values{}.timeRange(dq.TimeRange).
		set("metric", metric).set("by", by).set("step", step.String()).
		set("agent", agent).set("server", server).set("tool", tool).setInt("limit", limit))}
}

func (d *Datasource) timeSeries(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	step, err := chooseStep(dq, q.Step, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBadQuery, err)
	}
	r := seriesRequest(dq, q.Metric, q.By, step, q.Agent, q.Server, q.Tool, q.Limit)
	var resp seriesResponse
	if err := d.api.get(ctx, r, &resp); err != nil {
		return nil, nil, err
	}
	times, cols := widen(resp.Series)
	fields := []*data.Field{data.NewField("time", nil, times)}
	fields[0].Config = &data.FieldConfig{Interval: float64(step.Milliseconds())}
	for i, s := range resp.Series {
		var labels data.Labels
		display := q.Metric
		if q.By != "" {
			labels = data.Labels{q.By: s.Key}
			display = s.Key
			if display == "" {
				display = "(none)"
			}
		}
		fields = append(fields, field(data.NewField(q.Metric, labels, cols[i]), display, "none"))
	}
	f := wide(q.Metric, fields...)
	return data.Frames{f}, []request{r}, nil
}

// widen puts series on one time axis: every bucket any series has, zeros where one has none
// (the API's series are dense already; this keeps the frame valid if one is not).
func widen(ss []series) ([]time.Time, [][]float64) {
	var times []time.Time
	for _, s := range ss {
		for _, p := range s.Points {
			times = append(times, p.Time)
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	times = slices.CompactFunc(times, time.Time.Equal)
	if times == nil {
		times = []time.Time{}
	}
	cols := make([][]float64, len(ss))
	for i, s := range ss {
		cols[i] = make([]float64, len(times))
		for _, p := range s.Points {
			j, _ := slices.BinarySearchFunc(times, p.Time, time.Time.Compare)
			cols[i][j] += p.Value
		}
	}
	return times, cols
}

// hourOfWeek is the profile band index of t: 0 = Monday 00:00–01:00 UTC.
func hourOfWeek(t time.Time) int {
	t = t.UTC()
	return (int(t.Weekday())+6)%7*24 + t.Hour()
}

// profileOf fetches an agent's profile; nil without error when it has no baseline yet.
func (d *Datasource) profileOf(ctx context.Context, agentID string) (*profile, request, error) {
	r := request{path: "/api/v1/agents/" + url.PathEscape(agentID) + "/profile"}
	var p profile
	err := d.api.get(ctx, r, &p)
	if ae := (*apiError)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, r, nil
	}
	if err != nil {
		return nil, r, err
	}
	return &p, r, nil
}

func (d *Datasource) agentRate(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	prof, pr, err := d.profileOf(ctx, q.Agent)
	if err != nil {
		return nil, nil, err
	}
	// The band counts calls per rate bucket (a minute by default); observed counts are scaled
	// to that unit, and a step narrower than it would only show noise.
	unit, per := "calls/min", time.Minute
	if prof != nil && prof.Rate != nil {
		if u, ok := rateUnit(prof.Rate.Unit); ok {
			unit, per = prof.Rate.Unit, u
		}
	}
	step, err := chooseStep(dq, q.Step, per)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBadQuery, err)
	}
	sr := seriesRequest(dq, "calls", "", step, q.Agent, "", "", 0)
	var resp seriesResponse
	if err := d.api.get(ctx, sr, &resp); err != nil {
		return nil, nil, err
	}
	grafanaUnit := "suffix: " + unit
	times, cols := widen(resp.Series)
	scale := float64(per) / float64(step)
	observed := make([]float64, len(times))
	for _, c := range cols {
		for i, v := range c {
			observed[i] += v * scale
		}
	}
	labels := data.Labels{"agent": q.Agent}
	tf := data.NewField("time", nil, times)
	tf.Config = &data.FieldConfig{Interval: float64(step.Milliseconds())}
	fields := []*data.Field{tf, field(data.NewField("observed", labels, observed), "observed", grafanaUnit)}

	var bands map[int]band
	if prof != nil && prof.Rate != nil && len(prof.Rate.Band) > 0 {
		bands = make(map[int]band, len(prof.Rate.Band))
		for _, b := range prof.Rate.Band {
			bands[b.HourOfWeek] = b
		}
	}
	if bands != nil {
		lower, expected, upper := make([]*float64, len(times)), make([]*float64, len(times)), make([]*float64, len(times))
		for i, t := range times {
			lower[i], expected[i], upper[i] = bandOver(bands, t, step)
		}
		fields = append(fields,
			field(data.NewField("expected", labels, expected), "expected", grafanaUnit),
			field(data.NewField("lower", labels, lower), "band lower", grafanaUnit),
			field(data.NewField("upper", labels, upper), "band upper", grafanaUnit),
		)
	}
	f := wide("agent_rate", fields...)
	switch {
	case bands == nil:
		notice(f, data.NoticeSeverityInfo, "agent %s has no learned rate baseline yet: showing observed calls only", q.Agent)
	case prof.Learning:
		notice(f, data.NoticeSeverityInfo, "agent %s is still learning: its band is provisional", q.Agent)
	}
	return data.Frames{f}, []request{pr, sr}, nil
}

// rateUnit reads the profile's rate unit, "calls/s", "calls/min", "calls/h" or "calls per
// <duration>", as the time the counts are per.
func rateUnit(u string) (time.Duration, bool) {
	switch u {
	case "calls/s":
		return time.Second, true
	case "calls/min":
		return time.Minute, true
	case "calls/h":
		return time.Hour, true
	}
	if s, ok := strings.CutPrefix(u, "calls per "); ok {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d, true
		}
	}
	return 0, false
}

// bandOver averages the hourly bands a bucket [t, t+step) covers (one hour for steps up to an
// hour). Hours the profile lacks are skipped; nil when it has none of them.
func bandOver(bands map[int]band, t time.Time, step time.Duration) (lower, expected, upper *float64) {
	var lo, ex, up float64
	n := 0
	for h := t.Truncate(time.Hour); h.Before(t.Add(step)); h = h.Add(time.Hour) {
		if b, ok := bands[hourOfWeek(h)]; ok {
			lo, ex, up = lo+b.Lower, ex+b.Expected, up+b.Upper
			n++
		}
	}
	if n == 0 {
		return nil, nil, nil
	}
	fn := float64(n)
	lo, ex, up = lo/fn, ex/fn, up/fn
	return &lo, &ex, &up
}

func (d *Datasource) agentProfile(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	prof, pr, err := d.profileOf(ctx, q.Agent)
	if err != nil {
		return nil, nil, err
	}
	if q.Section == "transitions" {
		var from, to []string
		var counts []int64
		var probs []float64
		if prof != nil {
			for _, t := range prof.TopTransitions {
				from, to, counts, probs = append(from, t.From), append(to, t.To), append(counts, t.Count), append(probs, t.Probability)
			}
		}
		f := table("transitions",
			field(data.NewField("from", nil, nonNil(from)), "From", ""),
			field(data.NewField("to", nil, nonNil(to)), "To", ""),
			field(data.NewField("count", nil, nonNil(counts)), "Count", "none"),
			field(data.NewField("probability", nil, nonNil(probs)), "P(to | from)", "percentunit"),
		)
		if prof == nil {
			notice(f, data.NoticeSeverityInfo, "agent %s has no learned baseline yet", q.Agent)
		}
		return data.Frames{f}, []request{pr}, nil
	}

	// Tool mix: the baseline's shares next to the shares observed in the time range.
	step, err := chooseStep(backend.DataQuery{TimeRange: dq.TimeRange, MaxDataPoints: 100}, "", 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBadQuery, err)
	}
	sr := seriesRequest(dq, "calls", "tool", step, q.Agent, "", "", 100)
	var resp seriesResponse
	if err := d.api.get(ctx, sr, &resp); err != nil {
		return nil, nil, err
	}
	type row struct {
		tool            string
		observed        float64
		baseCalls       *int64
		baseShare       *float64
		inBaseline, obs bool
	}
	rows := map[string]*row{}
	get := func(tool string) *row {
		if rows[tool] == nil {
			rows[tool] = &row{tool: tool}
		}
		return rows[tool]
	}
	var total float64
	for _, s := range resp.Series {
		if s.Key == "" { // calls that name no tool (initialize, tools/list, …)
			continue
		}
		var sum float64
		for _, p := range s.Points {
			sum += p.Value
		}
		if sum > 0 {
			r := get(s.Key)
			r.observed, r.obs = sum, true
			total += sum
		}
	}
	if prof != nil {
		for _, t := range prof.TopTools {
			r := get(t.Tool)
			calls, share := t.Calls, t.Share
			r.baseCalls, r.baseShare, r.inBaseline = &calls, &share, true
		}
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b *row) int {
		if a.observed != b.observed {
			return cmpDesc(a.observed, b.observed)
		}
		if as, bs := deref(a.baseShare), deref(b.baseShare); as != bs {
			return cmpDesc(as, bs)
		}
		return strings.Compare(a.tool, b.tool)
	})
	n := len(list)
	tools := make([]string, n)
	obsCalls, obsShare := make([]float64, n), make([]float64, n)
	baseCalls, baseShare := make([]*int64, n), make([]*float64, n)
	isNew := make([]bool, n)
	for i, r := range list {
		tools[i], obsCalls[i], baseCalls[i], baseShare[i] = r.tool, r.observed, r.baseCalls, r.baseShare
		if total > 0 {
			obsShare[i] = r.observed / total
		}
		isNew[i] = prof != nil && r.obs && !r.inBaseline
	}
	f := table("tools",
		field(data.NewField("tool", nil, tools), "Tool", ""),
		field(data.NewField("observed_calls", nil, obsCalls), "Calls (range)", "none"),
		field(data.NewField("observed_share", nil, obsShare), "Share (range)", "percentunit"),
		field(data.NewField("baseline_share", nil, baseShare), "Share (baseline)", "percentunit"),
		field(data.NewField("baseline_calls", nil, baseCalls), "Calls (baseline)", "none"),
		field(data.NewField("not_in_baseline", nil, isNew), "Not in baseline top tools", ""),
	)
	if prof == nil {
		notice(f, data.NoticeSeverityInfo, "agent %s has no learned baseline yet: showing observed calls only", q.Agent)
	}
	return data.Frames{f}, []request{pr, sr}, nil
}

func (d *Datasource) agentSizes(ctx context.Context, dq backend.DataQuery, q Query) (data.Frames, []request, error) {
	prof, pr, err := d.profileOf(ctx, q.Agent)
	if err != nil {
		return nil, nil, err
	}
	calls := []request{pr}
	sr := request{path: "/api/v1/sessions", query: url.Values(values{}.timeRange(dq.TimeRange).
		set("agent", q.Agent).setInt("limit", limitOr(q, 20)))}
	var sessions sessionsResponse
	if err := d.api.get(ctx, sr, &sessions); err != nil {
		return nil, nil, err
	}
	calls = append(calls, sr)
	type obs struct {
		t time.Time
		v float64
	}
	var points []obs
	for _, s := range sessions.Sessions {
		er := request{path: "/api/v1/sessions/" + url.PathEscape(s.ID) + "/events", query: url.Values{"limit": {"10000"}}}
		var evs eventsResponse
		if err := d.api.get(ctx, er, &evs); err != nil {
			return nil, nil, err
		}
		calls = append(calls, er)
		for _, e := range evs.Events {
			if e.Kind != "request" || e.AgentID != q.Agent || e.ObservedAt.Before(dq.TimeRange.From) || !e.ObservedAt.Before(dq.TimeRange.To) {
				continue
			}
			v := e.RequestBytes
			if q.Direction == "response" {
				v = e.ResponseBytes
			}
			points = append(points, obs{e.ObservedAt, float64(v)})
		}
	}
	slices.SortStableFunc(points, func(a, b obs) int { return a.t.Compare(b.t) })
	times, sizes := make([]time.Time, len(points)), make([]float64, len(points))
	for i, p := range points {
		times[i], sizes[i] = p.t, p.v
	}
	labels := data.Labels{"agent": q.Agent, "direction": q.Direction}
	fields := []*data.Field{
		data.NewField("time", nil, times),
		field(data.NewField("bytes", labels, sizes), q.Direction+" bytes", "bytes"),
	}
	var qs *quantiles
	if prof != nil && prof.Sizes != nil {
		qs = prof.Sizes.RequestBytes
		if q.Direction == "response" {
			qs = prof.Sizes.ResponseBytes
		}
	}
	if qs != nil {
		for _, c := range []struct {
			name string
			v    float64
		}{{"p50", qs.P50}, {"p90", qs.P90}, {"p99", qs.P99}} {
			col := make([]float64, len(times))
			for i := range col {
				col[i] = c.v
			}
			fields = append(fields, field(data.NewField(c.name, labels, col), "baseline "+c.name, "bytes"))
		}
	}
	f := wide("agent_sizes", fields...)
	if qs == nil {
		notice(f, data.NoticeSeverityInfo, "agent %s has no learned size baseline yet: showing observed sizes only", q.Agent)
	}
	if sessions.NextCursor != "" {
		notice(f, data.NoticeSeverityInfo, "sizes from the agent's %d most recently active sessions only; raise the limit to read more", len(sessions.Sessions))
	}
	return data.Frames{f}, calls, nil
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func deref(p *float64) float64 {
	if p == nil {
		return math.Inf(-1)
	}
	return *p
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
