package rate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFormatNumber(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		want string
	}{
		{212, "212"}, {35.4, "35"}, {10, "10"}, {3.5, "3.5"}, {3, "3"}, {0.25, "0.25"}, {0.333, "0.33"}, {0, "0"}, {-10, "-10"},
	} {
		require.Equal(t, tc.want, formatNumber(tc.x), "%g", tc.x)
	}
}

func TestUnit(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "calls/min"},
		{Config{Bucket: time.Second}, "calls/s"},
		{Config{Bucket: time.Hour}, "calls/h"},
		{Config{Bucket: 5 * time.Minute}, "calls per 5m"},
		{Config{Bucket: 90 * time.Second}, "calls per 1m30s"},
		{Config{Bucket: 2 * time.Hour}, "calls per 2h"},
		{Config{Values: true}, ""},
	} {
		require.Equal(t, tc.want, newParams(t, tc.cfg).Unit())
	}
}

func TestExplain(t *testing.T) {
	p := newParams(t, Config{})
	tuesday := time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		r    Result
		want string
	}{
		{"spike by the hour", Result{Time: tuesday, Observed: 212, Low: 10, High: 35.2, Probability: 3e-9, Direction: DirectionSpike, Season: SeasonDay},
			"Request rate spiked: 212 calls/min; typical 10–35 at this hour (probability 3e-09)."},
		{"silence by the week", Result{Time: tuesday, Observed: 0, Low: 10, High: 35, Probability: 1e-5, Direction: DirectionDrop, Season: SeasonWeek},
			"Request rate fell silent: 0 calls/min; typical 10–35 on Tuesdays at this hour (probability 1e-05)."},
		{"drop", Result{Time: tuesday, Observed: 2, Low: 10, High: 35, Probability: 1e-4, Direction: DirectionDrop},
			"Request rate dropped: 2 calls/min; typical 10–35 (probability 0.0001)."},
		{"learning", Result{Time: tuesday, Observed: 2, Low: 2, High: 2, Probability: 1, Learning: true},
			"Request rate while the baseline is still learning: 2 calls/min; typical 2 (probability 1)."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, p.Explain(tc.r).Summary)
		})
	}
}
