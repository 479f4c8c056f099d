package format_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/alerting/format"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// fuzzAnomaly builds an anomaly from fuzzed strings.
func fuzzAnomaly(kind, agent, title, summary, subject, server string, score float64, sev uint8) schemas.Anomaly {
	an := plain()
	an.Kind, an.AgentID, an.Title, an.Explanation.Summary, an.Subject, an.ServerID = kind, agent, title, summary, subject, server
	an.Score = score
	an.Severity = []schemas.Severity{"info", "low", "medium", "high", "critical", ""}[int(sev)%6]
	an.Tags = strings.Split(subject, " ")
	return an
}

func addSeeds(f *testing.F) {
	for _, an := range goldenCases() {
		f.Add(an.Kind, an.AgentID, an.Title, an.Explanation.Summary, an.Subject, an.ServerID, an.Score, uint8(3))
	}
	f.Add("a\\", "=", "|", "\\|\\=", "]", "\"", 1e300, uint8(200))
}

// FuzzRFC5424: whatever the settings and the anomaly hold, the header is PRI, VERSION and five
// fields of printable US-ASCII within their limits, the structured data reads back to the
// values meant, and the message is carried byte for byte.
func FuzzRFC5424(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, kind, agent, title, summary, subject, server string, score float64, sev uint8) {
		an := fuzzAnomaly(kind, agent, title, summary, subject, server, score, sev)
		h := format.Header{Facility: int(sev) % 24, Hostname: title, AppName: summary, ProcID: subject, BOM: sev%2 == 0}
		msg := []byte(agent + "\n" + kind)
		out := format.RFC5424(an, deliveryID, h, msg)
		m, err := parseRFC5424(out)
		if err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		for field, lim := range map[string]int{m.hostname: format.MaxHostname, m.appName: format.MaxAppName, m.procID: format.MaxProcID, m.msgID: format.MaxMsgID} {
			if field == "" || len(field) > lim {
				t.Fatalf("header field %q: empty or over %d", field, lim)
			}
			for i := 0; i < len(field); i++ {
				if field[i] < 33 || field[i] > 126 {
					t.Fatalf("byte %#x in header field %q", field[i], field)
				}
			}
		}
		if m.pri != h.Facility*8+format.SyslogSeverity(an.Severity) {
			t.Fatalf("PRI %d", m.pri)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.timestamp); err != nil {
			t.Fatalf("timestamp %q: %v", m.timestamp, err)
		}
		if len(m.sd) != 1 || len(m.sd[0].params) < 7 {
			t.Fatalf("structured data %+v", m.sd)
		}
		got := map[string]string{}
		for _, p := range m.sd[0].params {
			got[p[0]] = p[1]
		}
		sdv := func(v string) string { return oneLine(cut(v, format.MaxSDValue), "") }
		if got["agent"] != sdv(agent) || got["kind"] != sdv(kind) || got["delivery_id"] != deliveryID || (server != "" && got["server"] != sdv(server)) {
			t.Fatalf("structured data %q, want agent %q kind %q server %q", got, sdv(agent), sdv(kind), sdv(server))
		}
		if m.bom != h.BOM || string(m.msg) != string(msg) {
			t.Fatalf("message %q (bom %v), want %q", m.msg, m.bom, msg)
		}
	})
}

// FuzzCEF: the header always splits into exactly seven fields at unescaped pipes, nothing is
// ever on a second line, and the extension reads back into exactly the keys and values meant.
func FuzzCEF(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, kind, agent, title, summary, subject, server string, score float64, sev uint8) {
		an := fuzzAnomaly(kind, agent, title, summary, subject, server, score, sev)
		out := format.CEF(an, deliveryID, format.Device{Vendor: subject, Product: "p|\\", Version: server, Host: title})
		s := string(out)
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("CEF spans lines: %q", s)
		}
		hdr, ext, err := parseCEF(s)
		if err != nil {
			t.Fatalf("%v: %q", err, s)
		}
		if hdr[2] != "p|\\" || hdr[4] != oneLine(cut(kind, 1023), "") {
			t.Fatalf("header %q", hdr)
		}
		if sv := format.Severity10(an); hdr[6] != itoa(sv) || sv < 0 || sv > 10 {
			t.Fatalf("severity %q", hdr[6])
		}
		want := map[string]string{"suser": agent, "msg": summary, "cs1": server, "cs4": subject, "dvchost": title}
		for k, v := range want {
			lim := map[string]int{"suser": 1023, "msg": 1023, "cs1": 4000, "cs4": 4000, "dvchost": 100}[k]
			w := oneLine(cut(v, lim), "\r\n")
			if v == "" {
				if _, ok := ext[k]; ok {
					t.Fatalf("empty %s written", k)
				}
				continue
			}
			if ext[k] != w {
				t.Fatalf("%s = %q, want %q", k, ext[k], w)
			}
		}
		if ext["externalId"] != deliveryID || ext["cfp1"] != trimFloat(score) {
			t.Fatalf("extension %q", ext)
		}
	})
}

// FuzzLEEF: with any valid delimiter, the event parses back into exactly the attribute keys
// written, and each value is the input with only the delimiter and control characters replaced.
func FuzzLEEF(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, kind, agent, title, summary, subject, server string, score float64, sev uint8) {
		an := fuzzAnomaly(kind, agent, title, summary, subject, server, score, sev)
		delim, err := format.ParseLEEFDelimiter(server)
		if err != nil {
			delim = []rune{'^', '\t', '|', '#', '¦'}[int(sev)%5]
		}
		out := format.LEEF(an, deliveryID, device, delim)
		checkLEEF(t, an, delim, out)
	})
}
