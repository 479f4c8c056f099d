package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The export request is read as tracepb.TracesData, which is ExportTraceServiceRequest on the
// wire (repeated ResourceSpans resource_spans = 1) and in JSON ("resourceSpans"). The generated
// collector/trace/v1 package would do too, but it pulls in grpc-gateway, which this module does
// not require.

// decodeProto reads a binary protobuf export request.
func decodeProto(data []byte) (*tracepb.TracesData, error) {
	var td tracepb.TracesData
	if err := proto.Unmarshal(data, &td); err != nil {
		return nil, fmt.Errorf("cannot decode OTLP protobuf request: %w", err)
	}
	return &td, nil
}

// decodeJSON reads an OTLP/JSON export request. OTLP/JSON differs from the protobuf JSON
// mapping in one way that matters: trace and span ids are hex, not base64. They are rewritten
// before protojson reads the document; unknown fields are ignored, as the spec asks.
func decodeJSON(data []byte) (*tracepb.TracesData, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("cannot decode OTLP JSON request: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("cannot decode OTLP JSON request: trailing data after the document")
	}
	for _, rs := range list(doc, "resourceSpans", "resource_spans") {
		for _, ss := range list(rs, "scopeSpans", "scope_spans") {
			for _, sp := range list(ss, "spans") {
				hexIDs(sp, "traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
				for _, l := range list(sp, "links") {
					hexIDs(l, "traceId", "trace_id", "spanId", "span_id")
				}
			}
		}
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("cannot decode OTLP JSON request: %w", err)
	}
	var td tracepb.TracesData
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(fixed, &td); err != nil {
		return nil, fmt.Errorf("cannot decode OTLP JSON request: %w", err)
	}
	return &td, nil
}

// list returns the array under the first of keys present in obj, when obj is an object.
func list(obj any, keys ...string) []any {
	m, ok := obj.(map[string]any)
	if !ok {
		return nil
	}
	for _, k := range keys {
		if l, ok := m[k].([]any); ok {
			return l
		}
	}
	return nil
}

// hexIDs rewrites the hex string values under keys of obj as base64. A value that is not hex is
// left alone for protojson to judge (some senders do send base64).
func hexIDs(obj any, keys ...string) {
	m, ok := obj.(map[string]any)
	if !ok {
		return
	}
	for _, k := range keys {
		s, ok := m[k].(string)
		if !ok || s == "" {
			continue
		}
		if b, err := hex.DecodeString(s); err == nil {
			m[k] = base64.StdEncoding.EncodeToString(b)
		}
	}
}

// responseDesc describes ExportTraceServiceResponse (and its ExportTracePartialSuccess), built
// here for the same reason the request is read as TracesData. It is not registered globally.
var responseDesc = func() protoreflect.MessageDescriptor {
	const pkg = "opentelemetry.proto.collector.trace.v1"
	field := func(name, json string, num int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), JsonName: proto.String(json), Number: proto.Int32(num),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: typ.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("mcpwatch/collector/otlp/trace_service_response.proto"),
		Package: proto.String(pkg),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("ExportTraceServiceResponse"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("partial_success", "partialSuccess", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, "."+pkg+".ExportTracePartialSuccess"),
			},
		}, {
			Name: proto.String("ExportTracePartialSuccess"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("rejected_spans", "rejectedSpans", 1, descriptorpb.FieldDescriptorProto_TYPE_INT64, ""),
				field("error_message", "errorMessage", 2, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
			},
		}},
	}, nil)
	if err != nil {
		panic("BUG: cannot build the ExportTraceServiceResponse descriptor: " + err.Error())
	}
	return fd.Messages().ByName("ExportTraceServiceResponse")
}()

// newResponse returns an ExportTraceServiceResponse; with rejected > 0 it reports a partial
// success.
func newResponse(rejected int, msg string) *dynamicpb.Message {
	resp := dynamicpb.NewMessage(responseDesc)
	if rejected == 0 {
		return resp
	}
	psField := responseDesc.Fields().ByName("partial_success")
	ps := dynamicpb.NewMessage(psField.Message())
	ps.Set(psField.Message().Fields().ByName("rejected_spans"), protoreflect.ValueOfInt64(int64(rejected)))
	ps.Set(psField.Message().Fields().ByName("error_message"), protoreflect.ValueOfString(msg))
	resp.Set(psField, protoreflect.ValueOfMessage(ps))
	return resp
}
