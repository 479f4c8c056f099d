package rate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// snapshotVersion is the first byte of a marshalled Model. Version 2 marks each profile's
// current slot (the byte after a slot's n, zero in version 1); version 1 is still read.
const snapshotVersion = 2

// slotHot flags a profile's current slot in a snapshot.
const slotHot = 1

// The fixed part of a snapshot: version, flags, three slot counts, the open bucket and the
// float32s (count, n, level, v0, rv, tw, peak, calm, cal×12).
const snapshotHeader = 1 + 1 + numLayers*2 + 8 + (8+calBins)*4

// MarshalBinary encodes the model's state (little-endian, float32s): about 1.7 KB with the
// default profiles.
func (m *Model) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, snapshotHeader+m.p.nslots*8)
	b = append(b, snapshotVersion)
	var flags byte
	if m.open {
		flags = 1
	}
	b = append(b, flags)
	for _, l := range m.p.layers {
		b = binary.LittleEndian.AppendUint16(b, uint16(l.slots))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(m.bucket))
	f := func(x float32) { b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x)) }
	f(m.count)
	f(m.n)
	f(m.level)
	f(m.v0)
	f(m.rv)
	f(m.tw)
	f(m.peak)
	f(m.calm)
	for _, x := range m.cal {
		f(x)
	}
	for i := range m.p.nslots {
		s := m.slot(i)
		f(s.mean)
		b = binary.LittleEndian.AppendUint16(b, uint16(s.lv))
		var flags byte
		if slices.Contains(m.hotAt[:], int16(i)) {
			flags = slotHot
		}
		b = append(b, s.n, flags)
	}
	return b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary into a model built from Params
// with the same profiles (p.NewModel(nil).UnmarshalBinary(b)). A snapshot taken under other
// slot counts is refused: the baseline has to be learnt afresh.
func (m *Model) UnmarshalBinary(b []byte) error {
	if m.p == nil {
		return errors.New("cannot restore a request-rate baseline into a model without parameters: use Params.NewModel")
	}
	if len(b) < snapshotHeader {
		return fmt.Errorf("cannot restore a request-rate baseline: %d bytes is too short", len(b))
	}
	version := b[0]
	if version != 1 && version != snapshotVersion {
		return fmt.Errorf("cannot restore a request-rate baseline: unknown version %d", b[0])
	}
	open := b[1]&1 != 0
	for i, l := range m.p.layers {
		if n := int(binary.LittleEndian.Uint16(b[2+2*i:])); n != l.slots {
			return fmt.Errorf("cannot restore a request-rate baseline: it has %d slots in profile %d, the configuration %d", n, i, l.slots)
		}
	}
	if want := snapshotHeader + m.p.nslots*8; len(b) != want {
		return fmt.Errorf("cannot restore a request-rate baseline: %d bytes, want %d", len(b), want)
	}
	bucket := int64(binary.LittleEndian.Uint64(b[8:]))
	rest := b[16:]
	f := func() float32 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(rest))
		rest = rest[4:]
		return x
	}
	var s Model
	s.count, s.n, s.level, s.v0, s.rv, s.tw = f(), f(), f(), f(), f(), f()
	s.peak, s.calm = f(), f()
	for i := range s.cal {
		s.cal[i] = f()
	}
	slots := m.p.codec.make(m.p.nslots)
	s.hotAt = noHot
	for i := range m.p.nslots {
		sl := slot{mean: f(), lv: int16(binary.LittleEndian.Uint16(rest)), n: rest[2]}
		hot := version >= 2 && rest[3]&slotHot != 0
		rest = rest[4:]
		m.p.codec.set(slots, i, sl)
		if !finite(sl.mean) {
			return errors.New("cannot restore a request-rate baseline: it holds a non-finite number")
		}
		if hot {
			l := m.p.layerOf(i)
			if s.hotAt[l] >= 0 {
				return fmt.Errorf("cannot restore a request-rate baseline: profile %d has two current slots", l)
			}
			s.hot[l], s.hotAt[l] = sl, int16(i)
		}
	}
	for _, x := range []float32{s.count, s.n, s.level, s.v0, s.rv, s.tw, s.peak, s.calm} {
		if !finite(x) {
			return errors.New("cannot restore a request-rate baseline: it holds a non-finite number")
		}
	}
	// The model keeps its own slots (from the arena), now that the snapshot proved valid.
	copy(m.slots, slots)
	s.p, s.slots, s.open, s.bucket = m.p, m.slots, open, bucket
	*m = s
	m.resum()
	return nil
}

func finite(x float32) bool {
	return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
}
