package inspect

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Encoded blobs shorter than these are not decoded.
const (
	minBase64Run      = 32 // 24 bytes decoded
	minHexRun         = 32 // 16 bytes decoded
	minPercentEscapes = 8
	maxDecodeInput    = 64 << 10
)

// encoded looks for long base64, hex, percent- or \x-escaped blobs that decode to text. Binary
// (an image, a hash, a git SHA) is not flagged; text is flagged low, and handed back to be
// inspected itself, so that commands or instructions inside raise their own flags. Spans found
// to be secrets (a JWT's segments decode to JSON) are skipped.
func (j *job) encoded(s string, f *features, skip []span, decoded []decodedText) []decodedText {
	found := func(kind string, start, end int, text string) {
		j.add(TypeEncodedPayload, schemas.SeverityLow, "encoding="+kind+" "+loc(start, end)+" decoded_len="+strconv.Itoa(len(text)))
		decoded = append(decoded, decodedText{via: kind + "@" + strconv.Itoa(start) + ": ", text: text})
	}
	if f.maxB64 >= minBase64Run {
		for i := 0; i < len(s) && !j.full(); {
			start, end, next := base64Run(s, i)
			i = next
			if end-start < minBase64Run || inSpans(skip, start) || isDataImage(s, start) {
				continue
			}
			if text := j.sc.decodeBase64(s[start:end]); text != "" {
				found("base64", start, end, text)
			}
		}
	}
	if f.maxHex >= minHexRun {
		for i := 0; i < len(s) && !j.full(); {
			for i < len(s) && !isHex(s[i]) {
				i++
			}
			start := i
			for i < len(s) && isHex(s[i]) {
				i++
			}
			n := i - start
			if n < minHexRun || n%2 != 0 || inSpans(skip, start) {
				continue
			}
			if b, err := hex.DecodeString(s[start:i]); err == nil {
				if text := printableText(b); text != "" {
					found("hex", start, i, text)
				}
			}
		}
	}
	if f.pct >= minPercentEscapes || f.bsx >= minPercentEscapes {
		for i := 0; i < len(s) && !j.full(); {
			start, end, escapes, alnum, text := escapeRun(s, i)
			if end <= start {
				break
			}
			i = end
			if escapes < minPercentEscapes {
				continue
			}
			// Ordinary URL encoding escapes what must be escaped; escaping letters and digits
			// has no purpose but hiding them.
			if alnum*2 >= escapes && printableText([]byte(text)) != "" {
				kind := "percent"
				if s[start] == '\\' {
					kind = "hex_escape"
				}
				found(kind, start, end, text)
			}
		}
	}
	return decoded
}

// base64Run finds the next run of base64 characters from i, line breaks inside allowed (as
// MIME and the GitHub API wrap it); it returns the run and where to continue.
func base64Run(s string, i int) (start, end, next int) {
	for i < len(s) && byteClass[s[i]]&bB64 == 0 {
		i++
	}
	start = i
	for i < len(s) {
		c := s[i]
		if byteClass[c]&bB64 != 0 {
			i++
			continue
		}
		if (c == '\n' || c == '\r') && i+1 < len(s) && byteClass[s[i+1]]&bB64 != 0 && i-start >= 40 {
			i++
			continue
		}
		break
	}
	return start, i, i
}

// isDataImage reports whether the run at start is the payload of a data: URL of an image,
// audio or video (binary by nature; not worth decoding).
func isDataImage(s string, start int) bool {
	head := s[max(0, start-40):start]
	i := strings.LastIndex(head, "data:")
	return i >= 0 && strings.HasSuffix(head, ";base64,") && !strings.HasPrefix(head[i:], "data:text")
}

// decodeBase64 decodes a run in any of the four base64 alphabets and paddings, and returns
// it when it is text.
func (sc *scratch) decodeBase64(run string) string {
	if len(run) > maxDecodeInput {
		run = run[:maxDecodeInput]
	}
	clean := run
	if strings.ContainsAny(run, "\r\n") {
		clean = strings.NewReplacer("\r", "", "\n", "").Replace(run)
	}
	// Letters alone are words, not base64.
	if !strings.ContainsAny(clean, "0123456789+/=_-") && strings.ToLower(clean) == clean {
		return ""
	}
	trimmed := strings.TrimRight(clean, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(trimmed, "-_") {
		enc = base64.RawURLEncoding
	}
	if len(trimmed)%4 == 1 {
		trimmed = trimmed[:len(trimmed)-1] // a cut run: the last character holds no whole byte
	}
	b := slices.Grow(sc.b64[:0], enc.DecodedLen(len(trimmed)))
	b = b[:enc.DecodedLen(len(trimmed))]
	sc.b64 = b
	n, err := enc.Decode(b, []byte(trimmed))
	if err != nil {
		return ""
	}
	return printableText(b[:n])
}

// escapeRun finds the next stretch of %XX or \xHH escapes (with plain characters between
// them) from i and decodes it.
func escapeRun(s string, i int) (start, end, escapes, alnum int, text string) {
	isEsc := func(k int) bool {
		if k+2 < len(s) && s[k] == '%' && isHex(s[k+1]) && isHex(s[k+2]) {
			return true
		}
		return k+3 < len(s) && s[k] == '\\' && (s[k+1] == 'x' || s[k+1] == 'X') && isHex(s[k+2]) && isHex(s[k+3])
	}
	for i < len(s) && !isEsc(i) {
		i++
	}
	if i >= len(s) {
		return i, i, 0, 0, ""
	}
	start = i
	var b []byte
	for i < len(s) {
		switch {
		case isEsc(i):
			off := 1
			if s[i] == '\\' {
				off = 2
			}
			v, _ := strconv.ParseUint(s[i+off:i+off+2], 16, 8)
			c := byte(v)
			b = append(b, c)
			escapes++
			if byteClass[c]&(bWord|bDigit) != 0 && c < 0x80 && c != '\'' {
				alnum++
			}
			i += off + 2
		case s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '<' && s[i] != '>':
			b = append(b, s[i])
			i++
		default:
			return start, i, escapes, alnum, string(b)
		}
	}
	return start, i, escapes, alnum, string(b)
}
