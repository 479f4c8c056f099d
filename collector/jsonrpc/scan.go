package jsonrpc

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The package reads messages with a small scanner over raw bytes rather than encoding/json's
// reflection: a collector reads every message that goes by, and decoding into maps and
// interfaces cost more than the rest of the tap's work on a call. json.Valid checks a value
// first; the scanner then walks it knowing it is well formed, and gives the same answers as
// the encoding/json-based reference in reference_test.go (FuzzScannerMatchesReference holds it
// to that). Member names match exactly, as the MCP SDKs match them, never case-insensitively.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// valueEnd returns the index just past the well-formed value starting at d[i].
func valueEnd(d []byte, i int) int {
	switch d[i] {
	case '"':
		return stringEnd(d, i)
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = stringEnd(d, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(d) && !isSpace(d[i]) && d[i] != ',' && d[i] != '}' && d[i] != ']' {
			i++
		}
		return i
	}
}

// stringEnd returns the index just past the string starting at d[i] == '"'.
func stringEnd(d []byte, i int) int {
	for i++; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// members iterates over the members of a well-formed object.
type members struct {
	d []byte
	i int
}

func newMembers(obj []byte) members { return members{d: obj, i: 1} }

// next returns the next member's raw key (with its quotes) and value.
func (it *members) next() (key, val []byte, ok bool) {
	d := it.d
	i := skipSpace(d, it.i)
	if i >= len(d) || d[i] != '"' {
		return nil, nil, false
	}
	kEnd := stringEnd(d, i)
	key = d[i:kEnd]
	i = skipSpace(d, kEnd) + 1 // the colon
	i = skipSpace(d, i)
	vEnd := valueEnd(d, i)
	val = d[i:vEnd]
	i = skipSpace(d, vEnd)
	if i < len(d) && d[i] == ',' {
		i++
	}
	it.i = i
	return key, val, true
}

// elements iterates over the elements of a well-formed array.
type elements struct {
	d []byte
	i int
}

func (it *elements) next() ([]byte, bool) {
	d := it.d
	i := skipSpace(d, it.i)
	if i >= len(d) || d[i] == ']' {
		return nil, false
	}
	end := valueEnd(d, i)
	v := d[i:end]
	i = skipSpace(d, end)
	if i < len(d) && d[i] == ',' {
		i++
	}
	it.i = i
	return v, true
}

// plainString reports whether a raw JSON string needs no decoding: its contents are its value
// byte for byte, and encoding/json writes them back unchanged (no escapes, valid UTF-8, no
// U+2028 or U+2029).
func plainString(raw []byte) bool {
	inner := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range inner {
		if c == '\\' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if ascii {
		return true
	}
	return utf8.Valid(inner) && !bytes.Contains(inner, []byte("\u2028")) && !bytes.Contains(inner, []byte("\u2029"))
}

// stringValue decodes a well-formed raw JSON string.
func stringValue(raw []byte) string {
	if plainString(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// keyBytes returns a raw key's decoded bytes, without copying when it needs no decoding.
func keyBytes(raw []byte) []byte {
	if plainString(raw) {
		return raw[1 : len(raw)-1]
	}
	return []byte(stringValue(raw))
}

// keyIs reports whether a raw key decodes to name exactly.
func keyIs(raw []byte, name string) bool {
	if len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name {
		return true
	}
	return bytes.IndexByte(raw, '\\') >= 0 && stringValue(raw) == name
}

// kind of a well-formed raw value by its first byte.
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }
func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }
func isNull(v []byte) bool   { return len(v) == 4 && string(v) == "null" }

// field returns the value of the last member of a well-formed object whose key is name (a map
// keeps the last of duplicate keys), or nil.
func field(obj []byte, name string) []byte {
	var found []byte
	it := newMembers(obj)
	for {
		k, v, ok := it.next()
		if !ok {
			return found
		}
		if keyIs(k, name) {
			found = v
		}
	}
}

// stringField returns the named member of a well-formed object when it is a string, else "".
func stringField(obj []byte, name string) string {
	if v := field(obj, name); isString(v) {
		return stringValue(v)
	}
	return ""
}
