package rate

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSnapshotRestoresTheSameScores: a model restored from a snapshot scores the next days
// exactly as the model that never stopped.
func TestSnapshotRestoresTheSameScores(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, 5*24*time.Hour, office, 20)
	m.Add(monday.Add(5*24*time.Hour), 3) // an open bucket is part of the state
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), 2048)

	restored := p.NewModel(nil)
	require.NoError(t, restored.UnmarshalBinary(b))
	b2, err := restored.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, b2)

	from := monday.Add(5*24*time.Hour + time.Minute)
	want := simulate(m, from, 2*24*time.Hour, office, 21)
	got := simulate(restored, from, 2*24*time.Hour, office, 21)
	require.Equal(t, want, got)
	r1, ok1 := m.Advance(from.Add(49 * time.Hour))
	r2, ok2 := restored.Advance(from.Add(49 * time.Hour))
	require.Equal(t, ok1, ok2)
	require.Equal(t, r1, r2)
}

func TestUnmarshalRefusesBadSnapshots(t *testing.T) {
	p := newParams(t, Config{})
	m := p.NewModel(nil)
	simulate(m, monday, 24*time.Hour, flat(3), 22)
	good, err := m.MarshalBinary()
	require.NoError(t, err)

	nan := append([]byte(nil), good...)
	copy(nan[16+8:], []byte{0, 0, 0xc0, 0x7f}) // level := NaN
	badSlot := append([]byte(nil), good...)
	copy(badSlot[snapshotHeader:], []byte{0, 0, 0x80, 0x7f}) // first slot := +Inf

	for _, tc := range []struct {
		name string
		p    *Params
		b    []byte
		want string
	}{
		{"empty", p, nil, "cannot restore a request-rate baseline: 0 bytes is too short"},
		{"version", p, append([]byte{9}, good[1:]...), "cannot restore a request-rate baseline: unknown version 9"},
		{"truncated", p, good[:len(good)-1], fmt.Sprintf("cannot restore a request-rate baseline: %d bytes, want %d", len(good)-1, len(good))},
		{"other profiles", newParams(t, Config{HourSlots: 6}), good, "cannot restore a request-rate baseline: it has 12 slots in profile 0, the configuration 6"},
		{"not a number", p, nan, "cannot restore a request-rate baseline: it holds a non-finite number"},
		{"infinite slot", p, badSlot, "cannot restore a request-rate baseline: it holds a non-finite number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.p.NewModel(nil)
			before, _ := target.MarshalBinary()
			require.EqualError(t, target.UnmarshalBinary(tc.b), tc.want)
			after, _ := target.MarshalBinary()
			require.Equal(t, before, after, "a refused snapshot leaves the model as it was")
		})
	}
	require.EqualError(t, (&Model{}).UnmarshalBinary(good), "cannot restore a request-rate baseline into a model without parameters: use Params.NewModel")
	require.Len(t, good, snapshotHeader+(12+24+168)*8)
}

// TestRestoresVersion1: a snapshot written by the previous release (version 1, full-precision
// slots, no current slots marked) restores, and the model goes on scoring as that release
// did (testdata/model_v1.scores.json: the next two days' scores it gave after the snapshot;
// they differ by at most 1.25 points, from the slots the new release packs: mostly the
// compact slots' variances, rounded to 1/128 of an octave).
func TestRestoresVersion1(t *testing.T) {
	b, err := os.ReadFile("testdata/model_v1.bin")
	require.NoError(t, err)
	require.Equal(t, byte(1), b[0])
	raw, err := os.ReadFile("testdata/model_v1.scores.json")
	require.NoError(t, err)
	var want []float64
	require.NoError(t, json.Unmarshal(raw, &want))

	m := newParams(t, Config{}).NewModel(nil)
	require.NoError(t, m.UnmarshalBinary(b))
	got := simulate(m, monday.Add(10*24*time.Hour), 2*24*time.Hour, office, 41)
	require.Len(t, got, len(want))
	for i, r := range got {
		require.InDelta(t, want[i], r.Score, 1.5, "bucket %d", i)
	}
}
