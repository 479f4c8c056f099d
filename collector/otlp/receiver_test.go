package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// startReceiver starts a receiver on free loopback ports and shuts it down when the test ends.
func startReceiver(t testing.TB, cfg Config) (*Receiver, *recorder, *prometheus.Registry) {
	t.Helper()
	cfg.Enabled = true
	if cfg.GRPC.Listen == "" {
		cfg.GRPC.Listen = "127.0.0.1:0"
	}
	if cfg.HTTP.Listen == "" {
		cfg.HTTP.Listen = "127.0.0.1:0"
	}
	if cfg.CollectorID == "" {
		cfg.CollectorID = testCollectorID
	}
	set, reg := testSettings(t)
	rec := &recorder{}
	r, err := New(cfg, rec, set)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, rec, reg
}

func dialGRPC(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// exportGRPC calls TraceService/Export as an OTLP exporter does and returns the partial success.
func exportGRPC(ctx context.Context, conn *grpc.ClientConn, td *tracepb.TracesData, opts ...grpc.CallOption) (rejected int64, msg string, err error) {
	resp := dynamicpb.NewMessage(responseDesc)
	if err := conn.Invoke(ctx, exportMethod, td, resp, opts...); err != nil {
		return 0, "", err
	}
	return partialSuccess(resp)
}

// partialSuccess reads an ExportTraceServiceResponse from its wire form, without the
// receiver's own descriptor.
func partialSuccess(m proto.Message) (rejected int64, msg string, err error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return 0, "", err
	}
	return parsePartialSuccess(b)
}

func parsePartialSuccess(b []byte) (rejected int64, msg string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return 0, "", fmt.Errorf("unexpected field %d type %d in ExportTraceServiceResponse", num, typ)
		}
		b = b[n:]
		ps, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, "", protowire.ParseError(n)
		}
		b = b[n:]
		for len(ps) > 0 {
			num, typ, n := protowire.ConsumeTag(ps)
			if n < 0 {
				return 0, "", protowire.ParseError(n)
			}
			ps = ps[n:]
			switch {
			case num == 1 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(ps)
				rejected, ps = int64(v), ps[n:]
			case num == 2 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(ps)
				msg, ps = string(v), ps[n:]
			default:
				return 0, "", fmt.Errorf("unexpected field %d in ExportTracePartialSuccess", num)
			}
		}
	}
	return rejected, msg, nil
}

type httpBody struct {
	contentType string
	gzip        bool
	data        []byte
	header      http.Header
}

func postHTTP(t testing.TB, client *http.Client, url string, b httpBody) (*http.Response, []byte) {
	t.Helper()
	data := b.data
	if b.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write(data)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		data = buf.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Content-Type", b.contentType)
	if b.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func fixtureBytes(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	return data
}

// TestExportEndToEnd sends every fixture over every transport and encoding and checks the
// events are exactly the ones the fixture table expects.
func TestExportEndToEnd(t *testing.T) {
	// The fixtures' events are the normalised spans; content is TestPayloadContent's.
	off := 0
	r, rec, reg := startReceiver(t, Config{Capture: capture.Config{InspectionMaxBytes: &off, DefinitionsMaxBytes: &off}})
	conn := dialGRPC(t, r.GRPCAddr())
	url := "http://" + r.HTTPAddr() + TracesPath

	send := map[string]func(t *testing.T, name string){
		"grpc": func(t *testing.T, name string) {
			rejected, _, err := exportGRPC(context.Background(), conn, loadFixture(t, name))
			require.NoError(t, err)
			require.Zero(t, rejected)
		},
		"grpc gzip": func(t *testing.T, name string) {
			rejected, _, err := exportGRPC(context.Background(), conn, loadFixture(t, name), grpc.UseCompressor(grpcgzip.Name))
			require.NoError(t, err)
			require.Zero(t, rejected)
		},
	}
	for _, enc := range []struct {
		name, contentType string
		gzip              bool
	}{
		{"http protobuf", "application/x-protobuf", false},
		{"http protobuf gzip", "application/x-protobuf", true},
		{"http json", "application/json", false},
		{"http json gzip", "application/json; charset=utf-8", true},
	} {
		send[enc.name] = func(t *testing.T, name string) {
			data := fixtureBytes(t, name) // OTLP/JSON as written, hex ids and all
			if strings.HasSuffix(enc.contentType, "protobuf") {
				var err error
				data, err = proto.Marshal(loadFixture(t, name))
				require.NoError(t, err)
			}
			resp, body := postHTTP(t, nil, url, httpBody{contentType: enc.contentType, gzip: enc.gzip, data: data})
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			if strings.HasPrefix(enc.contentType, "application/json") {
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				require.JSONEq(t, `{}`, string(body), "a full success has no partial_success")
			} else {
				require.Equal(t, "application/x-protobuf", resp.Header.Get("Content-Type"))
				rejected, _, err := parsePartialSuccess(body)
				require.NoError(t, err)
				require.Zero(t, rejected)
			}
		}
	}

	spans := 0
	stitched := map[string]string{} // fixture/event: the session stitched for it the first time
	for transport, sendFn := range send {
		for _, tc := range fixtureCases() {
			t.Run(transport+"/"+tc.fixture, func(t *testing.T) {
				sendFn(t, tc.fixture)
				got := rec.take()
				require.Len(t, got, len(tc.want))
				for i := range got {
					requireValidEvent(t, got[i])
					got[i].ID = ""
					if tc.want[i].SessionID == "" {
						// Stitched (TestStitchedSessions has the rule): the same spans, the same
						// session, whichever transport brought them.
						id := fmt.Sprintf("%s/%d", tc.fixture, i)
						requireStitchedID(t, got[i].SessionID)
						if stitched[id] == "" {
							stitched[id] = got[i].SessionID
						}
						require.Equal(t, stitched[id], got[i].SessionID)
						got[i].SessionID = ""
					}
				}
				if len(tc.want) > 0 {
					require.Equal(t, tc.want, got)
				}
			})
			spans += len(tc.want) + tc.ignored
		}
	}
	perTransport := spans / len(send)
	require.Equal(t, float64(2*perTransport), testutil.ToFloat64(r.metrics.received.WithLabelValues("grpc")))
	require.Equal(t, float64(4*perTransport), testutil.ToFloat64(r.metrics.received.WithLabelValues("http")))
	require.Equal(t, float64(len(send)*9), testutil.ToFloat64(r.metrics.events.WithLabelValues(dialectSemconv)),
		"semconv spans: 4 + 2 + 2 client/server/stdio, 1 mark3labs")
	require.Equal(t, float64(len(send)*(1+1+2+5)), testutil.ToFloat64(r.metrics.ignored))
	require.Equal(t, float64(2*9), testutil.ToFloat64(r.metrics.requests.WithLabelValues("grpc", outcomeOK)))
	n, err := testutil.GatherAndCount(reg, "mcpwatch_otlp_spans_rejected_total")
	require.NoError(t, err)
	require.Zero(t, n, "nothing rejected")
}

// partialRequest holds one usable MCP span, two MCP spans with broken ids or times, and one span
// that is not MCP.
const partialRequest = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"agent"}}]},
 "scopeSpans":[{"spans":[
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"tools/call ok","kind":"SPAN_KIND_CLIENT",
   "startTimeUnixNano":"1793613600000000000","endTimeUnixNano":"1793613600001000000",
   "attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}}]},
  {"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b175","name":"tools/call zero-trace",
   "startTimeUnixNano":"1793613600000000000","endTimeUnixNano":"1793613600001000000",
   "attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}}]},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b176","name":"tools/call backwards",
   "startTimeUnixNano":"1793613600001000000","endTimeUnixNano":"1793613600000000000"},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b177","name":"GET /",
   "startTimeUnixNano":"1793613600000000000","endTimeUnixNano":"1793613600001000000"}
 ]}]}]}`

func TestPartialSuccess(t *testing.T) {
	r, rec, _ := startReceiver(t, Config{})
	td, err := decodeJSON([]byte(partialRequest))
	require.NoError(t, err)
	const wantMsg = "mcpwatch could not use some MCP spans (invalid_time: 1, invalid_trace_id: 1)"

	rejected, msg, err := exportGRPC(context.Background(), dialGRPC(t, r.GRPCAddr()), td)
	require.NoError(t, err)
	require.EqualValues(t, 2, rejected)
	require.Equal(t, wantMsg, msg)
	got := rec.take()
	require.Len(t, got, 1)
	require.Equal(t, "ok", got[0].Target)

	url := "http://" + r.HTTPAddr() + TracesPath
	resp, body := postHTTP(t, nil, url, httpBody{contentType: "application/json", data: []byte(partialRequest)})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"partialSuccess":{"rejectedSpans":"2","errorMessage":"`+wantMsg+`"}}`, string(body))

	pb, err := proto.Marshal(td)
	require.NoError(t, err)
	resp, body = postHTTP(t, nil, url, httpBody{contentType: "application/x-protobuf", data: pb})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rejected, msg, err = parsePartialSuccess(body)
	require.NoError(t, err)
	require.EqualValues(t, 2, rejected)
	require.Equal(t, wantMsg, msg)

	require.Len(t, rec.take(), 2)
	require.Equal(t, 3.0, testutil.ToFloat64(r.metrics.rejected.WithLabelValues(rejectBadTime)))
	require.Equal(t, 3.0, testutil.ToFloat64(r.metrics.rejected.WithLabelValues(rejectBadTraceID)))
	require.Equal(t, 3.0, testutil.ToFloat64(r.metrics.ignored))
}

func TestHTTPBadInput(t *testing.T) {
	r, rec, _ := startReceiver(t, Config{MaxMessageBytes: 64 << 10})
	url := "http://" + r.HTTPAddr() + TracesPath
	var bomb bytes.Buffer // 1 MiB of zeros inflates past the 64 KiB limit
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 1<<20))
	_ = zw.Close()

	for _, tc := range []struct {
		name        string
		method      string
		path        string
		body        httpBody
		status      int
		contentType string // of the answer
		msg         string // in the answer
	}{
		{name: "garbage protobuf", body: httpBody{contentType: "application/x-protobuf", data: []byte("this is not protobuf")},
			status: 400, contentType: "application/x-protobuf", msg: "cannot decode OTLP protobuf request"},
		{name: "truncated protobuf", body: httpBody{contentType: "application/x-protobuf", data: []byte{0x0a, 0xff, 0x01, 0x02}},
			status: 400, contentType: "application/x-protobuf", msg: "cannot decode OTLP protobuf request"},
		{name: "garbage json", body: httpBody{contentType: "application/json", data: []byte(`{"resourceSpans": [`)},
			status: 400, contentType: "application/json", msg: "cannot decode OTLP JSON request"},
		{name: "json of the wrong shape", body: httpBody{contentType: "application/json", data: []byte(`{"resourceSpans": 5}`)},
			status: 400, contentType: "application/json", msg: "cannot decode OTLP JSON request"},
		{name: "two json documents", body: httpBody{contentType: "application/json", data: []byte(`{} {}`)},
			status: 400, contentType: "application/json", msg: "cannot decode OTLP JSON request"},
		{name: "wrong content type", body: httpBody{contentType: "text/plain", data: []byte("hello")},
			status: 415, contentType: "text/plain; charset=utf-8", msg: `unsupported content type "text/plain"`},
		{name: "no content type", body: httpBody{data: []byte("{}")},
			status: 415, contentType: "text/plain; charset=utf-8", msg: "unsupported content type"},
		{name: "not gzip", body: httpBody{contentType: "application/json", data: []byte("{}"),
			header: http.Header{"Content-Encoding": {"gzip"}}},
			status: 400, contentType: "application/json", msg: "cannot read gzip request body"},
		{name: "unsupported encoding", body: httpBody{contentType: "application/json", data: []byte("{}"),
			header: http.Header{"Content-Encoding": {"br"}}},
			status: 415, contentType: "application/json", msg: `unsupported content encoding "br"`},
		{name: "too large", body: httpBody{contentType: "application/x-protobuf", data: make([]byte, 65<<10)},
			status: 413, contentType: "application/x-protobuf", msg: "cannot read request body"},
		{name: "gzip bomb", body: httpBody{contentType: "application/x-protobuf", data: bomb.Bytes(),
			header: http.Header{"Content-Encoding": {"gzip"}}},
			status: 413, contentType: "application/x-protobuf", msg: "inflates to more than 65536 bytes"},
		{name: "GET", method: http.MethodGet, body: httpBody{contentType: "application/json"},
			status: 405, contentType: "application/json", msg: "only POST"},
		{name: "other path", path: "/v1/metrics", body: httpBody{contentType: "application/json", data: []byte("{}")},
			status: 404, contentType: "text/plain; charset=utf-8", msg: "404 page not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := url
			if tc.path != "" {
				u = "http://" + r.HTTPAddr() + tc.path
			}
			var resp *http.Response
			var body []byte
			if tc.method == http.MethodGet {
				req, err := http.NewRequest(http.MethodGet, u, nil)
				require.NoError(t, err)
				req.Header.Set("Content-Type", tc.body.contentType)
				resp, err = http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, _ = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
			} else {
				resp, body = postHTTP(t, nil, u, tc.body)
			}
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			require.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
			var got string
			switch tc.contentType {
			case "application/x-protobuf":
				var st status.Status
				require.NoError(t, proto.Unmarshal(body, &st), "the answer is a google.rpc.Status")
				require.Equal(t, int32(codes.InvalidArgument), st.GetCode())
				got = st.GetMessage()
			case "application/json":
				var st status.Status
				require.NoError(t, protojson.Unmarshal(body, &st), "%s", body)
				got = st.GetMessage()
			default:
				got = string(body)
			}
			require.Contains(t, got, tc.msg)
		})
	}
	require.Empty(t, rec.take())
	require.Equal(t, 2.0, testutil.ToFloat64(r.metrics.requests.WithLabelValues("http", outcomeTooLarge)))
}

func TestGRPCBadInput(t *testing.T) {
	r, _, _ := startReceiver(t, Config{MaxMessageBytes: 64 << 10})
	conn := dialGRPC(t, r.GRPCAddr())
	// Field 1 (resource_spans) holding bytes that are not a ResourceSpans message.
	err := conn.Invoke(context.Background(), exportMethod, wrapperspb.Bytes([]byte{0xff}), dynamicpb.NewMessage(responseDesc))
	// gRPC itself answers a message it cannot unmarshal, with Internal, as for generated services.
	require.Equal(t, codes.Internal, grpcstatus.Code(err), "%v", err)
	require.Contains(t, err.Error(), "failed to unmarshal")
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.requests.WithLabelValues("grpc", outcomeBadRequest)))

	err = conn.Invoke(context.Background(), exportMethod, wrapperspb.Bytes(make([]byte, 65<<10)), dynamicpb.NewMessage(responseDesc))
	require.Equal(t, codes.ResourceExhausted, grpcstatus.Code(err), "%v", err)
}

func TestBearerTokens(t *testing.T) {
	var logs syncBuffer
	set, _ := testSettings(t)
	set.Logger = slogTo(&logs)
	rec := &recorder{}
	r, err := New(Config{Enabled: true, GRPC: TransportConfig{Listen: "127.0.0.1:0"}, HTTP: TransportConfig{Listen: "127.0.0.1:0"},
		BearerTokens: []string{"s3cret-token", "other-token"}, CollectorID: testCollectorID}, rec, set)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()

	url := "http://" + r.HTTPAddr() + TracesPath
	body := fixtureBytes(t, "stdio_pipe")
	for _, tc := range []struct {
		auth   []string
		status int
	}{
		{nil, http.StatusUnauthorized},
		{[]string{"Bearer wrong"}, http.StatusUnauthorized},
		{[]string{"Basic czNjcmV0LXRva2Vu"}, http.StatusUnauthorized},
		{[]string{"Bearer s3cret-token-and-more"}, http.StatusUnauthorized},
		{[]string{"Bearer s3cret-token"}, http.StatusOK},
		{[]string{"bearer other-token"}, http.StatusOK},
	} {
		resp, answer := postHTTP(t, nil, url, httpBody{contentType: "application/json", data: body, header: http.Header{"Authorization": tc.auth}})
		require.Equal(t, tc.status, resp.StatusCode, "%v: %s", tc.auth, answer)
		if tc.status == http.StatusUnauthorized {
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		}
	}
	require.Len(t, rec.take(), 4, "two accepted requests of two MCP spans")

	conn := dialGRPC(t, r.GRPCAddr())
	td := loadFixture(t, "stdio_pipe")
	_, _, err = exportGRPC(context.Background(), conn, td)
	require.Equal(t, codes.Unauthenticated, grpcstatus.Code(err))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer wrong")
	_, _, err = exportGRPC(ctx, conn, td)
	require.Equal(t, codes.Unauthenticated, grpcstatus.Code(err))
	ctx = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer s3cret-token")
	_, _, err = exportGRPC(ctx, conn, td)
	require.NoError(t, err)
	require.Len(t, rec.take(), 2)

	require.Equal(t, 4.0, testutil.ToFloat64(r.metrics.requests.WithLabelValues("http", outcomeUnauthenticated)))
	require.Equal(t, 2.0, testutil.ToFloat64(r.metrics.requests.WithLabelValues("grpc", outcomeUnauthenticated)))
	require.NotContains(t, logs.String(), "s3cret")
	require.NotContains(t, logs.String(), "clear text", "loopback: nobody else can read the tokens")
}

// Bearer tokens sent in clear text to a listener other machines can reach: the receiver
// starts (TLS may end in front of it) but says so.
func TestBearerTokensWithoutTLSWarn(t *testing.T) {
	var logs syncBuffer
	set, _ := testSettings(t)
	set.Logger = slogTo(&logs)
	r, err := New(Config{Enabled: true, GRPC: TransportConfig{Disabled: true}, HTTP: TransportConfig{Listen: "0.0.0.0:0"},
		BearerTokens: []string{"s3cret-token"}, CollectorID: testCollectorID}, &recorder{}, set)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	require.Contains(t, logs.String(), "OTLP bearer tokens travel in clear text")
	require.NotContains(t, logs.String(), "s3cret")
}

// blockingEmitter holds every Emit until released, to keep an export in flight.
type blockingEmitter struct {
	entered chan struct{}
	release chan struct{}
	recorder
}

func (b *blockingEmitter) Emit(e schemas.Event) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	b.recorder.Emit(e)
}

func TestShutdownDrainsExportsInFlight(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	em := &blockingEmitter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	set, _ := testSettings(t)
	r, err := New(Config{Enabled: true, GRPC: TransportConfig{Disabled: true}, HTTP: TransportConfig{Listen: "127.0.0.1:0"}}, em, set)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	require.Empty(t, r.GRPCAddr(), "gRPC is disabled")

	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	answered := make(chan int, 1)
	go func() {
		resp, _ := postHTTP(t, &http.Client{Transport: tr}, "http://"+r.HTTPAddr()+TracesPath,
			httpBody{contentType: "application/json", data: fixtureBytes(t, "stdio_pipe")})
		answered <- resp.StatusCode
	}()
	<-em.entered
	shut := make(chan error, 1)
	go func() { shut <- r.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while an export was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(em.release)
	require.NoError(t, <-shut)
	require.Equal(t, http.StatusOK, <-answered)
	require.Len(t, em.take(), 2, "the export in flight was finished")
}

func TestLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	cfg := Config{Enabled: true, GRPC: TransportConfig{Listen: "127.0.0.1:0"}, HTTP: TransportConfig{Listen: "127.0.0.1:0"}}
	set, _ := testSettings(t)

	r, err := New(cfg, &recorder{}, set)
	require.NoError(t, err)
	require.Empty(t, r.GRPCAddr())
	require.Empty(t, r.HTTPAddr())
	require.NoError(t, r.Start(ctx))
	require.NotEmpty(t, r.GRPCAddr())
	require.NotEmpty(t, r.HTTPAddr())
	require.Error(t, r.Start(ctx), "a second Start")

	// A second receiver on an address in use fails to start and leaves nothing listening.
	busy := cfg
	busy.HTTP.Listen = r.HTTPAddr()
	r2, err := New(busy, &recorder{}, set)
	require.NoError(t, err)
	err = r2.Start(ctx)
	require.ErrorContains(t, err, "cannot listen for OTLP/HTTP on "+r.HTTPAddr())
	require.Empty(t, r2.GRPCAddr())
	require.NoError(t, r2.Shutdown(ctx))

	require.NoError(t, r.Shutdown(ctx))
	require.NoError(t, r.Shutdown(ctx))
	require.Error(t, r.Start(ctx), "Start after Shutdown")

	never, err := New(cfg, &recorder{}, set)
	require.NoError(t, err)
	require.NoError(t, never.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, never.Shutdown(ctx))

	_, err = New(cfg, nil, set)
	require.ErrorContains(t, err, "no event emitter")
	_, err = New(Config{GRPC: TransportConfig{Listen: "nonsense"}}, &recorder{}, set)
	require.ErrorContains(t, err, "collector.otlp.grpc.listen")
}

func TestResponsesAreValidOTLPJSON(t *testing.T) {
	// The JSON answer must be what an OTLP/JSON client parses: camelCase, int64 as a string.
	b, err := protojson.Marshal(newResponse(3, "why"))
	require.NoError(t, err)
	var doc map[string]map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, map[string]any{"rejectedSpans": "3", "errorMessage": "why"}, doc["partialSuccess"])
	b, err = protojson.Marshal(newResponse(0, ""))
	require.NoError(t, err)
	require.JSONEq(t, `{}`, string(b))
}
