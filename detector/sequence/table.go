package sequence

// table is a small hash map from uint32 keys to values, for per-agent and per-session state.
// Entries live in a dense slice (iteration is insertion order, apart from removals and
// replacements); index is an open-addressing array of positions+1, built only once the table
// holds more than linearMax entries: most agents make a handful of calls, and scanning a few
// keys costs less than hashing — and than the index's memory and cache misses. Callers
// enforce their own size caps, which must stay below 1<<16.
type table[V any] struct {
	ents []entry[V]
	// index is nil, or 0 = empty slot, else position+1, its length a power of two ≥
	// 2·len(ents). A pointer, not a slice: most tables never have one, and the table is
	// part of every agent's baseline and every session.
	index *[]uint16
}

// linearMax is the most entries a table looks up by scanning, without an index.
const linearMax = 8

type entry[V any] struct {
	key uint32
	val V
}

func hashKey(k uint32) uint32 {
	k *= 0x9E3779B1
	return k ^ k>>16
}

func (t *table[V]) len() int { return len(t.ents) }

// find returns k's position, or -1.
func (t *table[V]) find(k uint32) int {
	if t.index == nil {
		for i := range t.ents {
			if t.ents[i].key == k {
				return i
			}
		}
		return -1
	}
	ix := *t.index
	mask := uint32(len(ix) - 1)
	for i := hashKey(k) & mask; ; i = (i + 1) & mask {
		e := ix[i]
		if e == 0 {
			return -1
		}
		if t.ents[e-1].key == k {
			return int(e - 1)
		}
	}
}

// add appends k, which must be absent, and returns its position.
func (t *table[V]) add(k uint32, v V) int {
	if n := len(t.ents); n == cap(t.ents) && n < linearMax {
		// Small tables grow two entries at a time: most agents' stay small, and doubling
		// would leave a quarter of them empty.
		t.ents = append(make([]entry[V], 0, n+2), t.ents...)
	}
	t.ents = append(t.ents, entry[V]{k, v})
	pos := len(t.ents) - 1
	switch {
	case t.index == nil:
		if len(t.ents) > linearMax {
			t.rebuild()
		}
	case 2*len(t.ents) > len(*t.index):
		t.rebuild()
	default:
		t.place(pos)
	}
	return pos
}

// replace puts k (absent) and v at position pos, dropping the entry there.
func (t *table[V]) replace(pos int, k uint32, v V) {
	t.ents[pos] = entry[V]{k, v}
	t.rebuild()
}

// removeWhere drops the entries for which drop reports true, keeping the others' order.
func (t *table[V]) removeWhere(drop func(e *entry[V]) bool) {
	n := 0
	for i := range t.ents {
		if drop(&t.ents[i]) {
			continue
		}
		t.ents[n] = t.ents[i]
		n++
	}
	if n == len(t.ents) {
		return
	}
	t.ents = t.ents[:n]
	t.rebuild()
}

// reset empties the table, keeping its memory.
func (t *table[V]) reset() {
	t.ents = t.ents[:0]
	if t.index != nil {
		clear(*t.index)
	}
}

func (t *table[V]) place(pos int) {
	ix := *t.index
	mask := uint32(len(ix) - 1)
	i := hashKey(t.ents[pos].key) & mask
	for ix[i] != 0 {
		i = (i + 1) & mask
	}
	ix[i] = uint16(pos + 1)
}

// rebuild sizes the index to at least twice the entries and re-places them all; a table
// without an index gets one only beyond linearMax entries.
func (t *table[V]) rebuild() {
	if t.index == nil && len(t.ents) <= linearMax {
		return
	}
	size := 8
	for size < 2*len(t.ents) {
		size *= 2
	}
	if t.index == nil || size > len(*t.index) {
		ix := make([]uint16, size)
		t.index = &ix
	} else {
		clear(*t.index)
	}
	for pos := range t.ents {
		t.place(pos)
	}
}

// indexLen is the index's length (0: none).
func (t *table[V]) indexLen() int {
	if t.index == nil {
		return 0
	}
	return len(*t.index)
}
