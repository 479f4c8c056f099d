package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Masked replaces a secret.
const Masked = "***"

// secretKeyParts are substrings of normalised object keys (lower case, without '-', '_', '.'
// and spaces) whose values are secrets.
var secretKeyParts = []string{
	"password", "passwd", "passphrase", "secret", "token", "authorization", "apikey", "accesskey",
	"privatekey", "credential", "cookie", "sessionid", "signature",
}

// isSecretKey reports whether values under key are masked. Counts of tokens (maxTokens,
// total_tokens) are not secrets.
func isSecretKey(key string) bool {
	k := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(key))
	if strings.HasSuffix(k, "tokens") {
		return false
	}
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return k == "pwd" || k == "auth" || k == "pin"
}

// secretRule masks what re matches in strings containing one of hints (lower case), which
// spares the regular expression for most strings. re's first group, when it has one, is kept
// (a scheme word, a key name and its separator, a URL's user).
type secretRule struct {
	hints []string
	re    *regexp.Regexp
	prose bool // skip matches whose masked part is a lower-case word ("Bearer authentication")
}

var secretRules = []secretRule{
	{hints: []string{"bearer", "basic"}, re: regexp.MustCompile(`(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]{8,}=*`), prose: true},
	{hints: []string{"eyj"}, re: regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)},
	{hints: []string{"akia", "asia"}, re: regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{hints: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, re: regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{20,}`)},
	{hints: []string{"xox"}, re: regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{10,}`)},
	{hints: []string{"sk-"}, re: regexp.MustCompile(`\bsk-[A-Za-z0-9_-]{20,}`)},
	{hints: []string{"private key"}, re: regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|$)`)},
	{hints: []string{"://"}, re: regexp.MustCompile(`(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@`)},
	{hints: []string{"aiza"}, re: regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
}

// MaskString masks the credentials in s.
func MaskString(s string) string {
	if len(s) < 8 {
		return s
	}
	var lower string
	for _, r := range secretRules {
		if lower == "" {
			lower = strings.ToLower(s) // no copy when s has no upper case
		}
		if !containsAny(lower, r.hints) {
			continue
		}
		if masked, changed := r.mask(s); changed {
			s, lower = masked, ""
		}
	}
	if lower == "" {
		lower = strings.ToLower(s)
	}
	if containsAny(lower, keyValueHints) {
		s = maskKeyValues(s)
	}
	return s
}

// secretKeyWords name secrets in key=value or key: value text, in lower case. They may end a
// longer key (db_password, GITHUB_TOKEN), so no word boundary comes before them; the separator
// that must follow spares words that merely contain them (max_tokens: 5, secretary:).
var secretKeyWords = []string{
	"password", "passwd", "passphrase", "pwd", "secret", "api_key", "api-key", "apikey",
	"access_key", "access-key", "accesskey", "private_key", "private-key", "privatekey",
	"token", "credential", "credentials",
}

var keyValueHints = []string{"passw", "passphrase", "pwd", "secret", "key", "token", "credential"}

// maskKeyValues masks the values of key=value and key: value pairs whose key is one of
// secretKeyWords, with the key quoted or not: --password=x, api_key: x, and JSON or a Python
// dict inside a string ("password": "x", {'db_password': 'x'}). A value runs to the next
// space, quote, comma, semicolon or ampersand.
func maskKeyValues(s string) string {
	lower := asciiLower(s) // byte for byte, so offsets match s
	var spans [][2]int     // the values, by start
	for _, word := range secretKeyWords {
		for from := 0; ; {
			i := strings.Index(lower[from:], word)
			if i < 0 {
				break
			}
			from += i + len(word)
			if start, end := valueAfterKey(s, from); end > start {
				spans = append(spans, [2]int{start, end})
			}
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp[0] < last { // the same value after an overlapping word (passwd, pwd)
			continue
		}
		b.WriteString(s[last:sp[0]])
		b.WriteString(Masked)
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// valueAfterKey returns where the value of a key ending at i starts and ends: an optional
// closing quote, '=' or ':' between optional spaces, an optional opening quote, then the
// value. end == start when none follows.
func valueAfterKey(s string, i int) (start, end int) {
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
	}
	i = skipSpaces(s, i)
	if i >= len(s) || (s[i] != '=' && s[i] != ':') {
		return 0, 0
	}
	i = skipSpaces(s, i+1)
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
	}
	start = i
	for i < len(s) && !strings.ContainsRune(" \t\n\r\f\"',;&", rune(s[i])) {
		i++
	}
	return start, i
}

func skipSpaces(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\n\r\f", rune(s[i])) {
		i++
	}
	return i
}

// asciiLower lower-cases ASCII letters only, so the result has s's length.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func (r secretRule) mask(s string) (string, bool) {
	matches := r.re.FindAllStringSubmatchIndex(s, -1)
	var b strings.Builder
	last := 0
	for _, m := range matches {
		keep := ""
		if len(m) > 2 && m[2] >= 0 {
			keep = s[m[2]:m[3]]
		}
		if r.prose && isLowerWord(s[m[0]+len(keep):m[1]]) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(keep)
		b.WriteString(Masked)
		if s[m[1]-1] == '@' { // a password in a URL: the host follows
			b.WriteByte('@')
		}
		last = m[1]
	}
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

func isLowerWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// errFull stops the walk once the output reached the cap; errSyntax stops it at invalid JSON.
var (
	errFull   = errors.New("output full")
	errSyntax = errors.New("invalid JSON")
)

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// Mask re-encodes the JSON value raw as compact JSON with secrets masked, cut at max bytes (on
// a UTF-8 boundary). With skipTopKey, that key of a top-level object is left out (params'
// _meta). It reports whether the text was cut. Invalid JSON yields "".
//
// It walks the bytes itself rather than decoding: strings without escapes (nearly all) are
// masked and copied as they are, and the walk stops as soon as the output is full, so the cost
// is bounded by the cap, not by the size of raw.
func Mask(raw []byte, max int, skipTopKey string) (string, bool) {
	if max <= 0 {
		return "", false
	}
	w := &walker{in: raw, max: max, skip: skipTopKey}
	w.out = make([]byte, 0, min(max+1, len(raw)+16))
	w.ws()
	if w.pos == len(w.in) {
		return "", false
	}
	err := w.value(0)
	switch {
	case errors.Is(err, errFull):
		return cutUTF8(w.out, max), true
	case err != nil:
		return "", false
	}
	return string(w.out), false
}

type walker struct {
	in   []byte
	pos  int
	out  []byte
	max  int
	skip string
}

func (w *walker) write(b ...byte) error {
	w.out = append(w.out, b...)
	if len(w.out) > w.max {
		return errFull
	}
	return nil
}

func (w *walker) ws() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// expect consumes c (after whitespace) or fails.
func (w *walker) expect(c byte) error {
	w.ws()
	if w.pos >= len(w.in) || w.in[w.pos] != c {
		return errSyntax
	}
	w.pos++
	return nil
}

// str consumes a string token and returns its contents as on the wire (without the quotes)
// and whether it must be decoded (it holds escapes or invalid UTF-8).
func (w *walker) str() (raw []byte, escaped bool, err error) {
	if err := w.expect('"'); err != nil {
		return nil, false, err
	}
	start := w.pos
	for w.pos < len(w.in) {
		switch c := w.in[w.pos]; {
		case c == '"':
			raw = w.in[start:w.pos]
			w.pos++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			w.pos += 2
		case c < 0x20:
			return nil, false, errSyntax
		case c >= utf8.RuneSelf:
			// Invalid UTF-8 must not pass through as it is: take the decoding path.
			r, size := utf8.DecodeRune(w.in[w.pos:])
			if r == utf8.RuneError && size == 1 {
				escaped = true
			}
			w.pos += size
		default:
			w.pos++
		}
	}
	return nil, false, errSyntax
}

// decoded returns a string token's value.
func decoded(raw []byte, escaped bool) (string, error) {
	if !escaped {
		return string(raw), nil
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if err := json.Unmarshal(q, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}

// writeString masks a string value and writes it.
func (w *walker) writeString(raw []byte, escaped bool) error {
	s, err := decoded(raw, escaped)
	if err != nil {
		return err
	}
	if !escaped {
		// Masking only cuts out parts and inserts "***": the text stays valid string contents.
		w.out = append(w.out, '"')
		w.out = append(w.out, MaskString(s)...)
		return w.write('"')
	}
	w.out = appendQuoted(w.out, MaskString(s))
	if len(w.out) > w.max {
		return errFull
	}
	return nil
}

func (w *walker) value(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	w.ws()
	if w.pos >= len(w.in) {
		return errSyntax
	}
	switch c := w.in[w.pos]; c {
	case '{':
		w.pos++
		if err := w.write('{'); err != nil {
			return err
		}
		w.ws()
		if w.pos < len(w.in) && w.in[w.pos] == '}' {
			w.pos++
			return w.write('}')
		}
		first := true
		for {
			raw, escaped, err := w.str()
			if err != nil {
				return err
			}
			key, err := decoded(raw, escaped)
			if err != nil {
				return err
			}
			if err := w.expect(':'); err != nil {
				return err
			}
			switch {
			case depth == 0 && w.skip != "" && key == w.skip:
				if err := w.skipValue(); err != nil {
					return err
				}
			default:
				if !first {
					if err := w.write(','); err != nil {
						return err
					}
				}
				first = false
				if masked := MaskString(key); escaped || masked != key {
					w.out = appendQuoted(w.out, masked) // a key can be a secret too ({"sk-…": …})
				} else {
					w.out = append(append(w.out, '"'), raw...)
					w.out = append(w.out, '"')
				}
				if err := w.write(':'); err != nil {
					return err
				}
				if isSecretKey(key) {
					if err := w.skipValue(); err != nil {
						return err
					}
					err = w.write('"', '*', '*', '*', '"')
				} else {
					err = w.value(depth + 1)
				}
				if err != nil {
					return err
				}
			}
			closed, err := w.after('}')
			if err != nil {
				return err
			}
			if closed {
				return w.write('}')
			}
		}
	case '[':
		w.pos++
		if err := w.write('['); err != nil {
			return err
		}
		w.ws()
		if w.pos < len(w.in) && w.in[w.pos] == ']' {
			w.pos++
			return w.write(']')
		}
		for {
			if err := w.value(depth + 1); err != nil {
				return err
			}
			closed, err := w.after(']')
			if err != nil {
				return err
			}
			if closed {
				return w.write(']')
			}
			if err := w.write(','); err != nil {
				return err
			}
		}
	case '"':
		raw, escaped, err := w.str()
		if err != nil {
			return err
		}
		return w.writeString(raw, escaped)
	default:
		start := w.pos
		w.scalar()
		lit := w.in[start:w.pos]
		if !json.Valid(lit) {
			return errSyntax
		}
		return w.write(lit...)
	}
}

// member returns the raw value of the member of the object obj called name, as the MCP SDKs find
// it (the last whose key is exactly name: the Go SDK's decoder is case-sensitive, JSON.parse keeps
// the last duplicate), or nil when there is none or obj is not an object. It reads the keys and
// skips the values, where json.Unmarshal would check and decode them all.
func member(obj []byte, name string) []byte {
	w := walker{in: obj}
	if w.expect('{') != nil {
		return nil
	}
	w.ws()
	if w.pos < len(w.in) && w.in[w.pos] == '}' {
		return nil
	}
	var found []byte
	for {
		raw, escaped, err := w.str()
		if err != nil {
			return nil
		}
		matches := !escaped && bytes.Equal(raw, []byte(name))
		if escaped {
			key, err := decoded(raw, escaped)
			if err != nil {
				return nil
			}
			matches = key == name
		}
		if w.expect(':') != nil {
			return nil
		}
		w.ws()
		start := w.pos
		if w.skipValue() != nil {
			return nil
		}
		if matches {
			found = w.in[start:w.pos]
		}
		closed, err := w.after('}')
		if err != nil {
			return nil
		}
		if closed {
			return found
		}
	}
}

// after consumes what follows a member or element: ',' (closed false) or the container's
// closing byte (closed true).
func (w *walker) after(closing byte) (closed bool, err error) {
	w.ws()
	if w.pos >= len(w.in) {
		return false, errSyntax
	}
	switch w.in[w.pos] {
	case ',':
		w.pos++
		return false, nil
	case closing:
		w.pos++
		return true, nil
	}
	return false, errSyntax
}

// scalar consumes a number or a literal (true, false, null).
func (w *walker) scalar() {
	for w.pos < len(w.in) {
		switch c := w.in[w.pos]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c == '-', c == '+', c == '.', c == 'E':
			w.pos++
		default:
			return
		}
	}
}

// skipValue consumes the next value without writing it.
func (w *walker) skipValue() error {
	w.ws()
	if w.pos >= len(w.in) {
		return errSyntax
	}
	switch w.in[w.pos] {
	case '"':
		_, _, err := w.str()
		return err
	case '{', '[':
		depth := 0
		for w.pos < len(w.in) {
			switch w.in[w.pos] {
			case '"':
				if _, _, err := w.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					w.pos++
					return nil
				}
			}
			w.pos++
		}
		return errSyntax
	default:
		start := w.pos
		w.scalar()
		if !json.Valid(w.in[start:w.pos]) {
			return errSyntax
		}
		return nil
	}
}

// cutUTF8 returns b's first max bytes, backing off so no rune is split.
func cutUTF8(b []byte, max int) string {
	if len(b) <= max {
		return string(b)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut])
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string, escaping only what JSON requires (no HTML
// escaping); invalid UTF-8 becomes U+FFFD.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
