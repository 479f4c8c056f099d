package schemas

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// populated is an event whose labels, flags and content decoding merges into, as json.Unmarshal
// merges into a map, a slice's elements and a pointed-to struct.
func populated() Event {
	return Event{
		ID: "old", SchemaVersion: 7, ObservedAt: time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC), Method: "old/method",
		Labels:  map[string]string{"keep": "1", "team": "old"},
		Flags:   append(make([]Flag, 0, 4), Flag{Type: "a", Severity: SeverityLow, Path: "$.a", Evidence: "ea"}, Flag{Type: "b", Path: "$.b"}, Flag{Type: "c", Evidence: "ec"}),
		Content: &Content{Arguments: "old args", Captured: true},
	}
}

// requireSameDecode asserts DecodeEvent and json.Unmarshal agree on data, from a zero event and
// from a populated one: both fail or neither, and they leave the same event.
func requireSameDecode(t *testing.T, data []byte) {
	t.Helper()
	for _, base := range []func() Event{func() Event { return Event{} }, populated} {
		want, got := base(), base()
		wantErr := json.Unmarshal(data, &want)
		gotErr := DecodeEvent(data, &got)
		require.Equal(t, wantErr != nil, gotErr != nil, "input %q: json.Unmarshal error %v, DecodeEvent error %v", data, wantErr, gotErr)
		require.Equal(t, want, got, "input %q", data)
	}
}

// requireSameEncode asserts AppendJSON writes what json.Marshal writes, or fails when it does.
func requireSameEncode(t *testing.T, ev Event) {
	t.Helper()
	want, wantErr := json.Marshal(ev)
	got, gotErr := ev.AppendJSON([]byte("prefix"))
	require.Equal(t, wantErr != nil, gotErr != nil, "json.Marshal error %v, AppendJSON error %v", wantErr, gotErr)
	if wantErr == nil {
		require.Equal(t, "prefix"+string(want), string(got))
	}
}

func sampleEvents(t testing.TB) [][]byte {
	files, err := filepath.Glob("testdata/event.*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func TestDecodeEventMatchesEncodingJSON(t *testing.T) {
	cases := map[string]string{
		"empty":                   ``,
		"spaces":                  " \t\r\n",
		"null":                    `null`,
		"null with space":         " null\n",
		"nul":                     `nul`,
		"empty object":            `{}`,
		"string":                  `"event"`,
		"number":                  `12`,
		"array":                   `[{"event_id":"x"}]`,
		"bool":                    `true`,
		"trailing data":           `{"event_id":"x"} {}`,
		"trailing comma":          `{"event_id":"x",}`,
		"missing colon":           `{"event_id" "x"}`,
		"unterminated":            `{"event_id":"x"`,
		"unterminated string":     `{"event_id":"x`,
		"single quotes":           `{'event_id':'x'}`,
		"unknown fields":          `{"zzz":[1,{"a":[true,false,null]},-0.5e+3],"event_id":"x","more":{}}`,
		"case folding":            `{"EVENT_ID":"x","Schema_Version":2,"LaBeLs":{"A":"b"}}`,
		"kelvin and long s":       `{"\u212aind":"request","\u017fource":"otlp","\u212a\u212a":"x"}`,
		"escaped key":             `{"\u0065vent_id":"x","agent\u005fid":"a"}`,
		"exact before folded":     `{"event_id":"a","EVENT_ID":"b"}`,
		"duplicate keys":          `{"event_id":"a","event_id":"b","event_id":null}`,
		"escapes":                 `{"event_id":"\"\\\/\b\f\n\r\t\u00e9\u2028\uD83D\uDE00"}`,
		"lone high surrogate":     `{"event_id":"a\ud800b"}`,
		"lone low surrogate":      `{"event_id":"a\udc00b"}`,
		"high then non-low":       `{"event_id":"\ud800\u0041"}`,
		"high then high then low": `{"event_id":"\ud800\ud800\udc00"}`,
		"invalid escape":          `{"event_id":"\x"}`,
		"escaped single quote":    `{"event_id":"\'"}`,
		"short unicode escape":    `{"event_id":"\u12"}`,
		"control character":       "{\"event_id\":\"a\x01b\"}",
		"invalid utf-8":           "{\"event_id\":\"a\xffb\xc3\",\"labels\":{\"\xfe\":\"\xed\xa0\x80\"}}",
		"nul after value":         "{}\x00",
		"nul before value":        "\x00{}",
		"nul in object":           "{\x00}",
		"utf-8 outside strings":   "{\"event_id\":\"x\"}\xc3\xa9",
		"nul in string":           `{"event_id":"a\u0000b"}`,
		"numbers":                 `{"schema_version":-0,"latency_us":9223372036854775807,"error_code":-9223372036854775808,"request_bytes":0}`,
		"int overflow":            `{"latency_us":9223372036854775808,"event_id":"after"}`,
		"negative overflow":       `{"latency_us":-9223372036854775809}`,
		"fraction":                `{"schema_version":1.0,"event_id":"after"}`,
		"exponent":                `{"schema_version":1e2}`,
		"leading zero":            `{"schema_version":01}`,
		"bare minus":              `{"schema_version":-}`,
		"dot without digits":      `{"schema_version":1.}`,
		"exponent without digits": `{"schema_version":1e+}`,
		"plus sign":               `{"schema_version":+1}`,
		"string for int":          `{"schema_version":"1","event_id":"after"}`,
		"number for string":       `{"event_id":12,"agent_id":"after"}`,
		"object for string":       `{"event_id":{"a":1},"agent_id":"after"}`,
		"array for string":        `{"event_id":[1],"agent_id":"after"}`,
		"bool for string":         `{"event_id":true,"agent_id":"after"}`,
		"nulls":                   `{"event_id":null,"schema_version":null,"observed_at":null,"labels":null,"flags":null,"content":null}`,
		"times":                   `{"observed_at":"2026-11-03T10:00:00.123456789+02:00"}`,
		"time in utc":             `{"observed_at":"2026-11-03T10:00:00Z","event_id":"after"}`,
		"bad time":                `{"observed_at":"yesterday","event_id":"after"}`,
		"escaped time":            `{"observed_at":"2026-11-03T10:00:00\u005a"}`,
		"number time":             `{"observed_at":17,"event_id":"after"}`,
		"object time":             `{"observed_at":{},"event_id":"after"}`,
		"bad time then bad json":  `{"observed_at":1,"event_id":}`,
		"type error then time":    `{"event_id":1,"observed_at":"x","agent_id":"after"}`,
		"content":                 `{"content":{"arguments":"{\"q\":1}","result":"r","truncated":true,"captured":false,"x":1}}`,
		"content merges":          `{"content":{"result":"r"}}`,
		"content empty":           `{"content":{}}`,
		"content string":          `{"content":"x","event_id":"after"}`,
		"content array":           `{"content":[],"event_id":"after"}`,
		"content bool fields":     `{"content":{"truncated":"yes","captured":null}}`,
		"labels":                  `{"labels":{"b":"2","a":"1","a":"3"}}`,
		"labels empty":            `{"labels":{}}`,
		"labels wrong values":     `{"labels":{"n":null,"x":1,"o":{},"s":"ok"}}`,
		"labels array":            `{"labels":["a"],"event_id":"after"}`,
		"labels escaped keys":     `{"labels":{"k\u00e9y":"v\u00e9","\"":"\\"}}`,
		"flags":                   `{"flags":[{"type":"secret","severity":"high","path":"$.a","evidence":"len 3"}]}`,
		"flags merge":             `{"flags":[{"type":"x"},{"severity":"low"}]}`,
		"flags longer":            `{"flags":[{},{},{},{},{},{"type":"six"}]}`,
		"flags empty":             `{"flags":[]}`,
		"flags nulls":             `{"flags":[null,{"type":"t"},null]}`,
		"flags wrong elements":    `{"flags":[1,"x",[],{"type":2}],"event_id":"after"}`,
		"flags object":            `{"flags":{"type":"x"}}`,
		"flags twice":             `{"flags":[{"type":"a"},{"type":"b"}],"flags":[{"path":"p"}],"flags":[{},{},{}]}`,
		"flags trailing comma":    `{"flags":[{},]}`,
		"flags missing comma":     `{"flags":[{} {}]}`,
		"deepest unknown":         `{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		"too deep unknown":        `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		"too deep objects":        `{"x":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat("}", 10000) + `}`,
		"too deep flags":          `{"flags":[{"x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}]}`,
		"deepest flags":           `{"flags":[{"x":` + strings.Repeat("[", 9996) + strings.Repeat("]", 9996) + `}]}`,
		"too deep top level":      strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		"literals":                `{"x":[true,false,null],"y":tru}`,
		"white space":             " {\n\t\"event_id\" :\r \"x\" , \"flags\" : [ { } , null ] } ",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) { requireSameDecode(t, []byte(in)) })
	}
	for i, in := range sampleEvents(t) {
		requireSameDecode(t, in)
		var ev Event
		require.NoError(t, DecodeEvent(in, &ev), "sample %d", i)
		require.NotEmpty(t, ev.ID)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	tricky := "<a href=\"x\">&amp;</a>\\ \b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xc3 \xed\xa0\x80 😀 \U000E0041"
	cases := map[string]Event{
		"zero": {},
		"full": {
			ID: "01a19f29-127a-72b5-be27-000000000001", SchemaVersion: 1, ObservedAt: time.Date(2026, 11, 3, 10, 0, 1, 123000, time.UTC),
			CollectorID: "tap-1", Source: SourceHTTPTap, Transport: "streamable_http", ProtocolVersion: "2025-11-25",
			AgentID: "a", AgentSource: "header", DeclaredAgent: "d", ClientName: "c", ClientVersion: "1", ServerID: "s",
			SessionID: "x", JSONRPCID: "7", Direction: ClientToServer, Kind: KindRequest, Method: "tools/call", Target: "t",
			Status: StatusError, ErrorCode: -32601, LatencyMicros: -5, RequestBytes: 1 << 40, ResponseBytes: -1 << 62,
			ArgsShape: `{"q":"string"}`, ArgsHash: "h", ResultHash: "r", TraceID: "tr", SpanID: "sp",
			Content: &Content{Arguments: `{"q":"<x>"}`, Result: tricky, Truncated: true, Captured: true},
			Labels:  map[string]string{"z": "1", "a": "2", "é": "3", "A": "4", "<": ">", "": ""},
			Flags:   []Flag{{Type: "secret", Severity: SeverityHigh, Path: "$.a", Evidence: "e"}, {}},
		},
		"tricky strings":     {ID: tricky, AgentID: tricky, Labels: map[string]string{tricky: tricky}, Flags: []Flag{{Evidence: tricky}}},
		"empty content":      {Content: &Content{}},
		"content only flags": {Content: &Content{Captured: true}},
		"content result":     {Content: &Content{Result: "r"}},
		"empty labels":       {Labels: map[string]string{}, Flags: []Flag{}},
		"many labels":        {Labels: manyLabels(40)},
		"min ints":           {SchemaVersion: -1 << 63, LatencyMicros: -1 << 63, ErrorCode: 1<<63 - 1},
		"time with zone":     {ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 1, time.FixedZone("x", -(3*3600+30*60)))},
		"time local":         {ObservedAt: time.Now()},
		"time year 0":        {ObservedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		"time year 9999":     {ObservedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		"time year 10000":    {ObservedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"time year -1":       {ObservedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"zone of 24 hours":   {ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		"zone with seconds":  {ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+30))},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) { requireSameEncode(t, ev) })
	}
	for i, in := range sampleEvents(t) {
		var ev Event
		require.NoError(t, json.Unmarshal(in, &ev), "sample %d", i)
		requireSameEncode(t, ev)
	}
}

func manyLabels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('0'+i%10))] = "v"
	}
	return m
}

// TestEventCodecRoundTrip decodes what AppendJSON wrote back into the same event.
func TestEventCodecRoundTrip(t *testing.T) {
	for i, in := range sampleEvents(t) {
		var ev Event
		require.NoError(t, DecodeEvent(in, &ev), "sample %d", i)
		b, err := ev.AppendJSON(nil)
		require.NoError(t, err)
		var back Event
		require.NoError(t, DecodeEvent(b, &back))
		require.Equal(t, ev, back, "sample %d", i)
	}
}

// FuzzEventCodec holds the codec to encoding/json: DecodeEvent on arbitrary bytes does what
// json.Unmarshal does, and AppendJSON writes what json.Marshal writes, for the decoded event and
// for an event whose strings, numbers and time are taken from the fuzz input as they are (so
// invalid UTF-8 and out-of-range times too).
func FuzzEventCodec(f *testing.F) {
	for _, b := range sampleEvents(f) {
		f.Add(b)
		var compact bytes.Buffer
		if json.Compact(&compact, b) == nil {
			f.Add(compact.Bytes())
		}
	}
	f.Add([]byte(`{"EVENT_ID":"\ud83d\ude00","labels":{"a":1},"flags":[{},null,{"type":"x"}],"content":"x"}`))
	f.Add([]byte("{\"event_id\":\"\xff<>&\u2028\",\"observed_at\":\"2026-11-03T10:00:00+23:59\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		requireSameDecode(t, data)
		var ev Event
		if json.Unmarshal(data, &ev) == nil {
			requireSameEncode(t, ev)
		}
		requireSameEncode(t, eventFrom(data))
	})
}

// eventFrom builds an event from raw fuzz bytes: '|'-separated pieces become its strings.
func eventFrom(data []byte) Event {
	parts := strings.Split(string(data), "|")
	s := func(i int) string { return parts[i%len(parts)] }
	var num [16]byte
	copy(num[:], data)
	sec := int64(binary.LittleEndian.Uint64(num[:8]))
	zone := time.UTC
	if data := num[8]; data%3 != 0 {
		zone = time.FixedZone(s(1), (int(int8(num[9]))*3600+int(num[10])*60)*int(data%3))
	}
	ev := Event{
		ID: s(0), SchemaVersion: int(int16(sec)), ObservedAt: time.Unix(sec%(10_000*365*86400), int64(num[11])*3_900_000).In(zone),
		CollectorID: s(1), Source: Source(s(2)), Transport: s(3), ProtocolVersion: s(4), AgentID: s(5), AgentSource: s(6),
		DeclaredAgent: s(7), ClientName: s(8), ClientVersion: s(9), ServerID: s(10), SessionID: s(11), JSONRPCID: s(12),
		Direction: Direction(s(13)), Kind: Kind(s(14)), Method: s(15), Target: s(16), Status: Status(s(17)),
		ErrorCode: int(int32(sec)), LatencyMicros: sec, RequestBytes: len(parts), ResponseBytes: -len(data),
		ArgsShape: s(18), ArgsHash: s(19), ResultHash: s(20), TraceID: s(21), SpanID: s(22),
	}
	if len(parts) > 2 {
		ev.Content = &Content{Arguments: s(23), Result: s(24), Truncated: num[12]&1 != 0, Captured: num[12]&2 != 0}
	}
	if len(parts) > 4 {
		ev.Labels = map[string]string{}
		for i := 0; i < len(parts)/2 && i < 20; i++ {
			ev.Labels[s(2*i)] = s(2*i + 1)
		}
	}
	for i := 0; i < int(num[13]%4); i++ {
		ev.Flags = append(ev.Flags, Flag{Type: s(i), Severity: Severity(s(i + 1)), Path: s(i + 2), Evidence: s(i + 3)})
	}
	return ev
}

// The codec side by side with encoding/json on an event with about 1 KiB of content, as the
// enricher decodes and encodes it.
func benchEvent(b *testing.B) []byte {
	result, err := json.Marshal(map[string]any{"content": []map[string]string{{"type": "text",
		"text": strings.Repeat("Each partition is consumed by one member of the group at a time; offsets are committed <after> the batch is durable. ", 8)}}})
	require.NoError(b, err)
	ev := Event{
		ID: "01a19f29-127a-72b5-be27-000000000001", SchemaVersion: EventSchemaVersion,
		ObservedAt: time.Date(2026, 11, 3, 10, 0, 1, 123456789, time.UTC), CollectorID: "tap-1", Source: SourceHTTPTap,
		Transport: "streamable_http", ProtocolVersion: "2025-11-25", AgentID: "billing-reconciler", AgentSource: "header",
		ServerID: "postgres-prod", SessionID: "s-1", JSONRPCID: "17", Direction: ClientToServer, Kind: KindRequest,
		Method: "tools/call", Target: "query", Status: StatusOK, LatencyMicros: 1200, RequestBytes: 180, ResponseBytes: 1100,
		ArgsShape: `{"query":"string"}`, ArgsHash: "5ef419f0d2d2a63bdb10e60c443e06b8",
		Content: &Content{Arguments: `{"query":"SELECT id, name FROM customers WHERE region = 'eu' LIMIT 20"}`, Result: string(result)},
		Labels:  map[string]string{"agent.team": "finance", "agent.environment": "prod", "tags": "pii,prod"},
		Flags:   []Flag{{Type: "pii", Severity: SeverityLow, Path: "$.result.content[0].text", Evidence: "email, length 21"}},
	}
	raw, err := json.Marshal(ev)
	require.NoError(b, err)
	return raw
}

func BenchmarkEventCodec(b *testing.B) {
	raw := benchEvent(b)
	var ev Event
	require.NoError(b, DecodeEvent(raw, &ev))
	b.Run("decode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var ev Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/codec", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var ev Event
			if err := DecodeEvent(raw, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/codec", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := ev.AppendJSON(make([]byte, 0, 2*len(raw))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
