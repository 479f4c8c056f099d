package alerting_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestWebhookDelivery(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	soc := newReceiver(t, nil)
	pager := newReceiver(t, always(http.StatusAccepted))
	reg := prometheus.NewRegistry()
	st := openStore(t)
	pagerHook := hook("pager", pager.srv.URL)
	pagerHook.MinSeverity = schemas.SeverityHigh
	socHook := hook("soc", soc.srv.URL+"/hooks/mcpwatch")
	socHook.Secret = "s3cret"
	socHook.Headers = map[string]string{"Authorization": "Bearer token-1"}
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{socHook, pagerHook}, Retry: fastRetry}), brokers, reg, st)

	first := anomaly("000000000001", schemas.SeverityMedium, 1)
	learning := anomaly("000000000002", schemas.SeverityCritical, 1)
	learning.Learning = true
	crit := anomaly("000000000003", schemas.SeverityCritical, 1)
	last := anomaly("000000000004", schemas.SeverityInfo, 1)
	msgs := produceAnomalies(t, brokers,
		first,
		anomaly("000000000001", schemas.SeverityMedium, 2), // the same anomaly, seen again
		learning,
		crit,
		last,
	)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)

	got := soc.requests()
	require.Len(t, got, 4, "learning anomalies are not alerted")
	wantBodies := [][]byte{msgs[0].Value, msgs[1].Value, msgs[3].Value, msgs[4].Value}
	for i, r := range got {
		require.Equal(t, http.MethodPost, r.method)
		require.Equal(t, "/hooks/mcpwatch", r.path)
		require.Equal(t, wantBodies[i], r.body, "the Anomaly v1 JSON as it was on the bus")
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Equal(t, "mcpwatch", r.header.Get("User-Agent"))
		require.Equal(t, "anomaly", r.header.Get(alerting.HeaderEvent))
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
	require.NotEqual(t, ids[0], ids[1], "a new count is a new delivery")
	require.Len(t, map[string]bool{ids[0]: true, ids[1]: true, ids[2]: true, ids[3]: true}, 4)

	p := pager.requests()
	require.Len(t, p, 1, "only high and above reach the pager")
	require.Equal(t, msgs[3].Value, p[0].body)
	require.Empty(t, p[0].header.Get(alerting.HeaderSignature), "no secret, no signature")
	require.Empty(t, p[0].header.Get("Authorization"), "headers are per sink")
	require.Equal(t, alerting.DeliveryID(crit, "pager"), p[0].header.Get(alerting.HeaderDelivery))
	require.NotEqual(t, alerting.DeliveryID(crit, "soc"), alerting.DeliveryID(crit, "pager"), "delivery ids differ per sink")

	require.Equal(t, 4.0, counter(t, reg, "mcpwatch_alerts_delivered_total", "soc"))
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_delivered_total", "pager"))
	require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ), "nothing dead-lettered")

	// Recorded before the commit.
	recs := deliveries(t, st, store.DeliveryQuery{Sink: "soc"})
	require.Len(t, recs, 4)
	for _, d := range recs {
		require.Equal(t, alerting.StatusDelivered, d.Status)
		require.Equal(t, 1, d.Attempts)
		require.Equal(t, "billing-bot", d.AgentID)
		require.Equal(t, "new_tool", d.Kind)
		require.Empty(t, d.Error)
	}
	pr := deliveries(t, st, store.DeliveryQuery{Sink: "pager"})
	require.Len(t, pr, 1)
	require.Equal(t, store.Delivery{
		ID: alerting.DeliveryID(crit, "pager"), AnomalyID: crit.ID, AgentID: crit.AgentID, Kind: crit.Kind,
		Severity: "critical", Sink: "pager", Status: alerting.StatusDelivered, Attempts: 1, Time: pr[0].Time,
	}, pr[0])
}

func TestRetryableFailuresAreRetried(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusRequestTimeout, http.StatusTooManyRequests} {
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
			st := openStore(t)
			startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", rec.srv.URL)}, Retry: fastRetry}), brokers, reg, st)
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
			require.Equal(t, 2.0, counter(t, reg, "mcpwatch_alerts_retried_total", "soc"))
			require.Zero(t, counter(t, reg, "mcpwatch_alerts_dead_lettered_total", "soc"))
			require.Zero(t, counter(t, reg, "mcpwatch_alerts_sink_unavailable", "soc"))
			require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ))
			recs := deliveries(t, st, store.DeliveryQuery{})
			require.Len(t, recs, 1)
			require.Equal(t, 3, recs[0].Attempts)
		})
	}
}

func TestPermanentFailuresAreDeadLetteredAtOnce(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			brokers := startBroker(t)
			pending := lag(t, brokers)
			rec := newReceiver(t, always(code))
			ok := newReceiver(t, nil)
			reg := prometheus.NewRegistry()
			st := openStore(t)
			startAlerting(t, noNoise(alerting.Config{
				Webhooks: []alerting.WebhookConfig{hook("soc", rec.srv.URL), hook("archive", ok.srv.URL)},
				Retry:    alerting.RetryConfig{MaxAttempts: 5, InitialBackoff: time.Second, MaxBackoff: time.Second},
			}), brokers, reg, st)
			an := anomaly("000000000001", schemas.SeverityHigh, 1)
			msgs := produceAnomalies(t, brokers, an)

			dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 1)[0]
			require.Equal(t, msgs[0].Key, dead.Key)
			require.Equal(t, msgs[0].Value, dead.Value, "the original anomaly is kept")
			require.Equal(t, "soc", header(dead, alerting.DLQHeaderSink))
			require.Contains(t, header(dead, alerting.DLQHeaderError), strconv.Itoa(code))
			require.Equal(t, "0/0", header(dead, alerting.DLQHeaderSourceOffset))
			require.Equal(t, "1", header(dead, alerting.DLQHeaderAttempts))
			require.Equal(t, alerting.DeliveryID(an, "soc"), header(dead, alerting.DLQHeaderDeliveryID))
			require.Equal(t, 1, rec.count(), "a permanent failure is not retried")
			require.Equal(t, 1, ok.count(), "other sinks still get the alert")
			require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_dead_lettered_total", "soc"))
			require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
			require.EqualValues(t, 1, topicEnd(t, brokers, bus.TopicAlertsDLQ))
			recs := deliveries(t, st, store.DeliveryQuery{Sink: "soc"})
			require.Len(t, recs, 1)
			require.Equal(t, alerting.StatusDeadLettered, recs[0].Status)
			require.Contains(t, recs[0].Error, strconv.Itoa(code))
			require.Equal(t, alerting.StatusDelivered, deliveries(t, st, store.DeliveryQuery{Sink: "archive"})[0].Status)
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
	h := hook("soc", rec.URL)
	h.Secret = "s"
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{h}, Retry: fastRetry}), brokers, nil)
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 1)[0]
	require.Equal(t, "soc", header(dead, alerting.DLQHeaderSink))
	require.Contains(t, header(dead, alerting.DLQHeaderError), "302")
	require.EqualValues(t, 1, redirected.Load(), "a redirect is a configuration problem: not retried")
	require.Zero(t, moved.count(), "the redirect is not followed")
}

// TestBudgetExhaustedIsDeadLettered checks that an alert the receiver keeps failing (500) is
// dead-lettered after the retry budget, that an unavailable receiver (503, connection
// refused) is too when dead_letter_when_unavailable is set, and that the offset is committed
// only after that.
func TestBudgetExhaustedIsDeadLettered(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	var lagSeen []float64 // guarded by rec.mu
	rec := newReceiverWith(t, always(http.StatusInternalServerError), func() { lagSeen = append(lagSeen, testutil.ToFloat64(pending)) })
	busy := newReceiver(t, always(http.StatusServiceUnavailable))
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connection refused
	reg := prometheus.NewRegistry()
	retry := fastRetry
	retry.DeadLetterWhenUnavailable = true
	startAlerting(t, noNoise(alerting.Config{
		Webhooks: []alerting.WebhookConfig{hook("soc", rec.srv.URL), hook("busy", busy.srv.URL), hook("siem", gone.URL)},
		Retry:    retry,
	}), brokers, reg)
	msgs := produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	rec.mu.Lock()
	require.Equal(t, []float64{1, 1, 1, 1}, lagSeen, "every attempt of the budget was made before the commit")
	rec.mu.Unlock()
	// Committed, so the dead letters are already on the DLQ, in sink order.
	require.EqualValues(t, 3, topicEnd(t, brokers, bus.TopicAlertsDLQ))
	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 3)
	for i, sink := range []string{"soc", "busy", "siem"} {
		require.Equal(t, sink, header(dead[i], alerting.DLQHeaderSink))
		require.Equal(t, msgs[0].Value, dead[i].Value)
		require.Equal(t, "4", header(dead[i], alerting.DLQHeaderAttempts))
		require.Equal(t, 4.0, counter(t, reg, "mcpwatch_alerts_failed_attempts_total", sink))
		require.Equal(t, 3.0, counter(t, reg, "mcpwatch_alerts_retried_total", sink))
		require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_dead_lettered_total", sink))
	}
	require.Contains(t, header(dead[0], alerting.DLQHeaderError), "500")
	require.Contains(t, header(dead[1], alerting.DLQHeaderError), "503")
	require.Contains(t, header(dead[2], alerting.DLQHeaderError), "connection refused")
	require.NotContains(t, header(dead[2], alerting.DLQHeaderError), gone.URL, "errors carry no URL (it may hold a token)")
}

// switchable is a webhook receiver on a fixed address that can be down (nothing listening:
// connection refused), busy (503) or up (200), and remembers what it accepted.
type switchable struct {
	addr string
	busy atomic.Bool

	mu       sync.Mutex
	srv      *http.Server
	accepted map[string]int // delivery id → 2xx answers
	bodies   map[string][]byte
	refused  int
}

func newSwitchable(t *testing.T) *switchable {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &switchable{addr: l.Addr().String(), accepted: map[string]int{}, bodies: map[string][]byte{}}
	require.NoError(t, l.Close()) // down until start
	t.Cleanup(s.stop)
	return s
}

func (s *switchable) url() string { return "http://" + s.addr + "/hook" }

func (s *switchable) start(t *testing.T) {
	l, err := net.Listen("tcp", s.addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.busy.Load() {
			s.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		id := r.Header.Get(alerting.HeaderDelivery)
		s.accepted[id]++
		s.bodies[id] = body
		w.WriteHeader(http.StatusOK)
	})}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (s *switchable) stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (s *switchable) snapshot() (accepted map[string]int, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.accepted {
		out[k] = v
	}
	return out, s.refused
}

// TestOutageBacksUpTheStream sends alerts while the webhook is down (connection refused, then
// 503) and checks that the consumer does not commit and nothing is dead-lettered meanwhile,
// and that after it returns every alert arrives exactly once per delivery id.
func TestOutageBacksUpTheStream(t *testing.T) {
	const n = 20
	brokers := startBroker(t)
	pending := lag(t, brokers)
	hookSrv := newSwitchable(t)
	reg := prometheus.NewRegistry()
	st := openStore(t)
	startAlerting(t, noNoise(alerting.Config{
		Webhooks: []alerting.WebhookConfig{hook("soc", hookSrv.url())},
		Retry:    alerting.RetryConfig{MaxAttempts: 2, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	}), brokers, reg, st)

	var as []schemas.Anomaly
	want := map[string]bool{}
	for i := range n {
		a := anomaly("0000000001"+strconv.Itoa(10+i), schemas.SeverityHigh, 1)
		as = append(as, a)
		want[alerting.DeliveryID(a, "soc")] = true
	}
	msgs := produceAnomalies(t, brokers, as...)

	// Down: connection refused, far beyond the budget of 2 attempts.
	require.Eventually(t, func() bool { return counter(t, reg, "mcpwatch_alerts_failed_attempts_total", "soc") >= 10 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_sink_unavailable", "soc"))
	require.EqualValues(t, n, testutil.ToFloat64(pending), "nothing committed while the sink is down")
	require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ), "an outage is not dead-lettered")

	// Busy: 503.
	hookSrv.busy.Store(true)
	hookSrv.start(t)
	require.Eventually(t, func() bool { _, r := hookSrv.snapshot(); return r >= 10 }, 10*time.Second, 5*time.Millisecond)
	require.EqualValues(t, n, testutil.ToFloat64(pending), "nothing committed while the sink is busy")
	require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ))

	// Back.
	hookSrv.busy.Store(false)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 20*time.Second, 10*time.Millisecond)
	accepted, _ := hookSrv.snapshot()
	require.Len(t, accepted, n)
	for id, times := range accepted {
		require.True(t, want[id], "unexpected delivery id %s", id)
		require.Equal(t, 1, times, "delivery %s accepted once", id)
	}
	hookSrv.mu.Lock()
	require.Equal(t, msgs[3].Value, hookSrv.bodies[alerting.DeliveryID(as[3], "soc")])
	hookSrv.mu.Unlock()
	require.Zero(t, topicEnd(t, brokers, bus.TopicAlertsDLQ))
	require.Equal(t, float64(n), counter(t, reg, "mcpwatch_alerts_delivered_total", "soc"))
	require.Zero(t, counter(t, reg, "mcpwatch_alerts_sink_unavailable", "soc"))
	recs := deliveries(t, st, store.DeliveryQuery{Status: alerting.StatusDelivered})
	require.Len(t, recs, n)
	require.Greater(t, recs[0].Attempts, 2, "the first alert waited through the outage")
}

func TestInvalidAnomalyIsDeadLettered(t *testing.T) {
	brokers := startBroker(t)
	rec := newReceiver(t, nil)
	reg := prometheus.NewRegistry()
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", rec.srv.URL)}, Retry: fastRetry}), brokers, reg)
	produce(t, brokers, kafka.Message{Key: []byte("a"), Value: []byte("{oops")}, kafka.Message{Key: []byte("a"), Value: []byte(`{"anomaly_id":"x"}`)})
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 2)
	require.Equal(t, "{oops", string(dead[0].Value))
	require.Equal(t, `{"anomaly_id":"x"}`, string(dead[1].Value), "valid JSON that is not Anomaly v1 is not sent either")
	for _, d := range dead {
		require.Empty(t, header(d, alerting.DLQHeaderSink), "no sink was tried")
		require.NotEmpty(t, header(d, alerting.DLQHeaderError))
	}
	require.Eventually(t, func() bool { return rec.count() == 1 }, 10*time.Second, 10*time.Millisecond, "the next anomaly is not held up")
	require.Equal(t, 2.0, counter(t, reg, "mcpwatch_alerts_undecodable_total", ""))
}

// TestShutdownWhileWaitingLeavesTheAlertUncommitted: an alert waiting for an unavailable sink
// at shutdown is neither dead-lettered nor committed, so the next run delivers it, with the
// same delivery id.
func TestShutdownWhileWaitingLeavesTheAlertUncommitted(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	down := newReceiver(t, always(http.StatusServiceUnavailable))
	cfg := noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", down.srv.URL)}, Retry: fastRetry})
	a := newAlerting(t, cfg, openStore(t), brokers, nil)
	require.NoError(t, a.Start(context.Background()))
	msgs := produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))
	require.Eventually(t, func() bool { return down.count() >= 6 }, 10*time.Second, 10*time.Millisecond, "beyond the budget of 4")
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

// flakyStore fails its first fails RecordDeliveries calls, then records into the real store.
type flakyStore struct {
	store.Store
	fails atomic.Int32
	calls atomic.Int32
}

func (f *flakyStore) RecordDeliveries(ctx context.Context, ds []store.Delivery) error {
	f.calls.Add(1)
	if f.fails.Add(-1) >= 0 {
		return errors.New("disk full")
	}
	return f.Store.RecordDeliveries(ctx, ds)
}

// TestStoreFailureHoldsTheCommit: deliveries are recorded before the commit; when the store
// cannot record them, the batch is retried without sending the alerts (or dead letters) again.
func TestStoreFailureHoldsTheCommit(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	rec := newReceiver(t, nil)
	reject := newReceiver(t, always(http.StatusBadRequest))
	st := &flakyStore{Store: openStore(t)}
	st.fails.Store(3)
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", rec.srv.URL), hook("strict", reject.srv.URL)}, Retry: fastRetry}), brokers, nil, st)
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))

	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 20*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, st.calls.Load(), int32(4))
	require.Equal(t, 1, rec.count(), "not sent again while the store was failing")
	require.Equal(t, 1, reject.count())
	require.EqualValues(t, 1, topicEnd(t, brokers, bus.TopicAlertsDLQ), "dead-lettered once")
	require.Len(t, deliveries(t, st.Store, store.DeliveryQuery{}), 2)
}

func TestConfigValidate(t *testing.T) {
	neg := -time.Second
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
			name: "a name clashing across sink kinds",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", "https://a.example")}, Files: []alerting.FileConfig{{Name: "soc", Path: "-"}}},
			want: []string{`alerting.files[0].name: "soc" is used by another sink`},
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
		{
			name: "bad glob",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", Route: alerting.Route{Agents: alerting.Filter{Exclude: []string{"ok-*", "[bad"}}, Tags: alerting.Filter{Include: []string{""}}}}}},
			want: []string{`alerting.webhooks[0].agents.exclude[1]: bad glob "[bad"`, "alerting.webhooks[0].tags.include[0]: must not be empty"},
		},
		{
			name: "negative noise",
			cfg: alerting.Config{
				Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", Route: alerting.Route{ReAlertWindow: &neg, DigestInterval: &neg}}},
				Noise:    alerting.NoiseConfig{ReAlertWindow: &neg, DigestInterval: &neg},
			},
			want: []string{"alerting.webhooks[0].realert_window: must not be negative", "alerting.webhooks[0].digest_interval: must not be negative", "alerting.noise.realert_window: must not be negative", "alerting.noise.digest_interval: must not be negative"},
		},
		{name: "unknown format", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", Format: "cef"}}}, want: []string{`alerting.webhooks[0].format: unknown format "cef" (want json or ocsf)`}},
		{name: "half mTLS", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", TLS: alerting.ClientTLS{CertFile: "c.pem"}}}}, want: []string{"alerting.webhooks[0].tls: cert_file and key_file go together"}},
		{name: "negative timeout", cfg: alerting.Config{Webhooks: []alerting.WebhookConfig{{URL: "https://a.example", Timeout: -time.Second}}}, want: []string{"alerting.webhooks[0].timeout: must be positive"}},
		{
			name: "syslog checked and named with the rest",
			cfg:  alerting.Config{Webhooks: []alerting.WebhookConfig{hook("siem", "https://a.example")}, Syslog: []alerting.SyslogConfig{{Name: "siem", Address: "nope"}}},
			want: []string{`alerting.syslog[0].name: "siem" is used by another sink`, "alerting.syslog[0].address: must be host:port"},
		},
		{name: "hec without token", cfg: alerting.Config{HEC: []alerting.HECConfig{{URL: "https://splunk.example:8088"}}}, want: []string{"alerting.hec[0].token: must be set"}},
		{name: "hec bad url", cfg: alerting.Config{HEC: []alerting.HECConfig{{URL: "splunk:8088", Token: "t"}}}, want: []string{"alerting.hec[0].url: must be an absolute http(s) URL"}},
		{name: "file without path", cfg: alerting.Config{Files: []alerting.FileConfig{{Format: "xml"}}}, want: []string{`alerting.files[0].path: must be a file path, or "-" for stdout`, `alerting.files[0].format: unknown format "xml"`}},
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
			_, err = alerting.New(cfg, openStore(t), nil, testBusConfig(), pipeline.Settings{})
			require.Error(t, err, "New refuses an invalid config")
		})
	}

	var d alerting.Config
	d.Webhooks = []alerting.WebhookConfig{{URL: "https://a.example"}, {URL: "https://b.example"}}
	d.HEC = []alerting.HECConfig{{URL: "https://s.example", Token: "t"}, {URL: "https://s.example", Token: "t", Format: alerting.FormatOCSF}}
	d.Files = []alerting.FileConfig{{Path: "-"}}
	d.SetDefaults()
	require.Equal(t, "webhook-1", d.Webhooks[0].Name)
	require.Equal(t, "webhook-2", d.Webhooks[1].Name)
	require.Equal(t, 5*time.Second, d.Webhooks[0].Timeout)
	require.Equal(t, alerting.FormatJSON, d.Webhooks[0].Format)
	require.Equal(t, schemas.SeverityInfo, d.Webhooks[0].MinSeverity)
	require.Equal(t, "hec-1", d.HEC[0].Name)
	require.Equal(t, "mcpwatch", d.HEC[0].Source)
	require.Equal(t, "mcpwatch:anomaly", d.HEC[0].SourceType)
	require.Equal(t, "mcpwatch:ocsf", d.HEC[1].SourceType)
	require.Equal(t, "file-1", d.Files[0].Name)
	require.Equal(t, alerting.RetryConfig{MaxAttempts: 5, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 10 * time.Second}, d.Retry)
	require.Equal(t, alerting.DefaultReAlertWindow, *d.Noise.ReAlertWindow)
	require.Equal(t, alerting.DefaultDigestInterval, *d.Noise.DigestInterval)
	_, err := alerting.New(d, nil, nil, testBusConfig(), pipeline.Settings{})
	require.ErrorContains(t, err, "needs a store")
}

// TestConfigYAML decodes a config the way `mcpwatch run` does: the routing block sits inline
// in each sink, and an explicit 0 turns noise control off rather than meaning "default".
func TestConfigYAML(t *testing.T) {
	const doc = `
webhooks:
  - name: soc
    url: https://siem.example/hook
    format: ocsf
    min_severity: high
    kinds: {include: [new_tool, "rate_*"]}
    agents: {exclude: ["test-*"]}
    tags: {include: [pii]}
    realert_window: 0s
    tls: {ca_file: /etc/ca.pem}
hec:
  - url: https://splunk.example:8088
    token: abc
    index: security
    digest_interval: 15m
files:
  - path: "-"
noise:
  realert_window: 5m
  digest_interval: 0s
retry:
  dead_letter_when_unavailable: true
`
	// As internal/app does: decode, then defaults (list elements exist only now), validate.
	type plain alerting.Config
	var c alerting.Config
	require.NoError(t, config.Decode(strings.NewReader(doc), "test.yml", (*plain)(&c)))
	c.SetDefaults()
	require.NoError(t, c.Validate())
	w := c.Webhooks[0]
	require.Equal(t, alerting.FormatOCSF, w.Format)
	require.Equal(t, schemas.SeverityHigh, w.MinSeverity)
	require.Equal(t, []string{"new_tool", "rate_*"}, w.Kinds.Include)
	require.Equal(t, []string{"test-*"}, w.Agents.Exclude)
	require.Equal(t, []string{"pii"}, w.Tags.Include)
	require.NotNil(t, w.ReAlertWindow)
	require.Zero(t, *w.ReAlertWindow)
	require.Equal(t, "/etc/ca.pem", w.TLS.CAFile)
	require.Equal(t, 15*time.Minute, *c.HEC[0].DigestInterval)
	require.Nil(t, c.HEC[0].ReAlertWindow, "unset: the global window")
	require.Equal(t, 5*time.Minute, *c.Noise.ReAlertWindow)
	require.Zero(t, *c.Noise.DigestInterval)
	require.True(t, c.Retry.DeadLetterWhenUnavailable)

	err := config.Decode(strings.NewReader("webhooks:\n  - url: https://a.example\n    min_severty: high\n"), "typo.yml", (*plain)(&alerting.Config{}))
	require.ErrorContains(t, err, "min_severty")
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
	st := openStore(t)
	var cfg alerting.Config
	cfg.Webhooks = []alerting.WebhookConfig{{URL: rec.srv.URL}}
	cfg.HEC = []alerting.HECConfig{{URL: rec.srv.URL, Token: "t"}}
	cfg.SetDefaults()

	before := goleak.IgnoreCurrent() // the broker, the store and the receiver

	a, err := alerting.New(cfg, st, brokers, testBusConfig(), pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))
	require.Eventually(t, func() bool { return rec.count() == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, a.Shutdown(ctx), "a second Shutdown is a no-op")
	goleak.VerifyNone(t, before)

	never, err := alerting.New(cfg, st, brokers, testBusConfig(), pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, never.Shutdown(ctx), "Shutdown without Start")
	require.NoError(t, never.Shutdown(ctx))
	require.Error(t, never.Start(ctx), "no Start after Shutdown")
}

// TestSignatureVerifiedByReceiver: a receiver that checks signatures the way docs/alerting.md
// shows accepts the sink holding the shared secret and refuses (401) one with another secret,
// whose alert is then dead-lettered.
func TestSignatureVerifiedByReceiver(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	var accepted atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		ts := r.Header.Get(alerting.HeaderTimestamp)
		m := hmac.New(sha256.New, []byte("shared-secret"))
		m.Write([]byte(ts + "."))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		sec, err := strconv.ParseInt(ts, 10, 64)
		if !hmac.Equal([]byte(want), []byte(r.Header.Get(alerting.HeaderSignature))) || err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		accepted.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	good, bad := hook("good", srv.URL), hook("bad", srv.URL)
	good.Secret, bad.Secret = "shared-secret", "guessed"
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{good, bad}, Retry: fastRetry}), brokers, nil)
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityHigh, 1))
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 1, accepted.Load())
	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 1)[0]
	require.Equal(t, "bad", header(dead, alerting.DLQHeaderSink))
	require.Contains(t, header(dead, alerting.DLQHeaderError), "401")
}
