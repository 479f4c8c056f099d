package jsonrpc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Canonical re-encodes a JSON value with object keys sorted (the last of duplicate keys kept),
// no insignificant whitespace and no HTML escaping. Numbers keep their text as written (1.0
// and 1 differ), which is enough for hashes to be stable across peers that reorder keys.
func Canonical(raw []byte) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("cannot decode JSON: %w", errNotJSON)
	}
	return appendCanonical(nil, trimJSONSpace(raw), ""), nil
}

// Hash is the hex of the first 16 bytes of the SHA-256 of raw's canonical JSON, or "" when raw
// is empty or not JSON.
func Hash(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 || !json.Valid(raw) {
		return ""
	}
	return hashValid(trimJSONSpace(raw))
}

// ShapeAndHash returns Shape(raw) and Hash(raw).
func ShapeAndHash(raw []byte) (shape, hash string) {
	if len(bytes.TrimSpace(raw)) == 0 || !json.Valid(raw) {
		return "", ""
	}
	return shapeAndHashValid(trimJSONSpace(raw), "")
}

// trimJSONSpace trims the whitespace JSON allows around a value (bytes.TrimSpace trims more).
func trimJSONSpace(v []byte) []byte {
	for len(v) > 0 && isSpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isSpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// Shape describes a JSON value by its structure only: objects keep their keys (sorted) with the
// shapes of their values, arrays become the sorted distinct shapes of their elements, and
// scalars become their JSON type name. For example {"message":"hi","n":[1,2]} has the shape
// {"message":"string","n":["number"]}. It returns "" when raw is empty or not JSON.
func Shape(raw []byte) string {
	shape, _ := ShapeAndHash(raw)
	return shape
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// shapeAndHashValid is ShapeAndHash of a well-formed value; a top-level member named except is
// left out, and an object left empty by that has neither shape nor hash.
func shapeAndHashValid(v []byte, except string) (shape, hash string) {
	if except != "" && isObject(v) {
		empty := true
		it := newMembers(v)
		for {
			k, _, ok := it.next()
			if !ok {
				break
			}
			if !keyIs(k, except) {
				empty = false
				break
			}
		}
		if empty {
			return "", ""
		}
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := appendShape((*bp)[:0], v, except)
	shape = string(b)
	b = appendCanonical(b[:0], v, except)
	sum := sha256.Sum256(b)
	*bp = b
	return shape, hex.EncodeToString(sum[:16])
}

// hashValid is Hash of a well-formed value.
func hashValid(v []byte) string {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := appendCanonical((*bp)[:0], v, "")
	sum := sha256.Sum256(b)
	*bp = b
	return hex.EncodeToString(sum[:16])
}

// member is an object member being sorted: its decoded key, raw key and raw value.
type member struct {
	key, rawKey, val []byte
}

// sortedMembers returns an object's members sorted by key, the last of duplicates kept and a
// member named except left out.
func sortedMembers(obj []byte, except string, scratch []member) []member {
	ms := scratch[:0]
	it := newMembers(obj)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if except != "" && keyIs(k, except) {
			continue
		}
		ms = append(ms, member{key: keyBytes(k), rawKey: k, val: v})
	}
	// Stable, so of equal keys the last in the object comes last.
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	out := ms[:0]
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(ms[i+1].key, m.key) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// appendKey appends an object key as encoding/json writes it.
func appendKey(dst []byte, m member) []byte {
	if plainString(m.rawKey) {
		return append(dst, m.rawKey...)
	}
	return appendEncodedString(dst, string(m.key))
}

// appendEncodedString appends s as encoding/json writes it without HTML escaping.
func appendEncodedString(dst []byte, s string) []byte {
	enc, err := encode(s)
	if err != nil {
		panic("BUG: cannot encode a string: " + err.Error())
	}
	return append(dst, enc...)
}

// appendCanonical appends the canonical form of a well-formed value; a top-level member named
// except is left out.
func appendCanonical(dst, v []byte, except string) []byte {
	switch v[0] {
	case '{':
		var scratch [8]member
		ms := sortedMembers(v, except, scratch[:])
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendKey(dst, m)
			dst = append(dst, ':')
			dst = appendCanonical(dst, m.val, "")
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		it := elements{d: v, i: 1}
		for i := 0; ; i++ {
			e, ok := it.next()
			if !ok {
				break
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonical(dst, e, "")
		}
		return append(dst, ']')
	case '"':
		if plainString(v) {
			return append(dst, v...)
		}
		return appendEncodedString(dst, stringValue(v))
	default: // numbers as written, true, false, null
		return append(dst, v...)
	}
}

// appendShape appends the shape of a well-formed value; a top-level member named except is
// left out.
func appendShape(dst, v []byte, except string) []byte {
	switch v[0] {
	case '{':
		var scratch [8]member
		ms := sortedMembers(v, except, scratch[:])
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendKey(dst, m)
			dst = append(dst, ':')
			dst = appendShape(dst, m.val, "")
		}
		return append(dst, '}')
	case '[':
		// The sorted distinct shapes of the elements.
		var shapes [][]byte
		it := elements{d: v, i: 1}
		for {
			e, ok := it.next()
			if !ok {
				break
			}
			s := scalarShape(e)
			if s == nil {
				s = appendShape(nil, e, "")
			}
			shapes = append(shapes, s)
		}
		slices.SortFunc(shapes, bytes.Compare)
		shapes = slices.CompactFunc(shapes, bytes.Equal)
		dst = append(dst, '[')
		for i, s := range shapes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, s...)
		}
		return append(dst, ']')
	default:
		return append(dst, scalarShape(v)...)
	}
}

var (
	shapeString  = []byte(`"string"`)
	shapeNumber  = []byte(`"number"`)
	shapeBoolean = []byte(`"boolean"`)
	shapeNull    = []byte(`"null"`)
)

// scalarShape is the shape of a scalar, nil for objects and arrays.
func scalarShape(v []byte) []byte {
	switch v[0] {
	case '{', '[':
		return nil
	case '"':
		return shapeString
	case 't', 'f':
		return shapeBoolean
	case 'n':
		return shapeNull
	default:
		return shapeNumber
	}
}

// encode writes v as encoding/json does, without HTML escaping.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errors.Join(errors.New("cannot encode JSON"), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
