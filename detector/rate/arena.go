package rate

import "sync"

// slotArena hands out models' slots from shared chunks. Allocated one by one, a model's
// slots (816 bytes by default) would each take the next size class up (896 bytes): with
// 100,000 agents, 8 MB for nothing. Slots released by evicted agents' models are reused.
type slotArena struct {
	mu    sync.Mutex // Params, and so the arena, may be shared by goroutines
	chunk []byte     // what is left of the current chunk
	free  []slots    // released slots, all of one size (Params fixes it)
}

// arenaChunk is the size of the chunks slots are cut from: 80 models' slots by default.
const arenaChunk = 64 << 10

// get returns size zeroed bytes.
func (a *slotArena) get(size int) slots {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.free); n > 0 {
		s := a.free[n-1]
		a.free = a.free[:n-1]
		clear(s)
		return s
	}
	if len(a.chunk) < size {
		a.chunk = make([]byte, max(arenaChunk, size))
	}
	s := a.chunk[:size:size]
	a.chunk = a.chunk[size:]
	return s
}

// put takes back slots from get.
func (a *slotArena) put(s slots) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.free = append(a.free, s)
}
