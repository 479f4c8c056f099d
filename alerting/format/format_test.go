package format_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting/format"
	"github.com/mcpwatch/mcpwatch/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const deliveryID = "4f1c2a9be07d4d55a1f0c3b2e6d7a8c9"

var (
	device = format.Device{Vendor: "mcpwatch", Product: "mcpwatch", Version: "1.4.0", Host: "watch-1.example.com"}
	header = format.Header{Facility: 16, Hostname: "watch-1.example.com", AppName: "mcpwatch", ProcID: "4242"}
)

func plain() schemas.Anomaly {
	ts := time.Date(2026, 11, 3, 2, 7, 11, 123456789, time.UTC)
	return schemas.Anomaly{
		ID:            "7d2f1c7e-0b1a-8c3e-9f00-1b2c3d4e5f60",
		SchemaVersion: schemas.AnomalySchemaVersion,
		Time:          ts,
		AgentID:       "billing-bot",
		SessionID:     "sess-42",
		ServerID:      "payments",
		Kind:          "new_tool",
		Subject:       "delete_all",
		Score:         72.5,
		Severity:      schemas.SeverityHigh,
		Title:         `Agent billing-bot called tool "delete_all" for the first time`,
		Explanation: schemas.Explanation{
			Summary: "billing-bot called delete_all, a tool it never used in 14 days",
			Model:   "first_seen_tool", Observed: "delete_all", Typical: "12 known tools",
		},
		EvidenceEventIDs: []string{"01a19f29-127a-72b5-be27-78218b5a2e0c"},
		FirstSeen:        ts.Add(-time.Minute),
		LastSeen:         ts,
		Count:            3,
		Tags:             []string{"finance", "prod"},
	}
}

// goldenCases cover the escaping edge cases of every format.
func goldenCases() map[string]schemas.Anomaly {
	escaping := plain()
	escaping.AgentID = `ops\bot|1 =x "q" [a]`
	escaping.Kind = `new|tool\x`
	escaping.Subject = "rm -rf /; echo a=b | c\\d"
	escaping.ServerID = `srv]"\`
	escaping.Title = "pipe | backslash \\ equals = quote \" bracket ] caret ^ tab\tend"
	escaping.Explanation.Summary = "line one\nline two\r\nequals a=b, pipe a|b, backslash a\\b, caret a^b"
	escaping.Tags = []string{"a=b", "c|d"}

	unicode := plain()
	unicode.AgentID = "agent-é-日本-🚀"
	unicode.Subject = "ファイル削除"
	unicode.Title = "Agent agent-é-日本-🚀 called ファイル削除 🔥"
	unicode.Explanation.Summary = "Café: 日本語のツール, emoji 🚀👩‍💻"
	unicode.Kind = "new_tool"

	overlong := plain()
	// Each cut falls inside a multi-byte character, which must not be split.
	overlong.Kind = strings.Repeat("k", 31) + "é" + "_tail"                 // MSGID 32
	overlong.Title = strings.Repeat("t", 511) + "日本" + " and more"          // CEF name 512
	overlong.Explanation.Summary = strings.Repeat("s", 1022) + "é" + "tail" // CEF msg 1023
	overlong.AgentID = strings.Repeat("a", 254) + "🚀" + "tail"              // SD value, LEEF usrName 255
	overlong.SessionID = strings.Repeat("x", 4100)                          // CEF cs2 4000

	empty := schemas.Anomaly{Severity: schemas.SeverityInfo}

	return map[string]schemas.Anomaly{"plain": plain(), "escaping": escaping, "unicode": unicode, "overlong": overlong, "empty": empty}
}

func TestGolden(t *testing.T) {
	for name, an := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			js, err := format.JSON(nil, an)
			require.NoError(t, err)
			h := header
			if name == "overlong" {
				h.Hostname = strings.Repeat("h", 300)
				h.AppName = strings.Repeat("p", 60)
			}
			if name == "unicode" {
				h.Hostname = "hôte-日本"
			}
			if name == "empty" {
				h = format.Header{}
			}
			golden(t, name+".rfc5424", format.RFC5424(an, deliveryID, h, js))
			golden(t, name+".cef", format.CEF(an, deliveryID, device))
			golden(t, name+".leef", format.LEEF(an, deliveryID, device, format.DefaultLEEFDelimiter))
			golden(t, name+".tab.leef", format.LEEF(an, deliveryID, device, '\t'))
		})
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./alerting/format -update to create it")
	require.Equal(t, string(want), string(got), "%s differs from the golden file (-update rewrites it)", file)
}

// TestRoundTrip reads every golden case back with the independent parsers and checks each
// field is what was meant: escaping undone, limits applied at UTF-8 boundaries.
func TestRoundTrip(t *testing.T) {
	for name, an := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			checkCEF(t, an, format.CEF(an, deliveryID, device))
			for _, d := range []rune{'^', '\t', '|', '¦', '#'} {
				checkLEEF(t, an, d, format.LEEF(an, deliveryID, device, d))
			}
			js, err := format.JSON(nil, an)
			require.NoError(t, err)
			checkRFC5424(t, an, header, js, format.RFC5424(an, deliveryID, header, js))
		})
	}
}

// oneLine is what formats make of control characters they cannot carry: a space each.
func oneLine(s string, keep string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 || r == 0x7f) && !strings.ContainsRune(keep, r) {
			return ' '
		}
		return r
	}, s)
}

// cut drops whole characters from the end of s (made valid UTF-8) until it fits n bytes.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

func checkCEF(t *testing.T, an schemas.Anomaly, out []byte) {
	t.Helper()
	require.NotContains(t, string(out), "\n", "one line")
	hdr, ext, err := parseCEF(string(out))
	require.NoError(t, err, "%s", out)
	wantName := an.Title
	if wantName == "" {
		wantName = an.Kind
	}
	require.Equal(t, []string{"0", device.Vendor, device.Product, device.Version, oneLine(cut(an.Kind, 1023), ""), oneLine(cut(wantName, 512), ""), itoa(format.Severity10(an))}, hdr)
	want := map[string]string{"externalId": deliveryID, "cfp1Label": "score", "cfp1": trimFloat(an.Score), "dvchost": device.Host}
	set := func(k, v string, n int) {
		if v != "" {
			want[k] = oneLine(cut(v, n), "\n\r")
		}
	}
	set("suser", an.AgentID, 1023)
	set("msg", an.Explanation.Summary, 1023)
	custom := func(k, label, v string) {
		if v != "" {
			want[k+"Label"] = label
			set(k, v, 4000)
		}
	}
	custom("cs1", "mcpServer", an.ServerID)
	custom("cs2", "mcpSession", an.SessionID)
	custom("cs3", "anomalyId", an.ID)
	custom("cs4", "subject", an.Subject)
	custom("cs5", "tags", strings.Join(an.Tags, ","))
	custom("cs6", "model", an.Explanation.Model)
	if !an.Time.IsZero() {
		want["rt"] = itoa64(an.Time.UnixMilli())
		want["start"] = itoa64(an.FirstSeen.UnixMilli())
		want["end"] = itoa64(an.LastSeen.UnixMilli())
	}
	if an.Count > 0 {
		want["cnt"] = itoa(an.Count)
	}
	require.Equal(t, want, ext)
}

func checkLEEF(t *testing.T, an schemas.Anomaly, delim rune, out []byte) {
	t.Helper()
	require.NotContains(t, string(out), "\n", "one line")
	hdr, d, attrs, err := parseLEEF(string(out))
	require.NoError(t, err, "%s", out)
	require.Equal(t, delim, d)
	kind := strings.Map(func(r rune) rune {
		if r == '|' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, cut(an.Kind, 255))
	require.Equal(t, []string{"LEEF:2.0", device.Vendor, device.Product, device.Version, kind}, hdr)
	val := func(v string) string {
		return strings.Map(func(r rune) rune {
			if r == delim || r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, strings.ToValidUTF8(v, "\uFFFD"))
	}
	want := map[string]string{"cat": "anomaly", "sev": itoa(max(format.Severity10(an), 1)), "deliveryId": deliveryID, "score": trimFloat(an.Score)}
	set := func(k, v string) {
		if v != "" {
			want[k] = val(v)
		}
	}
	set("usrName", cut(an.AgentID, 255))
	set("anomalyId", an.ID)
	set("mcpServer", an.ServerID)
	set("mcpSession", an.SessionID)
	set("subject", an.Subject)
	set("severity", string(an.Severity))
	set("title", an.Title)
	set("summary", an.Explanation.Summary)
	set("model", an.Explanation.Model)
	set("tags", strings.Join(an.Tags, ","))
	if an.Count > 0 {
		want["count"] = itoa(an.Count)
	}
	if !an.Time.IsZero() {
		want["devTime"] = an.Time.UTC().Format("Jan 02 2006 15:04:05.000") + " GMT"
		want["devTimeFormat"] = format.LEEFTimeFormat
		want["firstSeen"] = itoa64(an.FirstSeen.UnixMilli())
		want["lastSeen"] = itoa64(an.LastSeen.UnixMilli())
	}
	require.Equal(t, want, attrs)
}

func checkRFC5424(t *testing.T, an schemas.Anomaly, h format.Header, msg, out []byte) {
	t.Helper()
	m, err := parseRFC5424(out)
	require.NoError(t, err, "%s", out)
	require.Equal(t, 16*8+format.SyslogSeverity(an.Severity), m.pri)
	for _, f := range []string{m.timestamp, m.hostname, m.appName, m.procID, m.msgID} {
		requirePrintable(t, f)
	}
	if an.Time.IsZero() {
		require.Equal(t, "-", m.timestamp)
	} else {
		ts, err := time.Parse(time.RFC3339Nano, m.timestamp)
		require.NoError(t, err)
		require.Equal(t, an.Time.Truncate(time.Microsecond), ts, "microseconds kept, nanoseconds dropped")
	}
	require.Equal(t, h.Hostname, m.hostname)
	require.Equal(t, h.AppName, m.appName)
	require.Equal(t, h.ProcID, m.procID)
	wantKind := an.Kind
	if len(wantKind) > 32 {
		wantKind = strings.Map(func(r rune) rune {
			if r > 126 {
				return '_'
			}
			return r
		}, wantKind)[:32]
	}
	if wantKind == "" {
		wantKind = "-"
	}
	require.Equal(t, strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, wantKind), m.msgID)
	require.Len(t, m.sd, 1)
	require.Equal(t, format.DefaultSDID, m.sd[0].id)
	params := map[string]string{}
	for _, p := range m.sd[0].params {
		params[p[0]] = p[1]
	}
	sdv := func(v string) string { return oneLine(cut(v, format.MaxSDValue), "") }
	want := map[string]string{
		"anomaly_id": sdv(an.ID), "delivery_id": deliveryID, "agent": sdv(an.AgentID), "kind": sdv(an.Kind),
		"score": trimFloat(an.Score), "severity": string(an.Severity), "count": itoa(an.Count),
	}
	if an.ServerID != "" {
		want["server"] = sdv(an.ServerID)
	}
	if an.SessionID != "" {
		want["session"] = sdv(an.SessionID)
	}
	require.Equal(t, want, params)
	require.False(t, m.bom)
	require.Equal(t, msg, m.msg)
}

func requirePrintable(t *testing.T, s string) {
	t.Helper()
	require.NotEmpty(t, s)
	for i := 0; i < len(s); i++ {
		require.True(t, s[i] >= 33 && s[i] <= 126, "byte %#x in header field %q", s[i], s)
	}
}

func TestRFC5424Header(t *testing.T) {
	an := plain()
	for _, tc := range []struct {
		name string
		h    format.Header
		an   func(*schemas.Anomaly)
		want string // the message up to the structured data
	}{
		{name: "plain", h: header, want: "<131>1 2026-11-03T02:07:11.123456Z watch-1.example.com mcpwatch 4242 new_tool "},
		{name: "nil fields", h: format.Header{Facility: 4}, want: "<35>1 2026-11-03T02:07:11.123456Z - - - new_tool "},
		{name: "no fraction", h: header, an: func(a *schemas.Anomaly) { a.Time = a.Time.Truncate(time.Second) }, want: "<131>1 2026-11-03T02:07:11Z watch-1.example.com mcpwatch 4242 new_tool "},
		{name: "trailing zeros trimmed", h: header, an: func(a *schemas.Anomaly) { a.Time = a.Time.Truncate(time.Millisecond) }, want: "<131>1 2026-11-03T02:07:11.123Z watch-1.example.com mcpwatch 4242 new_tool "},
		{name: "local time in UTC", h: header, an: func(a *schemas.Anomaly) { a.Time = a.Time.In(time.FixedZone("CET", 3600)) }, want: "<131>1 2026-11-03T02:07:11.123456Z watch-1.example.com mcpwatch 4242 new_tool "},
		{name: "no time", h: header, an: func(a *schemas.Anomaly) { a.Time = time.Time{} }, want: "<131>1 - watch-1.example.com mcpwatch 4242 new_tool "},
		{name: "spaces and non-ASCII", h: format.Header{Facility: 23, Hostname: "my host", AppName: "mcp watch", ProcID: "é1"}, an: func(a *schemas.Anomaly) { a.Kind = "new tool\n" }, want: "<187>1 2026-11-03T02:07:11.123456Z my_host mcp_watch _1 new_tool_ "},
		{name: "critical", h: header, an: func(a *schemas.Anomaly) { a.Severity = schemas.SeverityCritical }, want: "<130>1 "},
		{name: "info", h: format.Header{}, an: func(a *schemas.Anomaly) { a.Severity = schemas.SeverityInfo }, want: "<6>1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := an
			if tc.an != nil {
				tc.an(&a)
			}
			out := string(format.RFC5424(a, deliveryID, tc.h, []byte("m")))
			require.True(t, strings.HasPrefix(out, tc.want), "%s", out)
			require.True(t, strings.HasSuffix(out, "] m"))
		})
	}
}

func TestRFC5424StructuredDataAndBOM(t *testing.T) {
	an := plain()
	an.AgentID = `a"b\c]d` + "\ne"
	out := format.RFC5424(an, deliveryID, format.Header{SDID: "acme@1.2.3", BOM: true}, []byte("{}"))
	require.Contains(t, string(out), ` [acme@1.2.3 anomaly_id="7d2f1c7e-0b1a-8c3e-9f00-1b2c3d4e5f60" delivery_id="`+deliveryID+`" agent="a\"b\\c\]d e" server="payments" session="sess-42" kind="new_tool" score="72.5" severity="high" count="3"] `+"\xEF\xBB\xBF{}")

	m := format.Message{Facility: 1, Severity: 5}
	require.Equal(t, "<13>1 - - - - - -", string(m.Bytes()), "an empty message has no trailing space")
	m.StructuredData = []format.SDElement{{ID: "a@1"}, {ID: "b@2", Params: []format.SDParam{{Name: "x", Value: ""}}}}
	m.Msg = []byte("line1\nline2")
	require.Equal(t, "<13>1 - - - - - [a@1][b@2 x=\"\"] line1\nline2", string(m.Bytes()))
}

func TestCEFEscaping(t *testing.T) {
	for _, tc := range []struct {
		name string
		an   func(*schemas.Anomaly)
		want []string // substrings of the output
		not  []string
	}{
		{name: "pipe in header escaped", an: func(a *schemas.Anomaly) { a.Title = "a|b" }, want: []string{`|a\|b|`}},
		{name: "backslash in header escaped", an: func(a *schemas.Anomaly) { a.Title = `a\b` }, want: []string{`|a\\b|`}},
		{name: "equals in header not escaped", an: func(a *schemas.Anomaly) { a.Title = "a=b" }, want: []string{`|a=b|`}},
		{name: "newline in header becomes a space", an: func(a *schemas.Anomaly) { a.Title = "a\nb" }, want: []string{`|a b|`}},
		{name: "pipe in extension not escaped", an: func(a *schemas.Anomaly) { a.AgentID = "a|b" }, want: []string{` suser=a|b `}},
		{name: "equals in extension escaped", an: func(a *schemas.Anomaly) { a.AgentID = "a=b" }, want: []string{` suser=a\=b `}},
		{name: "backslash in extension escaped", an: func(a *schemas.Anomaly) { a.AgentID = `a\b` }, want: []string{` suser=a\\b `}},
		{name: "newlines in extension", an: func(a *schemas.Anomaly) { a.Explanation.Summary = "a\r\nb" }, want: []string{` msg=a\r\nb `}},
		{name: "tab in extension", an: func(a *schemas.Anomaly) { a.Explanation.Summary = "a\tb" }, want: []string{` msg=a b `}},
		{name: "invalid UTF-8", an: func(a *schemas.Anomaly) { a.AgentID = "a\xffb" }, want: []string{" suser=a\uFFFDb "}},
		{name: "empty values left out", an: func(a *schemas.Anomaly) { a.ServerID, a.Tags = "", nil }, not: []string{"cs1", "cs5", "mcpServer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := plain()
			tc.an(&a)
			out := string(format.CEF(a, deliveryID, device))
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			for _, n := range tc.not {
				require.NotContains(t, out, n)
			}
			checkCEF(t, a, []byte(out))
		})
	}
	out := string(format.CEF(plain(), deliveryID, device))
	require.Equal(t, `CEF:0|mcpwatch|mcpwatch|1.4.0|new_tool|Agent billing-bot called tool "delete_all" for the first time|7|`+
		`rt=1793671631123 start=1793671571123 end=1793671631123 cnt=3 externalId=`+deliveryID+` suser=billing-bot dvchost=watch-1.example.com `+
		`msg=billing-bot called delete_all, a tool it never used in 14 days cs1Label=mcpServer cs1=payments cs2Label=mcpSession cs2=sess-42 `+
		`cs3Label=anomalyId cs3=7d2f1c7e-0b1a-8c3e-9f00-1b2c3d4e5f60 cs4Label=subject cs4=delete_all cs5Label=tags cs5=finance,prod `+
		`cs6Label=model cs6=first_seen_tool cfp1Label=score cfp1=72.5`, out)
}

func TestLEEF(t *testing.T) {
	a := plain()
	a.Explanation.Summary = "x^y=z|w\tv\nu"
	out := string(format.LEEF(a, deliveryID, device, '^'))
	require.Equal(t, "LEEF:2.0|mcpwatch|mcpwatch|1.4.0|new_tool|^|devTime=Nov 03 2026 02:07:11.123 GMT^devTimeFormat=MMM dd yyyy HH:mm:ss.SSS z^"+
		"cat=anomaly^sev=7^usrName=billing-bot^anomalyId=7d2f1c7e-0b1a-8c3e-9f00-1b2c3d4e5f60^deliveryId="+deliveryID+"^"+
		"mcpServer=payments^mcpSession=sess-42^subject=delete_all^score=72.5^severity=high^count=3^"+
		`title=Agent billing-bot called tool "delete_all" for the first time^summary=x y=z|w v u^model=first_seen_tool^tags=finance,prod^`+
		"firstSeen=1793671571123^lastSeen=1793671631123", out)

	tab := string(format.LEEF(a, deliveryID, device, '\t'))
	require.True(t, strings.HasPrefix(tab, "LEEF:2.0|mcpwatch|mcpwatch|1.4.0|new_tool|x09|devTime="), tab)
	require.Contains(t, tab, "\tsummary=x^y=z|w v u\t", "only the delimiter and control characters are replaced")
	pipe := string(format.LEEF(a, deliveryID, device, '|'))
	require.Contains(t, pipe, "|new_tool|x7C|devTime=")
	require.Contains(t, pipe, "|summary=x^y=z w v u|")
}

func TestLEEFDelimiter(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    rune
		header  string
		wantErr bool
	}{
		{in: "^", want: '^', header: "^"},
		{in: "#", want: '#', header: "#"},
		{in: "\t", want: '\t', header: "x09"},
		{in: "x09", want: '\t', header: "x09"},
		{in: "0x5E", want: '^', header: "^"},
		{in: "x7c", want: '|', header: "x7C"},
		{in: "¦", want: '¦', header: "xA6"},
		{in: "x2503", want: '┃', header: "x2503"},
		{in: "=", wantErr: true},
		{in: ".", wantErr: true},
		{in: "x2D", wantErr: true},
		{in: " ", wantErr: true},
		{in: "\n", wantErr: true},
		{in: "a", wantErr: true},
		{in: "x", wantErr: true},
		{in: "7", wantErr: true},
		{in: "x0", wantErr: true},
		{in: "x10000", wantErr: true},
		{in: "xZZ", wantErr: true},
		{in: "^^", wantErr: true},
		{in: "", wantErr: true},
		{in: "\xff", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := format.ParseLEEFDelimiter(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r)
			require.Equal(t, tc.header, format.LEEFDelimiterHeader(r))
		})
	}
}

func TestSeverities(t *testing.T) {
	for _, tc := range []struct {
		sev         schemas.Severity
		score       float64
		cef         int
		syslogSev   int
		leefAtLeast int
	}{
		{schemas.SeverityInfo, 0, 0, 6, 1},
		{schemas.SeverityInfo, 19.9, 1, 6, 1},
		{schemas.SeverityLow, 20, 2, 5, 2},
		{schemas.SeverityLow, 39, 3, 5, 3},
		{schemas.SeverityMedium, 40, 4, 4, 4},
		{schemas.SeverityMedium, 69.9, 6, 4, 6},
		{schemas.SeverityHigh, 70, 7, 3, 7},
		{schemas.SeverityHigh, 89, 8, 3, 8},
		{schemas.SeverityCritical, 90, 9, 2, 9},
		{schemas.SeverityCritical, 100, 10, 2, 10},
		{schemas.SeverityCritical, 30, 9, 2, 9}, // a policy's critical with a low score stays critical
		{schemas.SeverityInfo, 95, 1, 6, 1},     // and an info with a high score stays info
		{schemas.SeverityHigh, 250, 8, 3, 8},    // out of range
		{schemas.Severity("odd"), -5, 0, 6, 1},  // unknown band: the score alone, clamped
		{schemas.Severity("odd"), 1000, 10, 6, 10},
	} {
		a := schemas.Anomaly{Severity: tc.sev, Score: tc.score}
		require.Equal(t, tc.cef, format.Severity10(a), "%s %v", tc.sev, tc.score)
		require.Equal(t, tc.syslogSev, format.SyslogSeverity(tc.sev))
		_, _, attrs, err := parseLEEF(string(format.LEEF(a, "", device, '^')))
		require.NoError(t, err)
		require.Equal(t, itoa(tc.leefAtLeast), attrs["sev"])
	}
}

func TestSDNames(t *testing.T) {
	for _, ok := range []string{"mcpwatch@32473", "acme@1.2.3", "x@1"} {
		require.NoError(t, format.ValidEnterpriseSDID(ok), ok)
	}
	for _, bad := range []string{"", "origin", "mcpwatch", "@32473", "mcpwatch@", "a@b", "a@1@2", "a b@1", `a"@1`, "a]@1", "a=@1", "é@1", strings.Repeat("a", 30) + "@123"} {
		require.Error(t, format.ValidEnterpriseSDID(bad), bad)
	}
	require.NoError(t, format.ValidSDName("origin"))
	require.Error(t, format.ValidSDName("a\x7f"))
}

func TestOctetCounting(t *testing.T) {
	require.Equal(t, "11 hello\nworld", string(format.AppendOctetCounted(nil, []byte("hello\nworld"))))
	require.Equal(t, "x0 ", string(format.AppendOctetCounted([]byte("x"), nil)))
	msg := []byte("日本") // octets, not characters
	require.Equal(t, "6 日本", string(format.AppendOctetCounted(nil, msg)))
}

func TestJSON(t *testing.T) {
	an := plain()
	raw, err := json.MarshalIndent(an, "", "  ")
	require.NoError(t, err)
	raw = bytes.Replace(raw, []byte(`"anomaly_id"`), []byte(`"future_field": {"a": [1, 2]},`+"\n"+`  "anomaly_id"`), 1)
	out, err := format.JSON(raw, an)
	require.NoError(t, err)
	require.NotContains(t, string(out), "\n")
	require.Contains(t, string(out), `"future_field":{"a":[1,2]}`, "unknown fields pass through")
	var back schemas.Anomaly
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, an.Title, back.Title)

	out, err = format.JSON([]byte("{oops"), an)
	require.NoError(t, err)
	want, _ := json.Marshal(an)
	require.Equal(t, want, out, "invalid raw JSON: the decoded anomaly instead")
	require.NoError(t, schemas.ValidateAnomalyJSON(out))
}

func itoa(i int) string { return strconv.Itoa(i) }

func itoa64(i int64) string { return strconv.FormatInt(i, 10) }

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
