package nab

import (
	"fmt"
	"slices"
	"time"

	"github.com/mcpwatch/mcpwatch/detector/rate"
)

// RateScores runs the request-rate model over one series and returns an anomaly score in
// [0, 1] (Score/100) per row. It is the adapter between NAB and the live model: each row's
// value is one bucket's observation (Config.Values), and the bucket is the series' typical
// spacing; everything else is the model's defaults, so the profiles that are finer than the
// spacing allows switch themselves off (five-minute data keeps all three, hourly data the
// day and week profiles). Rows the model marks as repeats of an ongoing anomaly score 0, as
// the live detector merges them rather than raising them again.
func RateScores(s Series) ([]float64, error) {
	cfg := RateConfig(s.Times)
	p, err := rate.NewParams(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot configure the rate model for %s: %w", s.Name, err)
	}
	m := p.NewModel(nil)
	out := make([]float64, len(s.Values))
	for i, v := range s.Values {
		r := m.Observe(s.Times[i], v)
		if !r.Repeat {
			out[i] = r.Score / 100
		}
	}
	return out, nil
}

// RateConfig is the rate model's configuration for a series with these timestamps.
func RateConfig(times []time.Time) rate.Config {
	return rate.Config{Bucket: typicalSpacing(times), Values: true}
}

// typicalSpacing is the median gap between rows, at least one second.
func typicalSpacing(times []time.Time) time.Duration {
	if len(times) < 2 {
		return time.Minute
	}
	gaps := make([]time.Duration, 0, len(times)-1)
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	slices.Sort(gaps)
	return max(gaps[len(gaps)/2], time.Second)
}
