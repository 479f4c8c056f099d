package sequence

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTableMatchesMap runs random adds, replacements, removals and resets on tables that stay
// small (found by scanning) and that grow past linearMax (found through the index), and checks
// every lookup against a map.
func TestTableMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   uint32 // keys are drawn from [0, keys)
		maxLen int
	}{
		{name: "small", keys: 12, maxLen: linearMax},
		{name: "grows past the scan", keys: 64, maxLen: 40},
		{name: "large", keys: 512, maxLen: 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			var tb table[uint32]
			want := map[uint32]uint32{}
			check := func() {
				require.Len(t, tb.ents, len(want))
				for k := range tc.keys {
					i := tb.find(k)
					v, ok := want[k]
					require.Equal(t, ok, i >= 0, "key %d", k)
					if ok {
						require.Equal(t, k, tb.ents[i].key)
						require.Equal(t, v, tb.ents[i].val)
					}
				}
				if len(tb.ents) <= linearMax && tb.index == nil {
					return
				}
				require.GreaterOrEqual(t, tb.indexLen(), 2*len(tb.ents), "the index has room")
			}
			for step := range 3000 {
				k := r.Uint32N(tc.keys)
				switch op := r.IntN(20); {
				case op == 0:
					tb.reset()
					clear(want)
				case op == 1 && len(tb.ents) > 0:
					pos := r.IntN(len(tb.ents))
					if _, taken := want[k]; !taken {
						delete(want, tb.ents[pos].key)
						tb.replace(pos, k, uint32(step))
						want[k] = uint32(step)
					}
				case op == 2:
					tb.removeWhere(func(e *entry[uint32]) bool { return e.key%3 == k%3 })
					for key := range want {
						if key%3 == k%3 {
							delete(want, key)
						}
					}
				default:
					if i := tb.find(k); i >= 0 {
						tb.ents[i].val = uint32(step)
					} else if len(tb.ents) < tc.maxLen {
						require.Equal(t, len(tb.ents), tb.add(k, uint32(step)))
					} else {
						continue
					}
					want[k] = uint32(step)
				}
				check()
			}
		})
	}
}
