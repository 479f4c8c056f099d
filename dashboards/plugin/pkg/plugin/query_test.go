package plugin

import (
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/stretchr/testify/require"
)

func TestChooseStep(t *testing.T) {
	day := backend.TimeRange{From: t0, To: t0.Add(24 * time.Hour)}
	tests := []struct {
		name     string
		tr       backend.TimeRange
		interval time.Duration
		points   int64
		override string
		min      time.Duration
		want     time.Duration
		err      string
	}{
		{name: "interval rounded up to a nice step", tr: day, interval: 40 * time.Second, want: time.Minute},
		{name: "max data points widen the step", tr: day, interval: time.Second, points: 100, want: 15 * time.Minute},
		{name: "one point per hour", tr: day, points: 24, want: time.Hour},
		{name: "minimum", tr: day, interval: time.Second, points: 10000, min: time.Minute, want: time.Minute},
		{name: "no hints stays under the bucket cap", tr: day, want: 10 * time.Second},
		{name: "a year in days", tr: backend.TimeRange{From: t0, To: t0.Add(365 * 24 * time.Hour)}, points: 100, want: 4 * 24 * time.Hour},
		{name: "override", tr: day, interval: time.Minute, override: "7m", want: 7 * time.Minute},
		{name: "override too small", tr: day, override: "5s", err: "step: 5s makes 17281 buckets over 24h0m0s; at most 10000"},
		{name: "override below a second", tr: day, override: "500ms", err: "at least 1s"},
		{name: "empty range", tr: backend.TimeRange{From: t0, To: t0}, err: "time range: 2026-11-02T00:00:00Z to 2026-11-02T00:00:00Z is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseStep(backend.DataQuery{TimeRange: tc.tr, Interval: tc.interval, MaxDataPoints: tc.points}, tc.override, tc.min)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, buckets(tc.tr.Duration(), got)+1, int64(maxBuckets))
		})
	}
}

func TestHourOfWeek(t *testing.T) {
	require.Equal(t, 0, hourOfWeek(t0), "Monday 00:00 UTC")
	require.Equal(t, 25, hourOfWeek(t0.Add(25*time.Hour+59*time.Minute)))
	require.Equal(t, 167, hourOfWeek(t0.Add(-time.Minute)), "Sunday 23:59 UTC")
	berlin := time.FixedZone("CET", 3600)
	require.Equal(t, 0, hourOfWeek(t0.In(berlin)), "judged in UTC")
}

func TestBandOver(t *testing.T) {
	bands := map[int]band{
		0: {HourOfWeek: 0, Expected: 10, Lower: 2, Upper: 20},
		1: {HourOfWeek: 1, Expected: 30, Lower: 4, Upper: 60},
	}
	lo, ex, up := bandOver(bands, t0.Add(10*time.Minute), 5*time.Minute)
	require.Equal(t, []float64{2, 10, 20}, []float64{*lo, *ex, *up}, "within one hour")
	lo, ex, up = bandOver(bands, t0, 2*time.Hour)
	require.Equal(t, []float64{3, 20, 40}, []float64{*lo, *ex, *up}, "averaged over the hours covered")
	lo, ex, up = bandOver(bands, t0.Add(5*time.Hour), time.Hour)
	require.Nil(t, lo)
	require.Nil(t, ex)
	require.Nil(t, up)
}

func TestRateUnit(t *testing.T) {
	for unit, want := range map[string]time.Duration{
		"calls/s": time.Second, "calls/min": time.Minute, "calls/h": time.Hour,
		"calls per 5m": 5 * time.Minute, "calls per 1m30s": 90 * time.Second,
	} {
		got, ok := rateUnit(unit)
		require.True(t, ok, unit)
		require.Equal(t, want, got, unit)
	}
	for _, unit := range []string{"", "bytes", "calls per fortnight", "calls per -5m"} {
		_, ok := rateUnit(unit)
		require.False(t, ok, unit)
	}
}

func TestWiden(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	times, cols := widen([]series{
		{Key: "a", Points: []point{{at(0), 1}, {at(2), 3}}},
		{Key: "b", Points: []point{{at(1), 5}, {at(2), 7}}},
	})
	require.Equal(t, []time.Time{at(0), at(1), at(2)}, times)
	require.Equal(t, [][]float64{{1, 0, 3}, {0, 5, 7}}, cols)
	times, cols = widen(nil)
	require.Empty(t, times)
	require.Empty(t, cols)
}

func TestParseQueryAllValues(t *testing.T) {
	q, err := parseQuery(backend.DataQuery{QueryType: QuerySessions, JSON: []byte(`{"agent": "*", "server": "$__all", "tool": " read_file "}`)})
	require.NoError(t, err)
	require.Equal(t, Query{Tool: "read_file"}, q)
	q, err = parseQuery(backend.DataQuery{QueryType: QueryAgentSizes, JSON: []byte(`{"agent": "a"}`)})
	require.NoError(t, err)
	require.Equal(t, "request", q.Direction, "agent_sizes defaults to request sizes")
}
