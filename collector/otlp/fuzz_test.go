package otlp

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// FuzzOTLPDecode feeds arbitrary bodies to the OTLP/JSON and protobuf decoders: they must not
// panic, and whatever decodes must become events that pass the Event v1 schema, with every span
// accounted for as an event, ignored or rejected. Seeded with the fixtures in both encodings.
// The seeds are a few KiB, so run it with a short -fuzzminimizetime (e.g. 2s): minimising a new
// input otherwise takes up to a minute, during which the fuzzer reports no progress.
func FuzzOTLPDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var compact bytes.Buffer // smaller seeds minimise faster
		if err := json.Compact(&compact, data); err != nil {
			f.Fatal(err)
		}
		f.Add(compact.Bytes(), true)
		td, err := decodeJSON(data)
		if err != nil {
			f.Fatal(err)
		}
		pb, err := proto.Marshal(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pb, false)
	}
	f.Add([]byte(partialRequest), true)
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		decode := decodeProto
		if isJSON {
			decode = decodeJSON
		}
		td, err := decode(data)
		if err != nil {
			return
		}
		b := normalizer{collectorID: "fuzz"}.request(td)
		require.Equal(t, b.spans, len(b.events)+b.ignored+b.rejectedTotal())
		for _, ev := range b.events {
			requireValidEvent(t, ev)
		}
	})
}
