package gcheadroom

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, scanned, headroom uint64
		want                    int
	}{
		{1 * mib, 0, 8 * mib, 225},         // small: the 4 MiB minimum scaled to 9 MiB
		{1 * mib, 0, 32 * mib, 400},        // capped (825 would put that minimum at 33 MiB)
		{16 * mib, 0, 32 * mib, 200},       // 16 MiB live: grows by twice itself
		{12 * mib, 4 * mib, 32 * mib, 200}, // stacks and globals count towards growth
		{32 * mib, 0, 32 * mib, 100},       // from the headroom up, as by default
		{512 * mib, 0, 32 * mib, 100},      // never less than the default
		{0, 0, 32 * mib, 400},
	} {
		if got := Percent(c.live, c.scanned, c.headroom); got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.scanned, c.headroom, got, c.want)
		}
	}
}

func unsetGOGC(t *testing.T) {
	t.Setenv("GOGC", "") // restored after the test
	_ = os.Unsetenv("GOGC")
}

func TestGOGCSetIsLeftAlone(t *testing.T) {
	t.Setenv("GOGC", "150")
	if Start(DefaultHeadroom) {
		Stop()
		t.Fatal("Start adjusted the collector with GOGC set")
	}
}

// heap reads the live heap and the goal of the next collection.
func heap() (live, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestFollowsTheLiveHeap checks the runtime's own heap goal: live + headroom for a small live
// heap, about twice a large one, and Go's default again after Stop.
func TestFollowsTheLiveHeap(t *testing.T) {
	unsetGOGC(t)
	const headroom = 8 << 20 // under the cap for a small heap
	if !Start(headroom) {
		t.Fatal("Start did nothing with GOGC unset")
	}
	defer Stop()
	awaitGoal(t, "small heap", func(live, goal uint64) bool {
		return goal >= live+headroom*9/10 && goal <= live+headroom*11/10
	})

	kept := make([][]byte, 96) // 96 MiB more live: far over the headroom
	for i := range kept {
		kept[i] = make([]byte, 1<<20)
	}
	awaitGoal(t, "96 MiB live", func(live, goal uint64) bool {
		return goal >= 2*live*9/10 && goal <= 2*live*12/10
	})
	runtime.KeepAlive(kept)

	Stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after Stop the percent is %d, want 100", p)
	}
}

// awaitGoal collects until ok holds for the live heap and the goal (the percent is set by
// a cleanup after each collection, so it may take a second one).
func awaitGoal(t *testing.T, what string, ok func(live, goal uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		live, goal := heap()
		if ok(live, goal) {
			t.Logf("%s: live %d KiB, goal %d KiB", what, live>>10, goal>>10)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: live %d KiB, goal %d KiB", what, live>>10, goal>>10)
		}
	}
}

// TestGrowthOvershootIsBounded keeps 48 MiB more live in 256 KiB steps while making garbage,
// and watches the heap goal: the percent set for the smaller heap before may still be in
// force collections later, but it is capped, so the goal stays within five times the live
// heap (the last collection's, which may lag what is kept now by a few steps).
func TestGrowthOvershootIsBounded(t *testing.T) {
	unsetGOGC(t)
	if !Start(DefaultHeadroom) {
		t.Fatal("Start did nothing with GOGC unset")
	}
	defer Stop()
	runtime.GC()
	var kept [][]byte
	var sink []byte
	for len(kept) < 192 {
		kept = append(kept, make([]byte, 256<<10))
		for range 64 {
			sink = make([]byte, 8<<10) // garbage
		}
		// The runtime's goal at MaxPercent: live + (live+scanned)×4, and at least 16 MiB.
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"},
			{Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
		metrics.Read(s)
		live, goal, scanned := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()+s[3].Value.Uint64()
		if limit := max(live+(live+scanned)*MaxPercent/100, minHeapAt100*MaxPercent/100) + 64<<10; goal > limit {
			t.Fatalf("heap goal %d KiB with %d KiB live: over %d%%", goal>>10, live>>10, MaxPercent)
		}
	}
	runtime.KeepAlive(kept)
	runtime.KeepAlive(sink)
}
