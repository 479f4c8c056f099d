package alerting_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.DiscardHandler)

func testBusConfig() bus.Config {
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Partitions = 1
	return cfg
}

func startBroker(t testing.TB) []string {
	t.Helper()
	b, err := bus.StartEmbedded(0, t.TempDir(), discard)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(context.Background(), b.Brokers(), testBusConfig()))
	return b.Brokers()
}

// openStore opens a migrated SQLite store in a temporary directory.
func openStore(t testing.TB) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "mcpwatch.db"), 30, pipeline.Settings{Logger: discard})
	require.NoError(t, err)
	require.NoError(t, st.Migrate(context.Background()))
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// deliveries lists the store's delivery records, oldest first.
func deliveries(t testing.TB, st store.Store, q store.DeliveryQuery) []store.Delivery {
	t.Helper()
	q.Limit = store.MaxLimit
	ds, err := st.Deliveries(context.Background(), q)
	require.NoError(t, err)
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

var anomalyTime = time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC)

// anomaly returns a valid Anomaly v1; id is a UUID suffix so different anomalies differ.
func anomaly(id string, sev schemas.Severity, count int) schemas.Anomaly {
	return schemas.Anomaly{
		ID:               "7d2f1c7e-0b1a-8c3e-9f00-" + id,
		SchemaVersion:    schemas.AnomalySchemaVersion,
		Time:             anomalyTime,
		AgentID:          "billing-bot",
		Kind:             "new_tool",
		Subject:          "delete_all_" + id,
		Score:            55,
		Severity:         sev,
		Title:            "Agent billing-bot called tool \"delete_all\" for the first time",
		Explanation:      schemas.Explanation{Summary: "s", Observed: "o", Typical: "t", Model: "first_seen_tool"},
		EvidenceEventIDs: []string{"01a19f29-127a-72b5-be27-78218b5a2e0c"},
		FirstSeen:        anomalyTime,
		LastSeen:         anomalyTime,
		Count:            count,
	}
}

func encode(t testing.TB, as ...schemas.Anomaly) []kafka.Message {
	t.Helper()
	var msgs []kafka.Message
	for _, a := range as {
		v, err := json.Marshal(a)
		require.NoError(t, err)
		require.NoError(t, schemas.ValidateAnomalyJSON(v))
		msgs = append(msgs, kafka.Message{Key: []byte(a.AgentID), Value: v})
	}
	return msgs
}

func produceAnomalies(t testing.TB, brokers []string, as ...schemas.Anomaly) []kafka.Message {
	t.Helper()
	msgs := encode(t, as...)
	produce(t, brokers, msgs...)
	return msgs
}

func produce(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	p := bus.NewProducer(brokers, bus.TopicAnomalies, testBusConfig())
	defer p.Close()
	require.NoError(t, p.Produce(context.Background(), msgs...))
}

// readTopic reads partition 0 of topic from the start until it has n messages.
func readTopic(t testing.TB, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "read %d of %d messages from %s", len(out), n, topic)
		out = append(out, m)
	}
	return out
}

// topicEnd is the end offset of partition 0 of topic: how many messages it holds.
func topicEnd(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}},
	})
	require.NoError(t, err)
	require.NoError(t, resp.Topics[topic][0].Error)
	return resp.Topics[topic][0].LastOffset
}

// lag reports alerting's uncommitted messages on mcp.anomalies.
func lag(t testing.TB, brokers []string) *bus.LagCollector {
	l := bus.NewLagCollector(brokers, map[string][]string{alerting.Group: {bus.TopicAnomalies}}, discard)
	t.Cleanup(l.Close)
	return l
}

// counter is the value of metric name for a sink ("" for a metric without labels).
func counter(t testing.TB, g prometheus.Gatherer, name, sink string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" {
					got = l.GetValue()
				}
			}
			if got != sink {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

type request struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint answering answer(n, req) to its nth request (0-based).
type receiver struct {
	mu     sync.Mutex
	reqs   []request
	answer func(n int, r request) int // called under mu
	before func()                     // runs (under mu) before each answer, while the sender waits for it
	srv    *httptest.Server
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	return newReceiverWith(t, status, nil)
}

func newReceiverWith(t testing.TB, status func(n int) int, before func()) *receiver {
	var answer func(int, request) int
	if status != nil {
		answer = func(n int, _ request) int { return status(n) }
	}
	r := &receiver{answer: answer, before: before}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func newReceiverAnswer(t testing.TB, answer func(n int, r request) int) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	if r.before != nil {
		r.before()
	}
	n := len(r.reqs)
	got := request{method: req.Method, path: req.URL.Path, header: req.Header.Clone(), body: body}
	r.reqs = append(r.reqs, got)
	code := http.StatusOK
	if r.answer != nil {
		code = r.answer(n, got)
	}
	r.mu.Unlock()
	w.WriteHeader(code)
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func (r *receiver) count() int { return len(r.requests()) }

func always(code int) func(int) int { return func(int) int { return code } }

func hook(name, url string) alerting.WebhookConfig {
	return alerting.WebhookConfig{Name: name, URL: url}
}

// noNoise turns the re-alert window and digest off, for tests about delivery.
func noNoise(cfg alerting.Config) alerting.Config {
	zero := time.Duration(0)
	cfg.Noise = alerting.NoiseConfig{ReAlertWindow: &zero, DigestInterval: &zero}
	return cfg
}

func newAlerting(t testing.TB, cfg alerting.Config, st alerting.DeliveryStore, brokers []string, reg prometheus.Registerer) *alerting.Alerting {
	t.Helper()
	cfg.SetDefaults()
	a, err := alerting.New(cfg, st, brokers, testBusConfig(), pipeline.Settings{Logger: discard, Registry: reg})
	require.NoError(t, err)
	return a
}

// startAlerting starts alerting with st (a fresh SQLite store when nil), shut down at cleanup.
func startAlerting(t testing.TB, cfg alerting.Config, brokers []string, reg prometheus.Registerer, st ...alerting.DeliveryStore) *alerting.Alerting {
	t.Helper()
	var s alerting.DeliveryStore
	if len(st) > 0 {
		s = st[0]
	} else {
		s = openStore(t)
	}
	a := newAlerting(t, cfg, s, brokers, reg)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, a.Shutdown(context.Background())) })
	return a
}

var fastRetry = alerting.RetryConfig{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}

func pipelineSettings() pipeline.Settings { return pipeline.Settings{Logger: discard} }
