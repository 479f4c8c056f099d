package format_test

// Independent readers of the three formats, written from the specifications rather than from
// the writers, so tests and fuzz targets can check that what was written reads back as meant.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// syslogMsg is a parsed RFC 5424 message.
type syslogMsg struct {
	pri                                         int
	timestamp, hostname, appName, procID, msgID string
	sd                                          []sdElement
	bom                                         bool
	msg                                         []byte
}

type sdElement struct {
	id     string
	params [][2]string // name, unescaped value
}

// parseRFC5424 reads "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]".
func parseRFC5424(b []byte) (syslogMsg, error) {
	var m syslogMsg
	if len(b) < 3 || b[0] != '<' {
		return m, errors.New("no PRI")
	}
	end := bytes.IndexByte(b, '>')
	if end < 2 || end > 4 {
		return m, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(string(b[1:end]))
	if err != nil || pri > 191 {
		return m, fmt.Errorf("bad PRI %q", b[1:end])
	}
	m.pri = pri
	b = b[end+1:]
	if !bytes.HasPrefix(b, []byte("1 ")) {
		return m, errors.New("VERSION is not 1")
	}
	b = b[2:]
	fields := make([]string, 5)
	for i := range fields {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return m, fmt.Errorf("header field %d missing", i)
		}
		fields[i] = string(b[:sp])
		b = b[sp+1:]
	}
	m.timestamp, m.hostname, m.appName, m.procID, m.msgID = fields[0], fields[1], fields[2], fields[3], fields[4]
	if len(b) == 0 {
		return m, errors.New("no STRUCTURED-DATA")
	}
	if b[0] == '-' {
		b = b[1:]
	} else {
		for len(b) > 0 && b[0] == '[' {
			var e sdElement
			i := 1
			for i < len(b) && b[i] != ' ' && b[i] != ']' {
				i++
			}
			e.id = string(b[1:i])
			for i < len(b) && b[i] == ' ' {
				i++
				eq := bytes.IndexByte(b[i:], '=')
				if eq <= 0 || i+eq+1 >= len(b) || b[i+eq+1] != '"' {
					return m, fmt.Errorf("bad SD-PARAM in %s", e.id)
				}
				pname := string(b[i : i+eq])
				i += eq + 2
				var v []byte
				for ; i < len(b) && b[i] != '"'; i++ {
					if b[i] == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\' || b[i+1] == ']') {
						i++
					} else if b[i] == ']' {
						return m, fmt.Errorf("unescaped ] in %s.%s", e.id, pname)
					}
					v = append(v, b[i])
				}
				if i == len(b) {
					return m, fmt.Errorf("unterminated value of %s.%s", e.id, pname)
				}
				i++ // closing quote
				e.params = append(e.params, [2]string{pname, string(v)})
			}
			if i >= len(b) || b[i] != ']' {
				return m, fmt.Errorf("unterminated SD-ELEMENT %s", e.id)
			}
			m.sd = append(m.sd, e)
			b = b[i+1:]
		}
		if len(m.sd) == 0 {
			return m, errors.New("bad STRUCTURED-DATA")
		}
	}
	if len(b) == 0 {
		return m, nil
	}
	if b[0] != ' ' {
		return m, errors.New("no space before MSG")
	}
	b = b[1:]
	if bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}) {
		m.bom, b = true, b[3:]
	}
	m.msg = b
	return m, nil
}

// parseCEF reads "CEF:0|Vendor|Product|Version|ClassID|Name|Severity|ext" into the seven
// unescaped header fields (version first) and the extension's unescaped values by key.
func parseCEF(s string) ([]string, map[string]string, error) {
	rest, ok := strings.CutPrefix(s, "CEF:")
	if !ok {
		return nil, nil, errors.New("no CEF: prefix")
	}
	var header []string
	var cur []byte
	i := 0
	for ; i < len(rest) && len(header) < 7; i++ {
		switch c := rest[i]; {
		case c == '\\':
			if i+1 == len(rest) || (rest[i+1] != '\\' && rest[i+1] != '|') {
				return nil, nil, fmt.Errorf("bad escape in header field %d", len(header))
			}
			i++
			cur = append(cur, rest[i])
		case c == '|':
			header = append(header, string(cur))
			cur = cur[:0]
		case c == '\n' || c == '\r':
			return nil, nil, errors.New("newline in header")
		default:
			cur = append(cur, c)
		}
	}
	if len(header) != 7 {
		return nil, nil, fmt.Errorf("%d header fields, want 7", len(header))
	}
	ext, err := parseCEFExtension(rest[i:])
	return header, ext, err
}

// parseCEFExtension splits "k1=v1 k2=v2" at unescaped '=': the key is the word before it.
func parseCEFExtension(s string) (map[string]string, error) {
	ext := map[string]string{}
	if s == "" {
		return ext, nil
	}
	if strings.ContainsAny(s, "\n\r") {
		return nil, errors.New("raw newline in extension")
	}
	var eqs []int // unescaped '=' positions
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '=' {
			eqs = append(eqs, i)
		}
	}
	if len(eqs) == 0 || !isCEFKey(s[:eqs[0]]) {
		return nil, fmt.Errorf("extension does not start with a key: %q", s)
	}
	key := s[:eqs[0]]
	for n, eq := range eqs {
		end := len(s)
		next := ""
		if n+1 < len(eqs) {
			sp := strings.LastIndexByte(s[:eqs[n+1]], ' ')
			if sp <= eq {
				return nil, fmt.Errorf("unescaped = inside the value of %s", key)
			}
			end, next = sp, s[sp+1:eqs[n+1]]
			if !isCEFKey(next) {
				return nil, fmt.Errorf("bad key %q", next)
			}
		}
		v, err := unescapeCEFValue(s[eq+1 : end])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if _, dup := ext[key]; dup {
			return nil, fmt.Errorf("key %s twice", key)
		}
		ext[key] = v
		key = next
	}
	return ext, nil
}

func isCEFKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func unescapeCEFValue(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errors.New("trailing backslash")
		}
		i++
		switch s[i] {
		case '\\', '=':
			b.WriteByte(s[i])
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// parseLEEF reads "LEEF:2.0|Vendor|Product|Version|EventID|Delim|attrs" into the header fields
// (version first), the delimiter and the attributes by key.
func parseLEEF(s string) ([]string, rune, map[string]string, error) {
	parts := strings.SplitN(s, "|", 7)
	if len(parts) != 7 || parts[0] != "LEEF:2.0" {
		return nil, 0, nil, fmt.Errorf("not a LEEF 2.0 header: %q", s)
	}
	var delim rune
	if d := parts[5]; utf8.RuneCountInString(d) == 1 {
		delim, _ = utf8.DecodeRuneInString(d)
	} else if h, ok := strings.CutPrefix(d, "x"); ok {
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("bad delimiter %q", d)
		}
		delim = rune(v)
	} else {
		return nil, 0, nil, fmt.Errorf("bad delimiter %q", d)
	}
	attrs := map[string]string{}
	if parts[6] != "" {
		for _, kv := range strings.Split(parts[6], string(delim)) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, 0, nil, fmt.Errorf("bad attribute %q", kv)
			}
			if _, dup := attrs[k]; dup {
				return nil, 0, nil, fmt.Errorf("attribute %s twice", k)
			}
			attrs[k] = v
		}
	}
	return parts[:5], delim, attrs, nil
}
