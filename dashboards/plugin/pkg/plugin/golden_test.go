package plugin

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"
	"github.com/stretchr/testify/require"
)

// update rewrites the golden files: go test ./pkg/plugin -run TestGolden -update. The frames of
// agent_rate, agent_profile and agent_sizes carry what the real detector learnt from the
// fixture, so a change to the detector's models changes them too: review the diff, then update.
var update = flag.Bool("update", false, "rewrite testdata/golden/*.jsonc from the current answers")

// goldenCase is one query run against the fixture's API.
type goldenCase struct {
	name      string
	queryType string
	model     string // the query's JSON, without refId and queryType
	tr        backend.TimeRange
	interval  time.Duration
	points    int64
	// check asserts what the golden file must show beyond matching it, so that a wrong
	// -update cannot bless an empty or broken answer.
	check func(t *testing.T, f data.Frames)
}

var exfilRange = backend.TimeRange{From: exfilStart.Add(-3 * time.Hour), To: exfilStart.Add(time.Hour)}

func goldenCases() []goldenCase {
	return []goldenCase{
		{name: "sessions", queryType: QuerySessions, model: `{"limit": 5}`, tr: day2,
			check: rows(5, "session_id")},
		{name: "sessions_research_min_score", queryType: QuerySessions, model: `{"agent": "research-agent", "minScore": 80}`, tr: day2,
			check: func(t *testing.T, f data.Frames) {
				rows(1, "session_id")(t, f)
				require.Equal(t, "research-exfil", f[0].Fields[1].At(0))
			}},
		{name: "session_events", queryType: QuerySessionEvents, model: `{"session": "research-exfil"}`, tr: day2,
			check: func(t *testing.T, f data.Frames) {
				rows(44, "time")(t, f)
				target, _ := f[0].FieldByName("target")
				require.Equal(t, "exec_shell", target.At(43), "the session ends with the shell call")
				flags, _ := f[0].FieldByName("flags")
				require.Equal(t, "secret (high) at result.content[0].text", flags.At(43))
			}},
		{name: "anomalies", queryType: QueryAnomalies, model: `{}`, tr: day2,
			check: rows(5, "anomaly_id")},
		{name: "anomalies_new_tools", queryType: QueryAnomalies, model: `{"kind": "new_tool,tool_drift,tool_shadowing"}`, tr: day2,
			check: func(t *testing.T, f data.Frames) {
				rows(2, "anomaly_id")(t, f)
				require.Len(t, strings.Split(f[0].Meta.ExecutedQueryString, "\n"), 3, "one API call per kind")
			}},
		{name: "anomalies_high", queryType: QueryAnomalies, model: `{"agent": "research-agent", "minSeverity": "high", "limit": 2}`, tr: day2,
			check: rows(2, "anomaly_id")},
		{name: "agents", queryType: QueryAgents, model: `{}`, tr: day2,
			check: func(t *testing.T, f data.Frames) {
				rows(3, "agent_id")(t, f)
				require.Equal(t, "research-agent", f[0].Fields[0].At(0), "the riskiest agent first")
			}},
		{name: "agent_rate", queryType: QueryAgentRate, model: `{"agent": "research-agent"}`, tr: exfilRange,
			interval: time.Minute, points: 48,
			check: func(t *testing.T, f data.Frames) {
				rows(48, "time", "observed", "expected", "lower", "upper")(t, f)
				require.Equal(t, data.FrameTypeTimeSeriesWide, f[0].Meta.Type)
				obs, _ := f[0].FieldByName("observed")
				up, _ := f[0].FieldByName("upper")
				burst := -1
				for i := range obs.Len() {
					if obs.At(i).(float64) > *up.At(i).(*float64) {
						burst = i
					}
				}
				require.NotEqual(t, -1, burst, "the exfiltration burst is above the band")
			}},
		{name: "agent_profile_tools", queryType: QueryAgentProfile, model: `{"agent": "billing-bot", "section": "tools"}`, tr: day2,
			check: rows(3, "tool", "baseline_share")},
		{name: "agent_profile_transitions", queryType: QueryAgentProfile, model: `{"agent": "billing-bot", "section": "transitions"}`, tr: day2,
			check: func(t *testing.T, f data.Frames) { nonEmpty(t, f, "from", "to", "probability") }},
		{name: "agent_sizes", queryType: QueryAgentSizes, model: `{"agent": "research-agent", "direction": "response"}`, tr: exfilRange,
			check: func(t *testing.T, f data.Frames) {
				nonEmpty(t, f, "time", "bytes", "p50", "p90", "p99")
				b, _ := f[0].FieldByName("bytes")
				p99, _ := f[0].FieldByName("p99")
				require.Greater(t, b.At(b.Len()-2).(float64), p99.At(0).(float64), "exfiltration answers are above the p99")
			}},
		{name: "timeseries_calls_by_agent", queryType: QueryTimeSeries, model: `{"metric": "calls", "by": "agent"}`, tr: day2,
			interval: time.Minute, points: 24,
			check: func(t *testing.T, f data.Frames) {
				rows(24, "time")(t, f)
				require.Len(t, f[0].Fields, 4, "time and one field per agent")
				require.Equal(t, data.Labels{"agent": "billing-bot"}, f[0].Fields[1].Labels)
			}},
		{name: "timeseries_anomalies_by_severity", queryType: QueryTimeSeries, model: `{"metric": "anomalies", "by": "severity", "step": "6h"}`, tr: day2,
			check: rows(4, "time")},
		{name: "timeseries_deliveries_by_status", queryType: QueryTimeSeries, model: `{"metric": "deliveries", "by": "status", "step": "6h"}`, tr: day2,
			check: rows(4, "time")},
		{name: "timeseries_errors_total", queryType: QueryTimeSeries, model: `{"metric": "errors", "agent": "*"}`, tr: day2, points: 12,
			check: rows(12, "time", "errors")},
		{name: "deliveries", queryType: QueryDeliveries, model: `{}`, tr: day2,
			check: rows(11, "delivery_id")},
		{name: "deliveries_dead_lettered", queryType: QueryDeliveries, model: `{"status": "dead_lettered"}`, tr: day2,
			check: rows(1, "error")},
		{name: "values_agents", queryType: QueryValues, model: `{"field": "agents"}`, tr: day2,
			check: func(t *testing.T, f data.Frames) {
				rows(3, "text")(t, f)
				require.Equal(t, "billing-bot", f[0].Fields[0].At(0))
			}},
		{name: "values_tools_of_agent", queryType: QueryValues, model: `{"field": "tools", "agent": "billing-bot"}`, tr: day2,
			check: rows(3, "text")},
	}
}

// rows asserts one frame with n rows holding the named fields.
func rows(n int, names ...string) func(t *testing.T, f data.Frames) {
	return func(t *testing.T, f data.Frames) {
		t.Helper()
		require.Len(t, f, 1)
		rows, err := f[0].RowLen()
		require.NoError(t, err)
		require.Equal(t, n, rows)
		for _, name := range names {
			_, i := f[0].FieldByName(name)
			require.GreaterOrEqual(t, i, 0, "field %s", name)
		}
	}
}

// nonEmpty asserts one frame with rows holding the named fields.
func nonEmpty(t *testing.T, f data.Frames, names ...string) {
	t.Helper()
	require.Len(t, f, 1)
	n, err := f[0].RowLen()
	require.NoError(t, err)
	require.Positive(t, n)
	for _, name := range names {
		_, i := f[0].FieldByName(name)
		require.GreaterOrEqual(t, i, 0, "field %s", name)
	}
}

// dataQuery builds the query Grafana would send.
func dataQuery(t testing.TB, refID, queryType, model string, tr backend.TimeRange, interval time.Duration, points int64) backend.DataQuery {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(model), &m))
	m["refId"], m["queryType"] = refID, queryType
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	if points == 0 {
		points = 1000
	}
	return backend.DataQuery{RefID: refID, QueryType: queryType, JSON: raw, TimeRange: tr, Interval: interval, MaxDataPoints: points}
}

// TestGolden runs a query of every type through the plugin against the fixture's API and
// compares the whole answer (frames, field types, labels, meta) with testdata/golden.
func TestGolden(t *testing.T) {
	d := newTestDatasource(t)
	covered := map[string]bool{}
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			covered[tc.queryType] = true
			resp, err := d.QueryData(t.Context(), &backend.QueryDataRequest{
				Queries: []backend.DataQuery{dataQuery(t, "A", tc.queryType, tc.model, tc.tr, tc.interval, tc.points)},
			})
			require.NoError(t, err)
			dr := resp.Responses["A"]
			require.NoError(t, dr.Error)
			tc.check(t, dr.Frames)
			for _, f := range dr.Frames {
				require.NotContains(t, f.Meta.ExecutedQueryString, testToken)
			}
			experimental.CheckGoldenJSONResponse(t, "testdata/golden", tc.name, &dr, *update)
		})
	}
	for _, qt := range QueryTypes {
		require.True(t, covered[qt], "no golden case for query type %s", qt)
	}
}
