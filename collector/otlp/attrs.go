package otlp

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// attrMap is a span's or a resource's attributes by key.
type attrMap map[string]*commonpb.AnyValue

func newAttrMap(kvs []*commonpb.KeyValue) attrMap {
	m := make(attrMap, len(kvs))
	for _, kv := range kvs {
		if kv.GetValue() != nil {
			m[kv.GetKey()] = kv.GetValue()
		}
	}
	return m
}

// str returns the first of keys whose value renders as a non-empty string.
func (m attrMap) str(keys ...string) string {
	for _, k := range keys {
		if s := scalarString(m[k]); s != "" {
			return s
		}
	}
	return ""
}

// has reports whether any of keys is set.
func (m attrMap) has(keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// scalarString renders a scalar value as text; emitters disagree on whether ports, ids and
// codes are strings or numbers. Arrays, maps and bytes render as "".
func scalarString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return ""
}

// jsonText returns a value meant to hold JSON (tool arguments, results) as JSON text: a string
// value is taken to be JSON already; structured values are converted. It returns nil when there
// is nothing.
func jsonText(v *commonpb.AnyValue) []byte {
	switch x := v.GetValue().(type) {
	case nil:
		return nil
	case *commonpb.AnyValue_StringValue:
		return []byte(x.StringValue)
	default:
		b, err := json.Marshal(anyValue(v))
		if err != nil {
			return nil
		}
		return b
	}
}

// anyValue converts an OTLP value into what encoding/json marshals the same way.
func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyValue(kv.GetValue())
		}
		return out
	}
	return nil
}
