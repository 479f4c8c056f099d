package format

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// Device names the product that sends the alert, in CEF and LEEF headers.
type Device struct {
	// Vendor and Product identify the sender; SIEM parsers key on the pair, so keep them
	// stable (mcpwatch uses "mcpwatch" for both).
	Vendor  string
	Product string
	// Version is the sender's version.
	Version string
	// Host is the host that sends the alert (CEF dvchost); empty omits it.
	Host string
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence. Limits are applied
// in bytes, so a value also fits a limit its specification counts in characters.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clean makes s valid UTF-8 (each invalid byte becomes U+FFFD) and cuts it to n bytes.
func clean(s string, n int) string {
	return truncate(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// isControl reports an ASCII control character (C0 or DEL).
func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

// millis is t in milliseconds since the Unix epoch.
func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// score formats a 0–100 score without trailing zeros (55, 72.5).
func score(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Severity10 maps an anomaly to a 0–10 severity: its score divided by ten (rounded down),
// kept within the range of its severity band, so the number agrees with the band even when a
// policy set the band independently of the score. The ranges follow ArcSight's reading of CEF
// severity (0–3 low, 4–6 medium, 7–8 high, 9–10 very high): info 0–1, low 2–3, medium 4–6,
// high 7–8, critical 9–10.
func Severity10(an schemas.Anomaly) int {
	v := int(an.Score / 10)
	lo, hi := 0, 10
	switch an.Severity {
	case schemas.SeverityInfo:
		lo, hi = 0, 1
	case schemas.SeverityLow:
		lo, hi = 2, 3
	case schemas.SeverityMedium:
		lo, hi = 4, 6
	case schemas.SeverityHigh:
		lo, hi = 7, 8
	case schemas.SeverityCritical:
		lo, hi = 9, 10
	}
	return min(max(v, lo), hi)
}

// name is the anomaly's one-line name: its title, or its kind when it has none.
func name(an schemas.Anomaly) string {
	if an.Title != "" {
		return an.Title
	}
	return an.Kind
}
