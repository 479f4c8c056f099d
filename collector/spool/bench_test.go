package spool

import (
	"context"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// BenchmarkQueueAdd measures Add with and without waiting for the write, sequentially and from
// many goroutines, with fsync per batch in the background and deliveries acknowledged at once.
func BenchmarkQueueAdd(b *testing.B) {
	rec := make([]byte, 700)
	for _, bc := range []struct {
		name     string
		wait     time.Duration
		parallel bool
	}{
		{"nowait", 0, false},
		{"wait", 5 * time.Millisecond, false},
		{"nowait-parallel", 0, true},
		{"wait-parallel", 5 * time.Millisecond, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Open(Config{Dir: b.TempDir()}, "bench", pipeline.Settings{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ok := func(context.Context, [][]byte) error { return nil }
			q := NewQueue(s, ok, QueueOptions{AddWait: bc.wait}, pipeline.Settings{})
			_ = q.Start(context.Background())
			defer q.Shutdown(context.Background())
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_ = q.Add(append([]byte(nil), rec...))
					}
				})
				return
			}
			for range b.N {
				_ = q.Add(append([]byte(nil), rec...))
			}
		})
	}
}
