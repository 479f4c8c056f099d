package otlp

import (
	"context"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// exportMethod is the gRPC method OTLP trace exporters call.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// traceServer is what traceServiceDesc serves; Receiver implements it.
type traceServer interface {
	exportGRPC(ctx context.Context, dec func(any) error) (proto.Message, error)
}

// traceServiceDesc is opentelemetry.proto.collector.trace.v1.TraceService, written out instead
// of generated (see decode.go for why).
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*traceServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			return srv.(traceServer).exportGRPC(ctx, dec)
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// exportGRPC checks the sender's token before decoding the request.
func (r *Receiver) exportGRPC(ctx context.Context, dec func(any) error) (proto.Message, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if !r.authorized(md.Get("authorization")...) {
		r.metrics.requests.WithLabelValues("grpc", outcomeUnauthenticated).Inc()
		return nil, status.Error(codes.Unauthenticated, "missing or invalid bearer token")
	}
	var td tracepb.TracesData
	if err := dec(&td); err != nil {
		// gRPC has already answered Internal ("failed to unmarshal"), as for generated services.
		r.metrics.requests.WithLabelValues("grpc", outcomeBadRequest).Inc()
		return nil, err
	}
	r.metrics.requests.WithLabelValues("grpc", outcomeOK).Inc()
	return newResponse(r.export(&td, "grpc")), nil
}
