package otlp

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is an EventEmitter that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []schemas.Event
}

func (r *recorder) Emit(e schemas.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events emitted so far and forgets them.
func (r *recorder) take() []schemas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := slices.Clone(r.events)
	r.events = nil
	return evs
}

func testSettings(t testing.TB) (pipeline.Settings, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return pipeline.Settings{
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registry: reg,
	}, reg
}

func strValue(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func intValue(i int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
}

func kvlistValue(m map[string]*commonpb.AnyValue) *commonpb.AnyValue {
	kv := &commonpb.KeyValueList{}
	for k, v := range m {
		kv.Values = append(kv.Values, &commonpb.KeyValue{Key: k, Value: v})
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: kv}}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
