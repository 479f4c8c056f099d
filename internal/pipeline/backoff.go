package pipeline

import (
	"math/rand/v2"
	"time"
)

// Backoff is exponential backoff with jitter for retry loops: a random delay in [d/2, d] where
// d = base·2^attempt, capped at max.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	d := base << min(attempt, 30)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}
