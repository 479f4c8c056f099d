package rate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBandIsObservesPrediction(t *testing.T) {
	_, m := trained(t)
	before, err := m.MarshalBinary()
	require.NoError(t, err)
	next := monday.Add(3 * week)
	times := []time.Time{
		next.Add(10 * time.Hour),                                 // Monday, office hours
		next.Add(3 * time.Hour),                                  // Monday night
		next.Add(5*24*time.Hour + 11*time.Hour),                  // Saturday
		next.Add(2*24*time.Hour + 17*time.Hour + 55*time.Minute), // Wednesday, last slot of an hour
	}
	bands := make([]Band, len(times))
	for i, at := range times {
		b, ok := m.Band(at)
		require.True(t, ok)
		bands[i] = b
	}
	after, err := m.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, before, after, "Band does not change the model")

	for i, at := range times {
		// Observe reports the same prediction before it learns the bucket.
		c := restore(t, m)
		r := c.Observe(at, 3)
		require.Equal(t, Band{r.Expected, r.Low, r.High}, bands[i], "at %s", at)
		require.LessOrEqual(t, bands[i].Low, bands[i].Expected)
		require.LessOrEqual(t, bands[i].Expected, bands[i].High)
	}
	require.Greater(t, bands[0].Expected, 10*bands[1].Expected, "office hours are busier than nights")
}

// restore copies m through its snapshot.
func restore(t *testing.T, m *Model) *Model {
	t.Helper()
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	c := m.p.NewModel(nil)
	require.NoError(t, c.UnmarshalBinary(b))
	return c
}

func TestWeekBands(t *testing.T) {
	_, m := trained(t)
	bands, ok := m.WeekBands()
	require.True(t, ok)
	require.Len(t, bands, HoursPerWeek)
	hour := func(day, h int) Band { return bands[24*day+h] }
	for day := range 5 {
		busy, night := hour(day, 10), hour(day, 3)
		require.InDelta(t, 20, busy.Expected, 6, "weekday %d 10:00", day)
		require.Less(t, night.Expected, 2.0, "weekday %d 03:00", day)
		require.Greater(t, busy.Low, night.High, "weekday %d: the bands do not overlap", day)
	}
	require.Less(t, hour(5, 10).Expected, 2.0, "Saturday 10:00 is quiet")
	require.Less(t, hour(6, 14).Expected, 2.0, "Sunday 14:00 is quiet")

	// An hour's band covers every minute's band within it.
	start := monday.Add(4*24*time.Hour + 9*time.Hour) // Friday 09:00
	var sum float64
	for i := range 60 {
		b, _ := m.Band(start.Add(time.Duration(i) * time.Minute))
		require.GreaterOrEqual(t, b.Low, hour(4, 9).Low)
		require.LessOrEqual(t, b.High, hour(4, 9).High)
		sum += b.Expected
	}
	require.InDelta(t, sum/60, hour(4, 9).Expected, 1e-9)
}

func TestBandOfAnEmptyModel(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	_, ok := m.Band(monday)
	require.False(t, ok)
	_, ok = m.WeekBands()
	require.False(t, ok)
	require.True(t, m.Learning())

	m.Observe(monday, 4)
	b, ok := m.Band(monday.Add(time.Minute))
	require.True(t, ok, "one bucket is a level")
	require.InDelta(t, 4, b.Expected, 1e-6)
	require.True(t, m.Learning())

	_, trainedModel := trained(t)
	require.False(t, trainedModel.Learning())
}

func BenchmarkWeekBands(b *testing.B) {
	_, m := trained(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m.WeekBands(); !ok {
			b.Fatal("no bands")
		}
	}
}
