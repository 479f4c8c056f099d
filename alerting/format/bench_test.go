package format_test

import (
	"encoding/json"
	"testing"

	"github.com/mcpwatch/mcpwatch/alerting/format"
)

// BenchmarkFormats renders one anomaly as each syslog message a sink sends: the RFC 5424
// header and structured data around compact JSON, CEF or LEEF.
func BenchmarkFormats(b *testing.B) {
	an := goldenCases()["escaping"]
	raw, err := json.Marshal(an)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body func() []byte
	}{
		{"json", func() []byte { out, _ := format.JSON(raw, an); return out }},
		{"cef", func() []byte { return format.CEF(an, deliveryID, device) }},
		{"leef", func() []byte { return format.LEEF(an, deliveryID, device, '^') }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = len(format.RFC5424(an, deliveryID, header, bc.body()))
			}
			b.SetBytes(int64(n))
		})
	}
}
