package inspect

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// seg is one step of a JSON path: an object key, or an array index when idx >= 0.
type seg struct {
	key string
	idx int
}

// json inspects text, JSON from the collector (masked, maybe cut at its cap), walking it so
// that each string (and number) is inspected on its own under its path below root. Text cut
// at the cap is walked as far as it goes, the cut string included. Text that is not JSON is
// inspected as one string at root.
func (j *job) json(root, text string) {
	if text == "" {
		return
	}
	n := len(j.dst)
	w := &j.sc.walker
	*w = walker{s: text, j: j, root: root, segs: w.segs[:0]}
	w.ws()
	ok := w.pos < len(w.s) && w.value(0) && w.trailing()
	w.s, w.j = "", nil
	if ok {
		return
	}
	// Not JSON: forget what the walk found and inspect the text whole.
	j.dst = j.dst[:n]
	j.value(text, root, nil)
}

// walker walks JSON text, tolerating a cut at the end. Its methods return false at a syntax
// error, and true at the end of the text (a cut) or the end of the value.
type walker struct {
	s    string
	pos  int
	j    *job
	root string
	segs []seg
}

const maxWalkDepth = 1000

func (w *walker) ws() {
	for w.pos < len(w.s) {
		switch w.s[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) eof() bool { return w.pos >= len(w.s) }

// trailing reports whether only whitespace follows the value.
func (w *walker) trailing() bool {
	w.ws()
	return w.eof()
}

func (w *walker) value(depth int) bool {
	if depth > maxWalkDepth {
		return false
	}
	w.ws()
	if w.eof() {
		return true // cut
	}
	switch c := w.s[w.pos]; {
	case c == '{':
		w.pos++
		w.ws()
		if !w.eof() && w.s[w.pos] == '}' {
			w.pos++
			return true
		}
		for {
			w.ws()
			if w.eof() {
				return true
			}
			if w.s[w.pos] != '"' {
				return false
			}
			key, ok := w.str(true)
			if !ok {
				return false
			}
			w.ws()
			if w.eof() {
				return true
			}
			if w.s[w.pos] != ':' {
				return false
			}
			w.pos++
			w.segs = append(w.segs, seg{key: key, idx: -1})
			ok = w.value(depth + 1)
			w.segs = w.segs[:len(w.segs)-1]
			if !ok {
				return false
			}
			if done, ok := w.next('}'); done || !ok {
				return ok
			}
		}
	case c == '[':
		w.pos++
		w.ws()
		if !w.eof() && w.s[w.pos] == ']' {
			w.pos++
			return true
		}
		for i := 0; ; i++ {
			w.segs = append(w.segs, seg{idx: i})
			ok := w.value(depth + 1)
			w.segs = w.segs[:len(w.segs)-1]
			if !ok {
				return false
			}
			if done, ok := w.next(']'); done || !ok {
				return ok
			}
		}
	case c == '"':
		v, ok := w.str(false)
		if ok && v != "" && !w.j.full() {
			w.j.value(v, w.root, w.segs)
		}
		return ok
	case c == '-' || (c >= '0' && c <= '9'):
		start := w.pos
		for !w.eof() && strings.IndexByte("0123456789+-.eE", w.s[w.pos]) >= 0 {
			w.pos++
		}
		// Long numbers may be card or phone numbers.
		if w.pos-start >= 7 && !w.j.full() {
			w.j.value(w.s[start:w.pos], w.root, w.segs)
		}
		return true
	default:
		for _, lit := range []string{"true", "false", "null"} {
			rest := w.s[w.pos:]
			if strings.HasPrefix(rest, lit) {
				w.pos += len(lit)
				return true
			}
			if strings.HasPrefix(lit, rest) {
				w.pos = len(w.s) // cut inside the literal
				return true
			}
		}
		return false
	}
}

// next consumes the separator after a member or element: done at close (or at a cut).
func (w *walker) next(close byte) (done, ok bool) {
	w.ws()
	if w.eof() {
		return true, true
	}
	switch w.s[w.pos] {
	case ',':
		w.pos++
		return false, true
	case close:
		w.pos++
		return true, true
	}
	return true, false
}

// str consumes a string token and returns its value. A value with escapes is decoded into
// the scratch buffer and returned as a string sharing it, valid until the next str call:
// detectors never keep the value (they copy what evidence needs). Keys (forKey) are copied,
// since the path keeps them. A string cut at the end of the text is returned as far as it goes.
func (w *walker) str(forKey bool) (string, bool) {
	w.pos++ // the opening quote
	start := w.pos
	for !w.eof() {
		switch c := w.s[w.pos]; {
		case c == '"':
			v := w.s[start:w.pos]
			w.pos++
			return v, true
		case c == '\\':
			return w.decode(start, forKey)
		case c < 0x20:
			return "", false
		default:
			w.pos++
		}
	}
	return w.s[start:], true // cut
}

// decode decodes a string with escapes from start (just after the quote).
func (w *walker) decode(start int, forKey bool) (string, bool) {
	sc := w.j.sc
	buf := append(sc.dec[:0], w.s[start:w.pos]...)
	for !w.eof() {
		c := w.s[w.pos]
		switch {
		case c == '"':
			w.pos++
			sc.dec = buf
			return w.decoded(buf, forKey), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			w.pos++
			continue
		}
		if w.pos+1 >= len(w.s) {
			w.pos = len(w.s)
			break // cut inside the escape
		}
		e := w.s[w.pos+1]
		w.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := w.hex4()
			if !ok {
				if w.eof() {
					break // cut inside the escape
				}
				return "", false
			}
			if utf16IsHighSurrogate(r) && strings.HasPrefix(w.s[w.pos:], `\u`) {
				save := w.pos
				w.pos += 2
				if r2, ok := w.hex4(); ok && utf16IsLowSurrogate(r2) {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
				} else {
					w.pos = save
				}
			}
			buf = utf8.AppendRune(buf, r) // lone surrogates become U+FFFD
		default:
			return "", false
		}
	}
	sc.dec = buf
	return w.decoded(buf, forKey), true // cut
}

func (w *walker) decoded(buf []byte, forKey bool) string {
	if forKey || len(buf) == 0 {
		return string(buf)
	}
	return unsafe.String(&buf[0], len(buf))
}

func (w *walker) hex4() (rune, bool) {
	if w.pos+4 > len(w.s) {
		w.pos = len(w.s)
		return 0, false
	}
	n, err := strconv.ParseUint(w.s[w.pos:w.pos+4], 16, 32)
	if err != nil {
		return 0, false
	}
	w.pos += 4
	return rune(n), true
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// appendPath formats a path: $.arguments.query, $.result.content[0].text,
// $.arguments["odd key"].
func appendPath(b []byte, segs []seg) string {
	for _, s := range segs {
		switch {
		case s.idx >= 0:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.idx), 10)
			b = append(b, ']')
		case isIdent(s.key):
			b = append(b, '.')
			b = append(b, s.key...)
		default:
			q, err := json.Marshal(s.key)
			if err != nil {
				panic("BUG: cannot quote a JSON key: " + err.Error())
			}
			b = append(b, '[')
			b = append(b, q...)
			b = append(b, ']')
		}
	}
	return string(b)
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
