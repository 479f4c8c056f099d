package rate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	p, err := NewParams(Config{})
	require.NoError(t, err)
	cfg := p.Config()
	require.Equal(t, time.Minute, cfg.Bucket)
	require.Equal(t, 12, cfg.HourSlots)
	require.Equal(t, 24, cfg.DaySlots)
	require.Equal(t, 168, cfg.WeekSlots)
	require.NoError(t, cfg.Validate())
	require.Equal(t, 12+24+168, p.nslots)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bucket", Config{Bucket: 500 * time.Millisecond}, "bucket: must be at least 1s, got 500ms"},
		{"hour slots", Config{HourSlots: 61}, "hour_slots: must be from 1 to 60, got 61"},
		{"day slots", Config{DaySlots: -1}, "day_slots: must be from 1 to 288, got -1"},
		{"week slots", Config{WeekSlots: 169}, "week_slots: must be from 1 to 168, got 169"},
		{"level half-life", Config{Bucket: time.Hour, LevelHalfLife: time.Minute}, "level_half_life: must be at least one bucket (1h0m0s), got 1m0s"},
		{"season half-life", Config{SeasonHalfLife: 0.1}, "season_half_life: must be at least 0.5 periods, got 0.1"},
		{"shrinkage", Config{Shrinkage: -1}, "shrinkage: must be positive, got -1"},
		{"clip", Config{Clip: 0.5}, "clip: must be at least 1 spread, got 0.5"},
		{"tail", Config{TailDF: 0.5}, "tail_df: must be at least 1, got 0.5"},
		{"calibration", Config{Bucket: time.Hour, CalibrationHalfLife: time.Minute}, "calibration_half_life: must be at least one bucket (1h0m0s), got 1m0s"},
		{"episode gap", Config{Bucket: time.Hour, EpisodeGap: time.Minute}, "episode_gap: must be at least one bucket (1h0m0s), got 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewParams(tc.cfg)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestProfilesNeedBucketsShorterThanSlots(t *testing.T) {
	// Hourly buckets: no hour profile; the day and week profiles keep one slot per hour.
	p := newParams(t, Config{Bucket: time.Hour})
	require.Zero(t, p.layers[layerHour].slots)
	require.Equal(t, 24, p.layers[layerDay].slots)
	require.Equal(t, 168, p.layers[layerWeek].slots)
	require.Equal(t, 24+168, p.nslots)
	// One slot is no profile at all.
	p = newParams(t, Config{HourSlots: 1, WeekSlots: 1})
	require.Equal(t, 24, p.nslots)
	require.Equal(t, -1, p.slotAt(layerHour, 0))
}

func TestSlots(t *testing.T) {
	p := newParams(t, Config{})
	at := func(s string) [numLayers]int {
		ts, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		var idx [numLayers]int
		for i := range idx {
			idx[i] = p.slotAt(i, ts.Unix())
		}
		return idx
	}
	// Monday 00:00: the first slot of each profile.
	require.Equal(t, [numLayers]int{0, 12, 36}, at("2026-01-05T00:00:00Z"))
	// Tuesday 14:37: minute 37 is the eighth five-minute slot; hour 14; hour 24+14 of the week.
	require.Equal(t, [numLayers]int{7, 12 + 14, 36 + 38}, at("2026-01-06T14:37:00Z"))
	// Sunday 23:59: the last slots.
	require.Equal(t, [numLayers]int{11, 12 + 23, 36 + 167}, at("2026-01-11T23:59:00Z"))
	// Before 1970 the phases still count from Monday.
	require.Equal(t, [numLayers]int{0, 12, 36}, at("1969-12-29T00:00:00Z"))
}
