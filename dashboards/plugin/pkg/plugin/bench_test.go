package plugin

import (
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// BenchmarkQueryData measures a query from the plugin's entry point to frames, the API call to
// the fixture's server on loopback included (the API's own work is most of it): a day of calls
// by agent in 1-minute buckets (3 series × 1,440 points), an agent's rate against its band over
// 4 hours, and a 44-event session timeline.
func BenchmarkQueryData(b *testing.B) {
	d := newTestDatasource(b)
	cases := []struct {
		name string
		q    backend.DataQuery
	}{
		{"timeseries_1440x3", dataQuery(b, "A", QueryTimeSeries, `{"metric": "calls", "by": "agent", "step": "1m"}`, day2, 0, 0)},
		{"agent_rate_4h", dataQuery(b, "A", QueryAgentRate, `{"agent": "research-agent"}`, exfilRange, time.Minute, 240)},
		{"session_events_44", dataQuery(b, "A", QuerySessionEvents, `{"session": "research-exfil"}`, day2, 0, 0)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := &backend.QueryDataRequest{Queries: []backend.DataQuery{c.q}}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := d.QueryData(b.Context(), req)
				if err != nil || resp.Responses["A"].Error != nil {
					b.Fatal(err, resp.Responses["A"].Error)
				}
			}
		})
	}
}
