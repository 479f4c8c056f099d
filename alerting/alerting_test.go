package alerting_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
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

func startBroker(t *testing.T) []string {
	t.Helper()
	b, err := bus.StartEmbedded(0, t.TempDir(), discard)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(context.Background(), b.Brokers(), testBusConfig()))
	return b.Brokers()
}

// anomaly returns a valid Anomaly v1; id is a UUID suffix so different anomalies differ.
func anomaly(id string, sev schemas.Severity, count int) schemas.Anomaly {
	ts := time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC)
	return schemas.Anomaly{
		ID:               "7d2f1c7e-0b1a-8c3e-9f00-" + id,
		SchemaVersion:    schemas.AnomalySchemaVersion,
		Time:             ts,
		AgentID:          "billing-bot",
		Kind:             "new_tool",
		Subject:          "delete_all",
		Score:            55,
		Severity:         sev,
		Title:            "Agent billing-bot called tool \"delete_all\" for the first time",
		Explanation:      schemas.Explanation{Summary: "s", Observed: "o", Typical: "t", Model: "first_seen_tool"},
		EvidenceEventIDs: []string{"01a19f29-127a-72b5-be27-78218b5a2e0c"},
		FirstSeen:        ts,
		LastSeen:         ts,
		Count:            count,
	}
}

func produceAnomalies(t *testing.T, brokers []string, as ...schemas.Anomaly) []kafka.Message {
	t.Helper()
	var msgs []kafka.Message
	for _, a := range as {
		v, err := json.Marshal(a)
		require.NoError(t, err)
		require.NoError(t, schemas.ValidateAnomalyJSON(v))
		msgs = append(msgs, kafka.Message{Key: []byte(a.AgentID), Value: v})
	}
	produce(t, brokers, msgs...)
	return msgs
}

func produce(t *testing.T, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	p := bus.NewProducer(brokers, bus.TopicAnomalies, testBusConfig())
	defer p.Close()
	require.NoError(t, p.Produce(context.Background(), msgs...))
}

// readTopic reads partition 0 of topic from the start until it has n messages.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
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
func topicEnd(t *testing.T, brokers []string, topic string) int64 {
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
func lag(t *testing.T, brokers []string) *bus.LagCollector {
	l := bus.NewLagCollector(brokers, map[string][]string{alerting.Group: {bus.TopicAnomalies}}, discard)
	t.Cleanup(l.Close)
	return l
}

func counter(t *testing.T, g prometheus.Gatherer, name, sink string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sink {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

type request struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint answering status(n) to its nth request (0-based).
type receiver struct {
	mu     sync.Mutex
	reqs   []request
	status func(n int) int
	before func() // runs (under mu) before each answer, while the sender waits for it
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	return newReceiverWith(t, status, nil)
}

func newReceiverWith(t *testing.T, status func(n int) int, before func()) *receiver {
	r := &receiver{status: status, before: before}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		if r.before != nil {
			r.before()
		}
		n := len(r.reqs)
		r.reqs = append(r.reqs, request{method: req.Method, path: req.URL.Path, header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		code := http.StatusOK
		if r.status != nil {
			code = r.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func (r *receiver) count() int { return len(r.requests()) }

func always(code int) func(int) int { return func(int) int { return code } }

func startAlerting(t *testing.T, cfg alerting.Config, brokers []string, reg prometheus.Registerer) *alerting.Alerting {
	t.Helper()
	cfg.SetDefaults()
	a, err := alerting.New(cfg, brokers, testBusConfig(), pipeline.Settings{Logger: discard, Registry: reg})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, a.Shutdown(context.Background())) })
	return a
}

var fastRetry = alerting.RetryConfig{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}

func TestWebhookDelivery(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	soc := newReceiver(t, nil)
	pager := newReceiver(t, always(http.StatusAccepted))
	reg := prometheus.NewRegistry()
	startAlerting(t, alerting.Config{
		Webhooks: []alerting.WebhookConfig{
			{Name: "soc", URL: soc.srv.URL + "/hooks/mcpwatch", Secret: "s3cret", Headers: map[string]string{"Authorization": "Bearer token-1"}},
			{Name: "pager", URL: pager.srv.URL, Route: alerting.Route{MinSeverity: schemas.SeverityHigh}},
		},
		Retry: fastRetry,
	}, brokers, reg)

	first := anomaly("000000000001", schemas.SeverityMedium, 1)
	learning := anomaly("000000000002", schemas.SeverityCritical, 1)
	learning.Learning = true
	crit := anomaly("000000000003", schemas.SeverityCritical, 1)
	last := anomaly("000000000004", schemas.SeverityInfo, 1)
	msgs := produceAnomalies(t, brokers,
		first,
		anomaly("000000000001", schemas.SeverityMedium, 2), // the same anomaly, seen again
		first, // redelivered
		learning,
		crit,
		last,
	)
	require.Eventually(t, func() bool { return soc.count() >= 5 && pager.count() >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)

	got := soc.requests()
	require.Len(t, got, 5, "learning anomalies are not alerted")
	wantBodies := [][]byte{msgs[0].Value, msgs[1].Value, msgs[2].Value, msgs[4].Value, msgs[5].Value}
	for i, r := range got {
		require.Equal(t, http.MethodPost, r.method)
		require.Equal(t, "/hooks/mcpwatch", r.path)
		require.Equal(t, wantBodies[i], r.body, "the Anomaly v1 JSON as it was on the bus")
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Equal(t, "mcpwatch", r.header.Get("User-Agent"))
		require.Equal(t, "Bearer token-1", r.header.Get("Authorization"), "configured headers are sent")

		ts := r.header.Get(alerting.HeaderTimestamp)
		sec, err := strconv.ParseInt(ts, 10, 64)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), time.Unix(sec, 0), time.Minute)
		// Recompute the signature independently of Sign.
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write([]byte(ts + "."))
		m.Write(r.body)
		require.Equal(t, "sha256="+hex.EncodeToString(m.Sum(nil)), r.header.Get(alerting.HeaderSignature))
	}
	ids := make([]string, len(got))
	for i, r := range got {
		ids[i] = r.header.Get(alerting.HeaderDelivery)
		require.Regexp(t, "^[0-9a-f]{32}$", ids[i])
	}
	require.Equal(t, alerting.DeliveryID(first, "soc"), ids[0])
	require.Equal(t, ids[0], ids[2], "a redelivery of the same anomaly version keeps its delivery id")
	require.NotEqual(t, ids[0], ids[1], "a new count is a new delivery")
	require.Len(t, map[string]bool{ids[1]: true, ids[2]: true, ids[3]: true, ids[4]: true}, 4)

	p := pager.requests()
	require.Len(t, p, 1, "only high and above reach the pager")
	require.Equal(t, msgs[4].Value, p[0].body)
	require.Empty(t, p[0].header.Get(alerting.HeaderSignature), "no secret, no signature")
	require.Empty(t, p[0].header.Get("Authorization"), "headers are per sink")
	require.Equal(t, alerting.DeliveryID(crit, "pager"), p[0].header.Get(alerting.HeaderDelivery))
	require.NotEqual(t, alerting.DeliveryID(crit, "soc"), alerting.DeliveryID(crit, "pager"), "delivery ids differ per sink")

	require.Equal(t, 5.0, counter(t, reg, "mcpwatch_alerts_delivered_total", "soc"))
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_delivered_total", "pager"))
	require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ), "nothing dead-lettered")
}

func TestRetryableFailuresAreRetried(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusRequestTimeout, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			brokers := startBroker(t)
			pending := lag(t, brokers)
			// Fails twice, then accepts.
			rec := newReceiver(t, func(n int) int {
				if n < 2 {
					return code
				}
				return http.StatusNoContent
			})
			reg := prometheus.NewRegistry()
			startAlerting(t, alerting.Config{Webhooks: []alerting.WebhookConfig{{Name: "soc", URL: rec.srv.URL}}, Retry: fastRetry}, brokers, reg)
			produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

			require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
			got := rec.requests()
			require.Len(t, got, 3, "two failures, then one delivery")
			for _, r := range got {
				require.Equal(t, got[0].header.Get(alerting.HeaderDelivery), r.header.Get(alerting.HeaderDelivery), "retries keep the delivery id")
				require.Equal(t, got[0].body, r.body)
			}
			require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_delivered_total", "soc"))
			require.Equal(t, 2.0, counter(t, reg, "mcpwatch_alerts_failed_attempts_total", "soc"))
			require.Zero(t, counter(t, reg, "mcpwatch_alerts_dead_lettered_total", "soc"))
			require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ))
		})
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestPermanentFailuresAreDeadLetteredAtOnce(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			brokers := startBroker(t)
			pending := lag(t, brokers)
			rec := newReceiver(t, always(code))
			ok := newReceiver(t, nil)
			reg := prometheus.NewRegistry()
			startAlerting(t, alerting.Config{
				Webhooks: []alerting.WebhookConfig{{Name: "soc", URL: rec.srv.URL}, {Name: "archive", URL: ok.srv.URL}},
				Retry:    alerting.RetryConfig{MaxAttempts: 5, InitialBackoff: time.Second, MaxBackoff: time.Second},
			}, brokers, reg)
			msgs := produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

			dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 1)[0]
			require.Equal(t, msgs[0].Key, dead.Key)
			require.Equal(t, msgs[0].Value, dead.Value, "the original anomaly is kept")
			require.Equal(t, "soc", header(dead, "mcpwatch-sink"))
			require.Contains(t, header(dead, "mcpwatch-error"), strconv.Itoa(code))
			require.Equal(t, "0", header(dead, "mcpwatch-source-offset"))
			require.Equal(t, 1, rec.count(), "a permanent failure is not retried")
			require.Equal(t, 1, ok.count(), "other sinks still get the alert")
			require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_dead_lettered_total", "soc"))
			require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
			require.EqualValues(t, 1, topicEnd(t, brokers, bus.TopicAlertsDLQ))
		})
	}
}

// TestRedirectsAreNotFollowed: following a 302/303 would turn the POST into a body-less GET
// that the new location may well answer with 200, losing the alert while counting it as
// delivered (and would send the signature to wherever the redirect points).
func TestRedirectsAreNotFollowed(t *testing.T) {
	brokers := startBroker(t)
	moved := newReceiver(t, nil)
	var redirected atomic.Int32
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		http.Redirect(w, r, moved.srv.URL+"/new", http.StatusFound)
	}))
	defer rec.Close()
	startAlerting(t, alerting.Config{Webhooks: []alerting.WebhookConfig{{Name: "soc", URL: rec.URL, Secret: "s"}}, Retry: fastRetry}, brokers, nil)
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 1)[0]
	require.Equal(t, "soc", header(dead, "mcpwatch-sink"))
	require.Contains(t, header(dead, "mcpwatch-error"), "302")
	require.EqualValues(t, 1, redirected.Load(), "a redirect is a configuration problem: not retried")
	require.Zero(t, moved.count(), "the redirect is not followed")
}

// TestReceiverDownForTheWholeBudget checks that an alert no attempt could deliver is
// dead-lettered, and that its offset is committed only after that.
func TestReceiverDownForTheWholeBudget(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	var lagSeen []float64 // guarded by rec.mu
	rec := newReceiverWith(t, always(http.StatusServiceUnavailable), func() { lagSeen = append(lagSeen, testutil.ToFloat64(pending)) })
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connection refused
	reg := prometheus.NewRegistry()
	startAlerting(t, alerting.Config{
		Webhooks: []alerting.WebhookConfig{{Name: "soc", URL: rec.srv.URL}, {Name: "siem", URL: gone.URL}},
		Retry:    fastRetry,
	}, brokers, reg)
	msgs := produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	rec.mu.Lock()
	require.Equal(t, []float64{1, 1, 1, 1}, lagSeen, "every attempt of the budget was made before the commit")
	rec.mu.Unlock()
	// Committed, so the dead letters are already on the DLQ.
	require.EqualValues(t, 2, topicEnd(t, brokers, bus.TopicAlertsDLQ))
	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 2)
	for i, sink := range []string{"soc", "siem"} {
		require.Equal(t, sink, header(dead[i], "mcpwatch-sink"))
		require.Equal(t, msgs[0].Value, dead[i].Value)
	}
	require.Contains(t, header(dead[0], "mcpwatch-error"), "503")
	require.Contains(t, header(dead[1], "mcpwatch-error"), "connection refused")
	require.Equal(t, 4.0, counter(t, reg, "mcpwatch_alerts_failed_attempts_total", "soc"))
	require.Equal(t, 4.0, counter(t, reg, "mcpwatch_alerts_failed_attempts_total", "siem"))
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_dead_lettered_total", "siem"))
}

func TestUndecodableAnomalyIsDeadLettered(t *testing.T) {
	brokers := startBroker(t)
	rec := newReceiver(t, nil)
	startAlerting(t, alerting.Config{Webhooks: []alerting.WebhookConfig{{Name: "soc", URL: rec.srv.URL}}, Retry: fastRetry}, brokers, nil)
	produce(t, brokers, kafka.Message{Key: []byte("a"), Value: []byte("{oops")})
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 1)[0]
	require.Equal(t, "{oops", string(dead.Value))
	require.Empty(t, header(dead, "mcpwatch-sink"), "no sink was tried")
	require.NotEmpty(t, header(dead, "mcpwatch-error"))
	require.Eventually(t, func() bool { return rec.count() == 1 }, 10*time.Second, 10*time.Millisecond, "the next anomaly is not held up")
}

// TestShutdownWhileRetryingLeavesTheAlertUncommitted: an alert still within its retry budget
// at shutdown is neither dead-lettered nor committed, so the next run delivers it.
func TestShutdownWhileRetryingLeavesTheAlertUncommitted(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	down := newReceiver(t, always(http.StatusServiceUnavailable))
	cfg := alerting.Config{
		Webhooks: []alerting.WebhookConfig{{Name: "soc", URL: down.srv.URL}},
		Retry:    alerting.RetryConfig{MaxAttempts: 1000, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	}
	cfg.SetDefaults()
	a, err := alerting.New(cfg, brokers, testBusConfig(), pipeline.Settings{Logger: discard})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	msgs := produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))
	require.Eventually(t, func() bool { return down.count() >= 3 }, 10*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, a.Shutdown(ctx))
	require.EqualValues(t, 1, testutil.ToFloat64(pending), "not committed")
	require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ), "not dead-lettered")

	up := newReceiver(t, nil)
	cfg.Webhooks[0].URL = up.srv.URL
	startAlerting(t, cfg, brokers, nil)
	require.Eventually(t, func() bool { return up.count() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, msgs[0].Value, up.requests()[0].body)
	require.Equal(t, down.requests()[0].header.Get(alerting.HeaderDelivery), up.requests()[0].header.Get(alerting.HeaderDelivery))
}

func TestConfigValidate(t *testing.T) {
	hook := func(name, url string) alerting.WebhookConfig { return alerting.WebhookConfig{Name: name, URL: url} }
	for _, tc := range []struct {
		name string
		cfg  alerting.Config
		want []string
	}{
		{name: "no sinks"},
		{name: "two sinks", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{hook("", "https://siem.example/hook"), hook("", "http://127.0.0.1:9000/x")}}},
		{name: "relative URL", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{hook("a", "/hook")}}, want: []string{"alerting.webhooks[0].url: must be an absolute http(s) URL"}},
		{name: "other scheme", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{hook("a", "https://ok.example"), hook("b", "ftp://siem.example/hook")}}, want: []string{"alerting.webhooks[1].url:"}},
		{name: "no URL", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{hook("a", "")}}, want: []string{"alerting.webhooks[0].url:"}},
		{name: "unparsable URL", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{hook("a", "http://[::1")}}, want: []string{"alerting.webhooks[0].url:"}},
		{
			name: "duplicate name",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", "https://a.example"), hook("soc", "https://b.example")}},
			want: []string{`alerting.webhooks[1].name: "soc" is used by another sink`},
		},
		{
			name: "a name clashing with a default name",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{hook("", "https://a.example"), hook("webhook-1", "https://b.example")}},
			want: []string{`alerting.webhooks[1].name: "webhook-1" is used by another sink`},
		},
		{
			name: "unknown severity",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", Route: alerting.Route{MinSeverity: "urgent"}}}},
			want: []string{`alerting.webhooks[0].min_severity: unknown severity "urgent"`},
		},
		{name: "negative timeout", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", Timeout: -time.Second}}}, want: []string{"alerting.webhooks[0].timeout: must be positive"}},
		{name: "no attempts", cfg: alerting.Config{Retry: alerting.RetryConfig{MaxAttempts: -1}}, want: []string{"alerting.retry.max_attempts: must be at least 1"}},
		{name: "backoffs reversed", cfg: alerting.Config{Retry: alerting.RetryConfig{InitialBackoff: time.Minute, MaxBackoff: time.Second}}, want: []string{"alerting.retry: initial_backoff must be positive and not above max_backoff"}},
		{
			name: "every problem is reported",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "x", Route: alerting.Route{MinSeverity: "loud"}}}, Retry: alerting.RetryConfig{MaxAttempts: -2}},
			want: []string{"alerting.webhooks[0].url", "alerting.webhooks[0].min_severity", "alerting.retry.max_attempts"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			err := cfg.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			_, err = alerting.New(cfg, nil, testBusConfig(), pipeline.Settings{})
			require.Error(t, err, "New refuses an invalid config")
		})
	}

	var d alerting.Config
	d.Webhooks = []alerting.WebhookConfig{{URL: "https://a.example"}, {URL: "https://b.example"}}
	d.SetDefaults()
	require.Equal(t, "webhook-1", d.Webhooks[0].Name)
	require.Equal(t, "webhook-2", d.Webhooks[1].Name)
	require.Equal(t, 5*time.Second, d.Webhooks[0].Timeout)
	require.Equal(t, schemas.SeverityInfo, d.Webhooks[0].MinSeverity)
	require.Equal(t, alerting.RetryConfig{MaxAttempts: 5, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 10 * time.Second}, d.Retry)
}

func TestDeliveryID(t *testing.T) {
	a := anomaly("000000000001", schemas.SeverityHigh, 1)
	id := alerting.DeliveryID(a, "soc")
	require.Equal(t, id, alerting.DeliveryID(a, "soc"))
	b := a
	b.Time = a.Time.Add(time.Hour)
	b.Title = "reworded"
	require.Equal(t, id, alerting.DeliveryID(b, "soc"), "only the anomaly id and count matter")
	b.Count = 2
	require.NotEqual(t, id, alerting.DeliveryID(b, "soc"))
	require.NotEqual(t, id, alerting.DeliveryID(a, "pager"))
	require.NotEqual(t, id, alerting.DeliveryID(anomaly("000000000002", schemas.SeverityHigh, 1), "soc"))
}

// TestLifecycle checks New→Start→Shutdown→Shutdown, and that Shutdown leaves no goroutine
// behind: not even idle keep-alive connections to a receiver that is still up.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t)
	rec := newReceiver(t, nil)
	var cfg alerting.Config
	cfg.Webhooks = []alerting.WebhookConfig{{URL: rec.srv.URL}}
	cfg.SetDefaults()

	before := goleak.IgnoreCurrent() // the broker and the receiver

	a, err := alerting.New(cfg, brokers, testBusConfig(), pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))
	require.Eventually(t, func() bool { return rec.count() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, a.Shutdown(ctx), "a second Shutdown is a no-op")
	goleak.VerifyNone(t, before)

	never, err := alerting.New(cfg, brokers, testBusConfig(), pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, never.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, never.Shutdown(ctx))
}
