package otlp

import (
	"encoding/base64"
	"encoding/hex"
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
// mapping in one way that matters here: trace and span ids are hex, not base64. Hex digits are
// base64 digits too, so protojson reads a 32-digit hex trace id as 24 bytes (and a 16-digit span
// id as 12); fixHexIDs turns those back into the 16 (8) bytes the hex says. Real base64 ids are
// 24 (12) characters long and decode to 16 (8) bytes, so the two cannot be confused. Unknown
// fields are ignored, as the spec asks.
func decodeJSON(data []byte) (*tracepb.TracesData, error) {
	var td tracepb.TracesData
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &td); err != nil {
		return nil, fmt.Errorf("cannot decode OTLP JSON request: %w", err)
	}
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				sp.TraceId = fixHexID(sp.TraceId, 16)
				sp.SpanId = fixHexID(sp.SpanId, 8)
				sp.ParentSpanId = fixHexID(sp.ParentSpanId, 8)
			}
		}
	}
	return &td, nil
}

// fixHexID returns the n-byte id whose hex protojson took for base64, or id unchanged.
func fixHexID(id []byte, n int) []byte {
	if len(id) != n*3/2 {
		return id
	}
	b, err := hex.DecodeString(base64.StdEncoding.EncodeToString(id))
	if err != nil {
		return id
	}
	return b
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
