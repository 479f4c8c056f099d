package format

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// DefaultLEEFDelimiter separates LEEF attributes unless configured otherwise. A caret rather
// than LEEF 1.0's tab: relays such as rsyslog escape a tab to "#011" by default, which would
// glue every attribute into one.
const DefaultLEEFDelimiter = '^'

// LEEF limits (QRadar LEEF guide): EventID and usrName at most 255 characters.
const (
	leefMaxEventID = 255
	leefMaxUsrName = 255
)

// LEEFTimeFormat is the devTimeFormat sent with devTime: one of the patterns the QRadar LEEF
// guide suggests, with milliseconds, in UTC ("GMT" is what Java's SimpleDateFormat, which
// QRadar uses, reads for z).
const LEEFTimeFormat = "MMM dd yyyy HH:mm:ss.SSS z"

// leefTimeLayout is LEEFTimeFormat as a Go layout, for UTC times.
const leefTimeLayout = "Jan 02 2006 15:04:05.000 GMT"

// LEEF returns an anomaly as a QRadar LEEF 2.0 event:
//
//	LEEF:2.0|Vendor|Product|Version|<kind>|<delimiter>|key=value<delimiter>key=value…
//
// LEEF defines no escape character, so nothing can carry the delimiter inside a value:
// each delimiter, and each control character, in a value becomes a space. '=' needs no
// escaping (QRadar splits a pair at its first '='), nor does '|' after the header. Header
// fields have their '|' and control characters replaced with '_'. EventID and usrName are cut
// to 255 bytes at a UTF-8 boundary. The delimiter is written as itself when it is printable
// ASCII other than '|', else in LEEF's hex form (tab: x09). Empty values are left out.
//
// Attributes: devTime (anomaly time) with devTimeFormat (LEEFTimeFormat), cat "anomaly"
// (the EventID, the anomaly's kind, is the finer id), sev (Severity10, at least 1), usrName
// (agent id), then anomalyId, deliveryId, mcpServer, mcpSession, subject, score, severity,
// count, title, summary, model, tags (comma-separated), firstSeen and lastSeen (ms since the
// epoch).
func LEEF(an schemas.Anomaly, deliveryID string, d Device, delim rune) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "LEEF:2.0|"...)
	b = appendLEEFHeader(b, d.Vendor, 0)
	b = appendLEEFHeader(b, d.Product, 0)
	b = appendLEEFHeader(b, d.Version, 0)
	b = appendLEEFHeader(b, an.Kind, leefMaxEventID)
	b = append(b, LEEFDelimiterHeader(delim)...)
	b = append(b, '|')

	e := leefAttrs{b: b, delim: delim}
	if !an.Time.IsZero() {
		e.add("devTime", an.Time.UTC().Format(leefTimeLayout))
		e.add("devTimeFormat", LEEFTimeFormat)
	}
	e.add("cat", "anomaly")
	e.add("sev", strconv.Itoa(max(Severity10(an), 1)))
	e.add("usrName", truncate(an.AgentID, leefMaxUsrName))
	e.add("anomalyId", an.ID)
	e.add("deliveryId", deliveryID)
	e.add("mcpServer", an.ServerID)
	e.add("mcpSession", an.SessionID)
	e.add("subject", an.Subject)
	e.add("score", score(an.Score))
	e.add("severity", string(an.Severity))
	if an.Count > 0 {
		e.add("count", strconv.Itoa(an.Count))
	}
	e.add("title", an.Title)
	e.add("summary", an.Explanation.Summary)
	e.add("model", an.Explanation.Model)
	e.add("tags", strings.Join(an.Tags, ","))
	if !an.FirstSeen.IsZero() {
		e.add("firstSeen", millis(an.FirstSeen))
	}
	if !an.LastSeen.IsZero() {
		e.add("lastSeen", millis(an.LastSeen))
	}
	return e.b
}

// appendLEEFHeader writes one header field (cut to max bytes when max > 0) and its '|'.
func appendLEEFHeader(dst []byte, s string, max int) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if max > 0 {
		s = truncate(s, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '|' || isControl(c) {
			c = '_'
		}
		dst = append(dst, c)
	}
	return append(dst, '|')
}

type leefAttrs struct {
	b     []byte
	delim rune
	some  bool // an attribute was written
}

func (e *leefAttrs) add(key, v string) {
	if v == "" {
		return
	}
	if e.some {
		e.b = utf8.AppendRune(e.b, e.delim)
	}
	e.some = true
	e.b = append(e.b, key...)
	e.b = append(e.b, '=')
	for _, r := range strings.ToValidUTF8(v, "\uFFFD") {
		if r == e.delim || r < 0x20 || r == 0x7f {
			r = ' '
		}
		e.b = utf8.AppendRune(e.b, r)
	}
}

// LEEFDelimiterHeader is how the delimiter appears in the LEEF 2.0 header: the character
// itself when it is printable ASCII other than '|', else x followed by its code in hex.
func LEEFDelimiterHeader(r rune) string {
	if r > ' ' && r < 0x7f && r != '|' {
		return string(r)
	}
	if r <= 0xff {
		return fmt.Sprintf("x%02X", r)
	}
	return fmt.Sprintf("x%04X", r)
}

// ParseLEEFDelimiter reads a configured delimiter: one character, or LEEF's hex form (x or 0x
// and 1–4 hex digits, e.g. x09 for tab). It refuses what would make attributes unparsable:
// '=', spaces and other white space, letters and digits, and characters beyond U+FFFF (which
// the hex form cannot express), and the punctuation of mcpwatch's own values (. : - _ , +
// appear in times, scores, ids, kinds and tag lists).
func ParseLEEFDelimiter(s string) (rune, error) {
	r, size := utf8.DecodeRuneInString(s)
	if size != len(s) || r == utf8.RuneError {
		hex, ok := strings.CutPrefix(s, "0x")
		if !ok {
			hex, ok = strings.CutPrefix(s, "x")
		}
		if !ok || len(hex) < 1 || len(hex) > 4 {
			return 0, fmt.Errorf("must be one character or its hex code (x5E, 0x09), got %q", s)
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return 0, fmt.Errorf("must be one character or its hex code (x5E, 0x09), got %q", s)
		}
		r = rune(v)
	}
	switch {
	case r == '\t':
		return r, nil // LEEF 1.0's delimiter; white space otherwise is not a delimiter
	case r == '=', strings.ContainsRune(".:-_,+", r), unicode.IsSpace(r), unicode.IsLetter(r), unicode.IsDigit(r),
		r > 0xffff, r < 0x20, r == 0x7f, !utf8.ValidRune(r):
		return 0, fmt.Errorf("%q cannot separate LEEF attributes (not '=', . : - _ , +, white space, a letter, a digit or a control character)", r)
	}
	return r, nil
}
