package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// validatorFor picks the validator and Go type by the sample's file name prefix.
func validatorFor(t *testing.T, path string) (validate func([]byte) error, newValue func() any) {
	t.Helper()
	switch base := filepath.Base(path); {
	case strings.HasPrefix(base, "event."):
		return ValidateEventJSON, func() any { return new(Event) }
	case strings.HasPrefix(base, "anomaly."):
		return ValidateAnomalyJSON, func() any { return new(Anomaly) }
	default:
		t.Fatalf("%s: sample names must start with event. or anomaly.", path)
		return nil, nil
	}
}

func goldenFiles(t *testing.T, pattern string, atLeast int) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), atLeast, "too few samples match %s", pattern)
	return files
}

func TestGoldenSamplesValidate(t *testing.T) {
	for _, path := range goldenFiles(t, "testdata/*.json", 10) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			validate, _ := validatorFor(t, path)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, validate(data))
		})
	}
}

// Every invalid sample has a .err file next to it holding the message fragment its (single)
// violation must produce.
func TestInvalidSamplesFail(t *testing.T) {
	for _, path := range goldenFiles(t, "testdata/invalid/*.json", 8) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			validate, _ := validatorFor(t, path)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			want, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".err")
			require.NoError(t, err, "every invalid sample needs a .err file")

			err = validate(data)
			require.Error(t, err)
			require.ErrorContains(t, err, strings.TrimSpace(string(want)))
			// One defect per sample, so the sample tests what its name says.
			require.NotContains(t, err.Error(), "; ", "sample has more than one violation")
		})
	}
}

// Golden JSON decodes into the Go type without unknown fields and encodes back to the same JSON:
// the schema, the samples and the Go types cannot drift apart.
func TestGoldenSamplesRoundTrip(t *testing.T) {
	for _, path := range goldenFiles(t, "testdata/*.json", 10) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, newValue := validatorFor(t, path)
			data, err := os.ReadFile(path)
			require.NoError(t, err)

			v := newValue()
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(v))
			out, err := json.Marshal(v)
			require.NoError(t, err)
			require.JSONEq(t, string(data), string(out))
		})
	}
}

var (
	ts0 = time.Date(2026, 11, 3, 2, 7, 11, 482113000, time.UTC)
	ts1 = ts0.Add(90 * time.Second)
)

func fullEvent() Event {
	return Event{
		ID:              "01a19f29-127a-72b5-be27-78218b5a2e0c",
		SchemaVersion:   EventSchemaVersion,
		ObservedAt:      ts0,
		CollectorID:     "tap-1",
		Source:          SourceHTTPTap,
		Transport:       "streamable_http",
		ProtocolVersion: "2025-11-25",
		AgentID:         "billing-bot",
		AgentSource:     "header",
		DeclaredAgent:   "billing-bot",
		ClientName:      "claude-code",
		ClientVersion:   "2.1.4",
		ServerID:        "filesystem",
		SessionID:       "4c0f5c1e-9b7d-4e0f-8a2b-6d3c1e5f7a9b",
		JSONRPCID:       "0",
		Direction:       ClientToServer,
		Kind:            KindRequest,
		Method:          "tools/call",
		Target:          "read_file",
		Status:          StatusError,
		ErrorCode:       -32602,
		LatencyMicros:   1234,
		RequestBytes:    100,
		ResponseBytes:   200,
		ArgsShape:       `{"path":"string"}`,
		ArgsHash:        "5ef419f0d2d2a63bdb10e60c443e06b8",
		ResultHash:      "8b5de9925ab9b52ffba2296f76d90061",
		TraceID:         "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:          "00f067aa0ba902b7",
		Content: &Content{
			Arguments: `{"path":"/srv/billing/invoices/2026-11.csv","token":"***"}`,
			Result:    `{"content":[{"type":"text","text":"invoice_id,amount\n`,
			Truncated: true,
			Captured:  true,
		},
		Labels: map[string]string{"team": "billing"},
		Flags:  []Flag{{Type: "secret", Severity: SeverityCritical, Path: "$.arguments.token", Evidence: "aws key id pattern, 20 chars"}},
	}
}

func minimalEvent() Event {
	return Event{
		ID:            "01a19f29-127a-72b5-be27-78218b5a2e0c",
		SchemaVersion: EventSchemaVersion,
		ObservedAt:    ts0,
		CollectorID:   "tap-1",
		Source:        SourceStdioTap,
		AgentID:       "unknown",
		AgentSource:   "unknown",
		Direction:     ServerToClient,
		Kind:          KindUnparsed,
		Status:        StatusMalformed,
	}
}

func fullAnomaly() Anomaly {
	return Anomaly{
		ID:            "an-1",
		SchemaVersion: AnomalySchemaVersion,
		Time:          ts1,
		AgentID:       "billing-bot",
		SessionID:     "s-1",
		ServerID:      "filesystem",
		Kind:          "new_tool",
		Subject:       "delete_file",
		Score:         100,
		Severity:      SeverityForScore(100),
		Title:         "billing-bot called delete_file for the first time",
		Explanation: Explanation{
			Summary:     "first call of delete_file",
			Observed:    "1 call",
			Typical:     "never",
			Model:       "first_seen_tool",
			Probability: 1,
		},
		EvidenceEventIDs: []string{"01a19f29-127a-72b5-be27-78218b5a2e0c"},
		FirstSeen:        ts0,
		LastSeen:         ts1,
		Count:            2,
		Learning:         true,
		Tags:             []string{"destructive", "prod"},
	}
}

func minimalAnomaly() Anomaly {
	return Anomaly{
		ID:            "an-1",
		SchemaVersion: AnomalySchemaVersion,
		Time:          ts1,
		AgentID:       "billing-bot",
		Kind:          "new_tool",
		Severity:      SeverityInfo,
		Title:         "t",
		FirstSeen:     ts0,
		LastSeen:      ts0,
		Count:         1,
	}
}

func TestGoValuesValidate(t *testing.T) {
	tests := []struct {
		name     string
		value    any
		validate func([]byte) error
	}{
		{"full event", fullEvent(), ValidateEventJSON},
		{"minimal event", minimalEvent(), ValidateEventJSON},
		{"full event pointer", ptr(fullEvent()), ValidateEventJSON},
		{"full anomaly", fullAnomaly(), ValidateAnomalyJSON},
		{"minimal anomaly (nil evidence)", minimalAnomaly(), ValidateAnomalyJSON},
		{"minimal anomaly pointer", ptr(minimalAnomaly()), ValidateAnomalyJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.value)
			require.NoError(t, err)
			require.NoError(t, tt.validate(data), "%s", data)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// The full values set every field, so their JSON must carry every schema property; otherwise the
// test above would not exercise them all.
func TestFullValuesSetEveryProperty(t *testing.T) {
	for _, tt := range []struct {
		value  any
		schema []byte
	}{
		{fullEvent(), eventSchemaJSON},
		{fullAnomaly(), anomalySchemaJSON},
	} {
		data, err := json.Marshal(tt.value)
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(data, &got))
		props, _ := schemaObject(t, tt.schema, "")
		require.Equal(t, props, sortedKeys(got))
	}
}

func TestValidateErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/event.tools_call_ok.json")
	require.NoError(t, err)
	tests := []struct {
		name     string
		data     string
		validate func([]byte) error
		want     []string
	}{
		{"not json", "{", ValidateEventJSON, []string{"invalid event v1: not a JSON document"}},
		{"trailing data", string(good) + "{}", ValidateEventJSON, []string{"not a JSON document"}},
		{"array", "[]", ValidateAnomalyJSON, []string{"invalid anomaly v1: (root): got array, want object"}},
		{"empty object lists every missing field", "{}", ValidateEventJSON, []string{
			"invalid event v1: (root): missing properties 'event_id', 'schema_version'", "'response_bytes'",
		}},
		{"several violations", strings.Replace(strings.Replace(string(good),
			`"status": "ok"`, `"status": "OK"`, 1), `"latency_us": 18342`, `"latency_us": -1`, 1),
			ValidateEventJSON, []string{"/status: value must be one of", "; ", "/latency_us: minimum: got -1, want 0"}},
		{"event is not an anomaly", string(good), ValidateAnomalyJSON, []string{"missing properties 'anomaly_id'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.validate([]byte(tt.data))
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// Every JSON field of the Go types is a schema property and vice versa; the schema's required
// fields are exactly those without omitempty.
func TestSchemaMatchesGoTypes(t *testing.T) {
	tests := []struct {
		goType reflect.Type
		schema []byte
		def    string // "" for the top-level object, else the $defs entry
	}{
		{reflect.TypeFor[Event](), eventSchemaJSON, ""},
		{reflect.TypeFor[Flag](), eventSchemaJSON, "flag"},
		{reflect.TypeFor[Content](), eventSchemaJSON, "content"},
		{reflect.TypeFor[Anomaly](), anomalySchemaJSON, ""},
		{reflect.TypeFor[Explanation](), anomalySchemaJSON, "explanation"},
	}
	for _, tt := range tests {
		t.Run(tt.goType.Name(), func(t *testing.T) {
			var fields, required []string
			for f := range tt.goType.Fields() {
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				require.NotEmpty(t, name, "field %s has no json name", f.Name)
				fields = append(fields, name)
				if !slices.Contains(strings.Split(opts, ","), "omitempty") {
					required = append(required, name)
				}
			}
			sort.Strings(fields)
			sort.Strings(required)

			props, req := schemaObject(t, tt.schema, tt.def)
			require.Equal(t, fields, props, "schema properties vs Go json fields")
			require.Equal(t, required, req, "schema required vs Go fields without omitempty")
		})
	}
}

// The enums in the schemas list exactly the Go constants.
func TestSchemaEnumsMatchGoConstants(t *testing.T) {
	severities := []any{SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
	tests := []struct {
		schema []byte
		ptr    []string
		want   []any
	}{
		{eventSchemaJSON, []string{"properties", "source", "enum"}, []any{SourceHTTPTap, SourceStdioTap, SourceOTLP}},
		{eventSchemaJSON, []string{"properties", "direction", "enum"}, []any{ClientToServer, ServerToClient}},
		{eventSchemaJSON, []string{"properties", "kind", "enum"}, []any{KindRequest, KindNotification, KindUnparsed}},
		{eventSchemaJSON, []string{"properties", "status", "enum"}, []any{StatusOK, StatusError, StatusToolError, StatusTimeout, StatusMalformed}},
		{eventSchemaJSON, []string{"$defs", "severity", "enum"}, severities},
		{anomalySchemaJSON, []string{"properties", "severity", "enum"}, severities},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.ptr, "/"), func(t *testing.T) {
			var want []string
			for _, v := range tt.want {
				want = append(want, reflect.ValueOf(v).String())
			}
			var got []string
			for _, v := range lookup(t, tt.schema, tt.ptr...).([]any) {
				got = append(got, v.(string))
			}
			require.Equal(t, want, got)
		})
	}
	// Severity order in the schema is the Rank order.
	for i, s := range severities {
		require.Equal(t, i, s.(Severity).Rank())
	}
}

func TestSchemaIDsAndEmbedding(t *testing.T) {
	require.Equal(t, EventSchemaID, lookup(t, EventSchemaJSON(), "$id"))
	require.Equal(t, AnomalySchemaID, lookup(t, AnomalySchemaJSON(), "$id"))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", lookup(t, EventSchemaJSON(), "$schema"))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", lookup(t, AnomalySchemaJSON(), "$schema"))
	// Callers get a copy; the validator's schema cannot be changed through it.
	b := EventSchemaJSON()
	b[0] = 'x'
	require.Equal(t, byte('{'), EventSchemaJSON()[0])

	// Every property in both schemas is documented for the people reading it.
	for _, doc := range [][]byte{eventSchemaJSON, anomalySchemaJSON} {
		var root map[string]any
		require.NoError(t, json.Unmarshal(doc, &root))
		objs := []map[string]any{root}
		for _, d := range root["$defs"].(map[string]any) {
			objs = append(objs, d.(map[string]any))
		}
		for _, o := range objs {
			props, _ := o["properties"].(map[string]any)
			for name, p := range props {
				p := p.(map[string]any)
				if _, isRef := p["$ref"]; isRef {
					continue
				}
				require.NotEmpty(t, p["description"], "property %s has no description", name)
			}
		}
	}
}

// schemaObject returns the sorted property names and required list of the schema's top-level
// object (def == "") or of $defs[def].
func schemaObject(t *testing.T, schema []byte, def string) (props, required []string) {
	t.Helper()
	var obj map[string]any
	if def == "" {
		obj = lookup(t, schema).(map[string]any)
	} else {
		obj = lookup(t, schema, "$defs", def).(map[string]any)
	}
	require.Equal(t, false, obj["additionalProperties"], "additionalProperties must be false")
	props = sortedKeys(obj["properties"].(map[string]any))
	for _, r := range obj["required"].([]any) {
		required = append(required, r.(string))
	}
	sort.Strings(required)
	return props, required
}

func lookup(t *testing.T, schema []byte, path ...string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(schema, &v))
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%s is not an object", p)
		v, ok = m[p]
		require.True(t, ok, "no %s in schema", p)
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Stages validate from many goroutines; the compiled schemas are shared (run with -race).
func TestValidateConcurrently(t *testing.T) {
	good, err := os.ReadFile("testdata/event.enriched.json")
	require.NoError(t, err)
	bad, err := os.ReadFile("testdata/invalid/event.bad_status.json")
	require.NoError(t, err)
	errs := make(chan error, 16)
	for i := range 8 {
		go func() {
			if err := ValidateEventJSON(good); err != nil {
				errs <- err
				return
			}
			if err := ValidateEventJSON(bad); err == nil {
				errs <- fmt.Errorf("goroutine %d: invalid event passed", i)
				return
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}
