package gcheadroom

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultHeadroom is the heap mcpwatch lets grow between collections, whatever its live heap:
// the tap's process then collects about every thousand calls.
const DefaultHeadroom = 16 << 20

// MaxPercent caps the percent. The percent is set after a collection, for the heap it found
// live, and may still be in force when the live heap has grown a lot (the cleanup that sets
// it runs when the runtime gets to it, possibly collections later): the goal is then at most
// five times the live heap, where Go's default allows twice.
const MaxPercent = 400

// minHeapAt100 is the runtime's least heap goal at GOGC=100; it scales with GOGC.
const minHeapAt100 = 4 << 20

// Percent is the GOGC that sets the next collection's heap goal at live + headroom, for a
// collection that found live bytes of heap live and scanned scanned bytes of stacks and
// globals, between Go's default, 100, and MaxPercent. The runtime's goal is the larger of
// live + (live+scanned)×GOGC/100 and 4 MiB×GOGC/100; the smaller of the two percents that
// put each at live + headroom puts the larger there.
func Percent(live, scanned, headroom uint64) int {
	byGrowth := headroom * 100 / max(live+scanned, 1)
	byMinimum := (live + headroom) * 100 / minHeapAt100
	return int(max(100, min(byGrowth, byMinimum, MaxPercent)))
}

var (
	mu      sync.Mutex
	gen     int // the running chain of sentinels; 0: stopped
	nextGen = 1
	percent int // last set
)

// Start sets the collector's percent to Percent(live heap, headroom) now and again after
// every collection, until Stop. It does nothing and reports false when GOGC is set in the
// environment: the operator has chosen.
func Start(headroom uint64) bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	if gen > 0 {
		return true
	}
	gen = nextGen
	nextGen++
	adjust(headroom)
	arm(gen, headroom)
	return true
}

// Stop stops adjusting and restores Go's default percent.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if gen > 0 {
		gen, percent = 0, 0
		debug.SetGCPercent(100)
	}
}

// sentinel is what each collection frees to say it ran. It holds a pointer so that it is not
// batched with other small objects, which could keep it alive past its collection.
type sentinel struct{ _ *byte }

type chain struct {
	gen      int
	headroom uint64
}

// arm allocates a sentinel and lets it go: the next collection frees it, and its cleanup
// adjusts the percent and arms the next sentinel, until the chain is stopped.
func arm(g int, headroom uint64) {
	runtime.AddCleanup(new(sentinel), func(c chain) {
		mu.Lock()
		defer mu.Unlock()
		if gen != c.gen {
			return
		}
		adjust(c.headroom)
		arm(c.gen, c.headroom)
	}, chain{g, headroom})
}

// adjust sets the percent for what the last collection found.
func adjust(headroom uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	var v [3]uint64
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return
		}
		v[i] = s[i].Value.Uint64()
	}
	if p := Percent(v[0], v[1]+v[2], headroom); p != percent {
		percent = p
		debug.SetGCPercent(p)
	}
}
