package jsonrpc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Canonical re-encodes a JSON value with object keys sorted, no insignificant whitespace and
// no HTML escaping. Numbers keep their text as written (1.0 and 1 differ), which is enough for
// hashes to be stable across peers that reorder keys.
func Canonical(raw []byte) ([]byte, error) {
	v, err := decode(raw)
	if err != nil {
		return nil, err
	}
	return encode(v)
}

// Hash is the hex of the first 16 bytes of the SHA-256 of raw's canonical JSON, or "" when raw
// is empty or not JSON.
func Hash(raw []byte) string {
	_, hash := ShapeAndHash(raw)
	return hash
}

// ShapeAndHash returns Shape(raw) and Hash(raw), decoding raw once.
func ShapeAndHash(raw []byte) (shape, hash string) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", ""
	}
	v, err := decode(raw)
	if err != nil {
		return "", ""
	}
	return shapeOf(v), hashOf(v)
}

func hashOf(v any) string {
	c, err := encode(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:16])
}

// Shape describes a JSON value by its structure only: objects keep their keys (sorted) with the
// shapes of their values, arrays become the sorted distinct shapes of their elements, and
// scalars become their JSON type name. For example {"message":"hi","n":[1,2]} has the shape
// {"message":"string","n":["number"]}. It returns "" when raw is empty or not JSON.
func Shape(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	v, err := decode(raw)
	if err != nil {
		return ""
	}
	return shapeOf(v)
}

func shapeOf(v any) string {
	var b strings.Builder
	writeShape(&b, v)
	return b.String()
}

func writeShape(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeShape(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		elems := make([]string, 0, len(x))
		for _, e := range x {
			var eb strings.Builder
			writeShape(&eb, e)
			elems = append(elems, eb.String())
		}
		sort.Strings(elems)
		elems = slices.Compact(elems)
		b.WriteByte('[')
		b.WriteString(strings.Join(elems, ","))
		b.WriteByte(']')
	case string:
		b.WriteString(`"string"`)
	case json.Number:
		b.WriteString(`"number"`)
	case bool:
		b.WriteString(`"boolean"`)
	case nil:
		b.WriteString(`"null"`)
	default:
		panic(fmt.Sprintf("BUG: unexpected JSON value type %T", v))
	}
}

func writeString(b *strings.Builder, s string) {
	enc, err := encode(s)
	if err != nil {
		panic("BUG: cannot encode a string: " + err.Error())
	}
	b.Write(enc)
}

func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("cannot decode JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("cannot decode JSON: trailing data")
	}
	return v, nil
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
