package rate

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// ModelName names the model in anomalies and baselines.
const ModelName = "request_rate"

// Unit is how a bucket's observation reads: "calls/min" for one-minute buckets, "calls per
// 5m" otherwise; empty for Config.Values.
func (p *Params) Unit() string {
	if p.cfg.Values {
		return ""
	}
	switch p.cfg.Bucket {
	case time.Second:
		return "calls/s"
	case time.Minute:
		return "calls/min"
	case time.Hour:
		return "calls/h"
	}
	return "calls per " + ShortDuration(p.cfg.Bucket)
}

// Explain puts a result in words and numbers, e.g. observed "212 calls/min", typical
// "10–35 at this hour", and a one-sentence summary.
func (p *Params) Explain(r Result) schemas.Explanation {
	unit := p.Unit()
	with := func(x float64) string {
		if unit == "" {
			return formatNumber(x)
		}
		return formatNumber(x) + " " + unit
	}
	typical := formatNumber(r.Low) + "–" + formatNumber(r.High)
	if r.Low == r.High {
		typical = formatNumber(r.Low)
	}
	switch r.Season {
	case SeasonDay:
		typical += " at this hour"
	case SeasonWeek:
		typical += " on " + r.Time.Weekday().String() + "s at this hour"
	}
	var what string
	switch {
	case r.Learning:
		what = "Request rate while the baseline is still learning"
	case r.Direction == DirectionSpike:
		what = "Request rate spiked"
	case r.Direction == DirectionDrop && r.Observed == 0 && !p.cfg.Values:
		what = "Request rate fell silent"
	case r.Direction == DirectionDrop:
		what = "Request rate dropped"
	default:
		what = "Request rate as usual"
	}
	return schemas.Explanation{
		Summary:     fmt.Sprintf("%s: %s; typical %s (probability %.2g).", what, with(r.Observed), typical, r.Probability),
		Observed:    with(r.Observed),
		Typical:     typical,
		Model:       ModelName,
		Probability: r.Probability,
	}
}

// formatNumber writes counts as people read them: 212, 35, 3.5, 0.25.
func formatNumber(x float64) string {
	switch a := max(x, -x); {
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 1:
		return strings.TrimSuffix(strconv.FormatFloat(x, 'f', 1, 64), ".0")
	case a == 0:
		return "0"
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

// ShortDuration writes a duration without trailing zero units: 5m rather than 5m0s, 1h rather
// than 1h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
