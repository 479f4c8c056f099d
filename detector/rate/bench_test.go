package rate

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const agents = 100_000

// population returns n agents' models, each a copy of one that learnt a week of the office
// agent, and the time their next bucket starts.
func population(tb testing.TB, n int) (*Params, []*Model, time.Time) {
	p := newParams(tb, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, week, office, 30)
	snap, err := m.MarshalBinary()
	require.NoError(tb, err)
	models := make([]*Model, n)
	for i := range models {
		models[i] = p.NewModel(nil)
		require.NoError(tb, models[i].UnmarshalBinary(snap))
	}
	return p, models, monday.Add(week)
}

// BenchmarkRateObserve scores and learns one finished bucket of one of 100,000 agents per
// operation: the cost of the model per bucket.
func BenchmarkRateObserve(b *testing.B) {
	_, models, start := population(b, agents)
	counts := []float64{0, 1, 3, 20, 18, 22, 0, 5, 212}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m := models[i%agents]
		t := start.Add(time.Duration(i/agents) * time.Minute)
		m.Observe(t, counts[i%len(counts)])
	}
}

// BenchmarkRateObserveOne scores and learns one agent's finished buckets of ordinary counts
// (0–2 calls): the model's computation, without the cache misses of many agents.
func BenchmarkRateObserveOne(b *testing.B) {
	_, models, start := population(b, 1)
	m := models[0]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Observe(start.Add(time.Duration(i)*time.Minute), float64(i%3))
	}
}

// BenchmarkRateAdd counts one call of one of 100,000 agents per operation, each agent making
// about 20 calls a minute: the cost per event on the detector's hot path.
func BenchmarkRateAdd(b *testing.B) {
	_, models, start := population(b, agents)
	const perMinute = 20
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m := models[i%agents]
		t := start.Add(time.Duration(i/agents) * time.Minute / perMinute)
		m.Add(t, 1)
	}
}

// BenchmarkRateMemory reports the heap one agent's model takes.
func BenchmarkRateMemory(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(bytesPerModel(b, 10_000), "bytes/model")
	}
}

func bytesPerModel(tb testing.TB, n int) float64 {
	p := newParams(tb, Config{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	models := make([]*Model, n)
	for i := range models {
		models[i] = p.NewModel(nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(models)
	// The slice of pointers is the caller's, not the models'.
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc) - float64(8*n)) / float64(n)
}

func TestMemoryPerModel(t *testing.T) {
	per := bytesPerModel(t, 10_000)
	t.Logf("%.0f bytes per model", per)
	require.LessOrEqual(t, per, 2048.0)
}

func TestObserveAndAddDoNotAllocate(t *testing.T) {
	_, models, start := population(t, 1)
	m := models[0]
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		m.Observe(start.Add(time.Duration(i)*time.Minute), float64(i%30))
		i++
	})
	require.Zero(t, allocs)
	allocs = testing.AllocsPerRun(1000, func() {
		m.Add(start.Add(time.Duration(i)*time.Second), 1)
		i++
	})
	require.Zero(t, allocs)
}
