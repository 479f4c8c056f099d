package sequence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Snapshot format, version 1 (all integers uvarint):
//
//	"mwsq" 1 sessions total minLen maxLen
//	ncalls { tag [method target] count sessions out minCount maxCount }
//	ntrans { fromIndex toIndex count sessions }
//
// tag is 0 for Boundary, 1 for Other, 2 for a named call followed by its method and target
// (length-prefixed). Calls are written by name, not by symbol, because symbols are only stable
// within one process; transitions refer to calls by their position in the list.
const (
	snapshotMagic   = "mwsq"
	snapshotVersion = 1
)

// MarshalBinary encodes the baseline, for saving to the store.
func (b *Baseline) MarshalBinary() ([]byte, error) {
	if b.m == nil {
		return nil, errors.New("cannot encode sequence baseline: not created by a Model")
	}
	out := make([]byte, 0, 16+b.calls.len()*24+b.trans.len()*8)
	out = append(out, snapshotMagic...)
	out = append(out, snapshotVersion)
	for _, v := range []uint32{b.sessions, b.total, b.minLen, b.maxLen} {
		out = binary.AppendUvarint(out, uint64(v))
	}
	out = binary.AppendUvarint(out, uint64(b.calls.len()))
	pos := make(map[Symbol]int, b.calls.len())
	for i, e := range b.calls.ents {
		s := Symbol(e.key)
		pos[s] = i
		switch s {
		case Boundary, Other:
			out = append(out, byte(s))
		default:
			method, target := b.m.syms.Call(s)
			out = append(out, 2)
			out = appendString(out, method)
			out = appendString(out, target)
		}
		for _, v := range []uint64{uint64(e.val.count), uint64(e.val.sessions), uint64(e.val.out), uint64(e.val.minCount), uint64(e.val.maxCount)} {
			out = binary.AppendUvarint(out, v)
		}
	}
	out = binary.AppendUvarint(out, uint64(b.trans.len()))
	for _, e := range b.trans.ents {
		from, to := splitKey(e.key)
		fi, ok1 := pos[from]
		ti, ok2 := pos[to]
		if !ok1 || !ok2 {
			panic("BUG: sequence baseline has a transition between unknown calls")
		}
		for _, v := range []uint64{uint64(fi), uint64(ti), uint64(e.val.count), uint64(e.val.sessions)} {
			out = binary.AppendUvarint(out, v)
		}
	}
	return out, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary replaces the baseline with an encoded one. b must come from NewBaseline or
// NewPeerBaseline of the model that will use it; calls are interned into that model's symbol
// table. When the snapshot holds more than b's caps allow, the surplus is dropped.
func (b *Baseline) UnmarshalBinary(data []byte) error {
	if b.m == nil {
		return errors.New("cannot decode sequence baseline: not created by a Model")
	}
	if err := b.decode(data); err != nil {
		b.calls.reset()
		b.trans.reset()
		b.sessions, b.total, b.minLen, b.maxLen = 0, 0, 0, 0
		return fmt.Errorf("cannot decode sequence baseline: %w", err)
	}
	return nil
}

func (b *Baseline) decode(data []byte) error {
	d := decoder{buf: data}
	if len(data) < len(snapshotMagic)+1 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("not a sequence baseline snapshot")
	}
	if v := data[len(snapshotMagic)]; v != snapshotVersion {
		return fmt.Errorf("unsupported snapshot version %d", v)
	}
	d.buf = data[len(snapshotMagic)+1:]
	b.calls.reset()
	b.trans.reset()
	b.sessions = d.u32()
	_ = d.u32() // total: recomputed from the calls kept
	b.minLen, b.maxLen = d.u32(), d.u32()
	b.total = 0
	if d.err != nil {
		return d.err
	}

	var total uint64
	ncalls := d.count()
	syms := make([]Symbol, 0, min(ncalls, 1024))
	kept := make([]bool, 0, min(ncalls, 1024))
	for range ncalls {
		var s Symbol
		switch tag := d.byte(); tag {
		case 0:
			s = Boundary
		case 1:
			s = Other
		case 2:
			method, target := d.str(), d.str()
			if d.err != nil {
				return d.err
			}
			s = b.m.syms.Intern(method, target)
		default:
			if d.err == nil {
				d.err = fmt.Errorf("unknown call tag %d", tag)
			}
		}
		v := callStat{count: d.u32(), sessions: d.u32(), out: d.u32(), minCount: d.u16(), maxCount: d.u16()}
		if d.err != nil {
			return d.err
		}
		keep := b.calls.len() < b.maxCalls() && b.calls.find(uint32(s)) < 0
		if keep {
			v.sessions = min(v.sessions, b.sessions) // keep probabilities ≤ 1 whatever the input
			b.calls.add(uint32(s), v)
			total += uint64(v.count)
		}
		syms = append(syms, s)
		kept = append(kept, keep)
	}
	ntrans := d.count()
	for range ntrans {
		fi, ti := d.uvarint(math.MaxInt32), d.uvarint(math.MaxInt32)
		v := transStat{count: d.u32(), sessions: d.u32()}
		if d.err != nil {
			return d.err
		}
		if fi >= uint64(len(syms)) || ti >= uint64(len(syms)) {
			return fmt.Errorf("transition refers to call %d of %d", max(fi, ti), len(syms))
		}
		k := transKey(syms[fi], syms[ti])
		if !kept[fi] || !kept[ti] || b.trans.len() >= b.maxTrans() || b.trans.find(k) >= 0 {
			continue
		}
		v.sessions = min(v.sessions, b.sessions)
		b.trans.add(k, v)
	}
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%d unexpected trailing bytes", len(d.buf))
	}
	if total >= 1<<31 {
		return fmt.Errorf("call counts add up to %d, more than a baseline keeps", total)
	}
	b.total = uint32(total)
	b.recountOut() // transitions beyond the caps were dropped
	return nil
}

// decoder reads uvarints and strings, remembering the first error.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = errors.New("truncated or malformed number")
		return 0
	}
	d.buf = d.buf[n:]
	if v > limit {
		d.err = fmt.Errorf("value %d out of range (max %d)", v, limit)
		return 0
	}
	return v
}

func (d *decoder) u32() uint32 { return uint32(d.uvarint(math.MaxUint32)) }
func (d *decoder) u16() uint16 { return uint16(d.uvarint(math.MaxUint16)) }

// count reads a length, bounded by the bytes left so corrupt input cannot ask for huge slices.
func (d *decoder) count() int { return int(d.uvarint(uint64(len(d.buf)))) }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) str() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	if n > len(d.buf) {
		d.err = errors.New("truncated string")
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}
