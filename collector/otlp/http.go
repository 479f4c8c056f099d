package otlp

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TracesPath is where OTLP/HTTP exporters send traces.
const TracesPath = "/v1/traces"

// encoding is an OTLP/HTTP body encoding; the response uses the request's.
type encoding int

const (
	encUnknown encoding = iota
	encProto
	encJSON
)

func (e encoding) contentType() string {
	if e == encJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

func (e encoding) marshal(m proto.Message) ([]byte, error) {
	if e == encJSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

func (r *Receiver) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(TracesPath, r.serveTraces)
	return mux
}

// serveTraces is POST /v1/traces: protobuf or JSON, optionally gzip-compressed.
func (r *Receiver) serveTraces(w http.ResponseWriter, req *http.Request) {
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	enc := encUnknown
	switch mediaType {
	case "application/x-protobuf":
		enc = encProto
	case "application/json":
		enc = encJSON
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.httpError(w, enc, http.StatusMethodNotAllowed, codes.Unimplemented, "only POST is supported", "")
		return
	}
	if !r.authorized(req.Header.Values("Authorization")...) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch otlp"`)
		r.httpError(w, enc, http.StatusUnauthorized, codes.Unauthenticated, "missing or invalid bearer token", outcomeUnauthenticated)
		return
	}
	if enc == encUnknown {
		r.httpError(w, enc, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			fmt.Sprintf("unsupported content type %q: want application/x-protobuf or application/json", req.Header.Get("Content-Type")), outcomeUnsupported)
		return
	}
	data, code, err := r.readBody(w, req)
	if err != nil {
		outcome := outcomeBadRequest
		switch code {
		case http.StatusRequestEntityTooLarge:
			outcome = outcomeTooLarge
		case http.StatusUnsupportedMediaType:
			outcome = outcomeUnsupported
		}
		r.httpError(w, enc, code, codes.InvalidArgument, err.Error(), outcome)
		return
	}
	var td *tracepb.TracesData
	if enc == encJSON {
		td, err = decodeJSON(data)
	} else {
		td, err = decodeProto(data)
	}
	if err != nil {
		r.httpError(w, enc, http.StatusBadRequest, codes.InvalidArgument, err.Error(), outcomeBadRequest)
		return
	}
	r.metrics.requests.WithLabelValues("http", outcomeOK).Inc()
	body, err := enc.marshal(newResponse(r.export(td, "http")))
	if err != nil {
		panic("BUG: cannot encode an ExportTraceServiceResponse: " + err.Error())
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// readBody reads the request body, decompressed, up to MaxMessageBytes; on failure it returns the
// HTTP status to answer with.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, int, error) {
	max := int64(r.cfg.MaxMessageBytes)
	var body io.Reader = http.MaxBytesReader(w, req.Body, max)
	switch ce := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, statusFor(err), fmt.Errorf("cannot read gzip request body: %w", err)
		}
		defer func() { _ = gz.Close() }()
		// The limit applies to what the body inflates to as well.
		body = io.LimitReader(gz, max+1)
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported content encoding %q: want gzip or none", ce)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, statusFor(err), fmt.Errorf("cannot read request body: %w", err)
	}
	if int64(len(data)) > max {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body inflates to more than %d bytes", max)
	}
	return data, 0, nil
}

func statusFor(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// httpError answers with a google.rpc.Status in the request's encoding, as OTLP/HTTP asks, or in
// plain text when the request's encoding is not OTLP's.
func (r *Receiver) httpError(w http.ResponseWriter, enc encoding, httpCode int, code codes.Code, msg, outcome string) {
	if outcome != "" {
		r.metrics.requests.WithLabelValues("http", outcome).Inc()
	}
	if enc == encUnknown {
		http.Error(w, msg, httpCode)
		return
	}
	body, err := enc.marshal(status.New(code, msg).Proto())
	if err != nil {
		http.Error(w, msg, httpCode)
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(httpCode)
	_, _ = w.Write(body)
}
