package alerting_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// hecReceiver stands in for Splunk's HTTP Event Collector, which cannot run here. It checks
// requests the way HEC does and answers with HEC's documented status codes and bodies
// ({"text":…,"code":…}): 0 Success (200), 2 Token is required (401), 3 Invalid
// authorization (401), 4 Invalid token (403), 5 No data (400), 6 Invalid data format (400),
// 7 Incorrect index (400), 9 Server is busy (503), 12 Event field is required (400),
// 13 Event field cannot be blank (400).
type hecReceiver struct {
	token   string
	indexes map[string]bool // indexes the token may write to ("" is its default index)
	busy    atomic.Int32    // answer this many requests with 9 Server is busy

	mu     sync.Mutex
	events []hecEnvelope
	srv    *httptest.Server
}

type hecEnvelope struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	SourceType string            `json:"sourcetype"`
	Index      string            `json:"index"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

func newHECReceiver(t *testing.T, token string, indexes ...string) *hecReceiver {
	h := &hecReceiver{token: token, indexes: map[string]bool{"": true}}
	for _, i := range indexes {
		h.indexes[i] = true
	}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(status, code int, text string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"text": text, "code": code})
	}
	if r.Method != http.MethodPost || r.URL.Path != alerting.HECPath {
		http.NotFound(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		answer(http.StatusUnauthorized, 2, "Token is required")
		return
	case !strings.HasPrefix(auth, "Splunk "):
		answer(http.StatusUnauthorized, 3, "Invalid authorization")
		return
	case strings.TrimPrefix(auth, "Splunk ") != h.token:
		answer(http.StatusForbidden, 4, "Invalid token")
		return
	}
	if h.busy.Add(-1) >= 0 {
		answer(http.StatusServiceUnavailable, 9, "Server is busy")
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(body)) == 0 {
		answer(http.StatusBadRequest, 5, "No data")
		return
	}
	var ev hecEnvelope
	if err := json.Unmarshal(body, &ev); err != nil {
		answer(http.StatusBadRequest, 6, "Invalid data format")
		return
	}
	if ev.Event == nil {
		answer(http.StatusBadRequest, 12, "Event field is required")
		return
	}
	if string(ev.Event) == `""` {
		answer(http.StatusBadRequest, 13, "Event field cannot be blank")
		return
	}
	if !h.indexes[ev.Index] {
		answer(http.StatusBadRequest, 7, "Incorrect index")
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	answer(http.StatusOK, 0, "Success")
}

func (h *hecReceiver) received() []hecEnvelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hecEnvelope(nil), h.events...)
}

func TestHEC(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	splunk := newHECReceiver(t, "11111111-2222-3333-4444-555555555555", "security")
	splunk.busy.Store(2)
	reg := prometheus.NewRegistry()
	st := openStore(t)
	startAlerting(t, noNoise(alerting.Config{
		HEC: []alerting.HECConfig{
			{Name: "splunk", URL: splunk.srv.URL, Token: "11111111-2222-3333-4444-555555555555", Index: "security", Host: "mcpwatch-1"},
			{Name: "splunk-ocsf", URL: splunk.srv.URL + "/", Token: "11111111-2222-3333-4444-555555555555", Format: alerting.FormatOCSF, Route: alerting.Route{MinSeverity: schemas.SeverityCritical}},
			{Name: "wrong-token", URL: splunk.srv.URL, Token: "not-the-token"},
			{Name: "wrong-index", URL: splunk.srv.URL, Token: "11111111-2222-3333-4444-555555555555", Index: "main"},
		},
		Retry: fastRetry,
	}), brokers, reg, st)
	an := anomaly("000000000001", schemas.SeverityCritical, 1)
	an.Time = time.Date(2026, 11, 3, 2, 7, 11, 250_000_000, time.UTC)
	msgs := produceAnomalies(t, brokers, an)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)

	evs := splunk.received()
	require.Len(t, evs, 2)
	byType := map[string]hecEnvelope{}
	for _, ev := range evs {
		byType[ev.SourceType] = ev
	}
	j := byType["mcpwatch:anomaly"]
	require.Equal(t, "1793671631.250", j.Time.String(), "epoch seconds with milliseconds")
	require.Equal(t, "mcpwatch-1", j.Host)
	require.Equal(t, "mcpwatch", j.Source)
	require.Equal(t, "security", j.Index)
	require.JSONEq(t, string(msgs[0].Value), string(j.Event), "the event is the Anomaly v1 JSON")
	require.Equal(t, map[string]string{
		"delivery_id": alerting.DeliveryID(an, "splunk"), "event_type": "anomaly", "anomaly_id": an.ID,
		"agent_id": "billing-bot", "kind": "new_tool", "severity": "critical",
	}, j.Fields)

	o := byType["mcpwatch:ocsf"]
	require.Empty(t, o.Index, "no index: the token's default")
	var f struct {
		ClassUID int `json:"class_uid"`
	}
	require.NoError(t, json.Unmarshal(o.Event, &f))
	require.Equal(t, 2004, f.ClassUID)
	require.Equal(t, alerting.DeliveryID(an, "splunk-ocsf"), o.Fields["delivery_id"])

	retried := 0.0
	for _, s := range []string{"splunk", "splunk-ocsf", "wrong-index"} {
		retried += counter(t, reg, "mcpwatch_alerts_retried_total", s)
	}
	require.Equal(t, 2.0, retried, "server busy (503, code 9) is retried")

	dead := readTopic(t, brokers, bus.TopicAlertsDLQ, 2)
	errs := map[string]string{}
	for _, d := range dead {
		errs[header(d, alerting.DLQHeaderSink)] = header(d, alerting.DLQHeaderError)
	}
	require.Contains(t, errs["wrong-token"], "403 Forbidden: Invalid token (code 4)")
	require.NotContains(t, errs["wrong-token"], "not-the-token", "the token never reaches errors")
	require.Contains(t, errs["wrong-index"], "400 Bad Request: Incorrect index (code 7)")
	require.Equal(t, 1.0, counter(t, reg, "mcpwatch_alerts_failed_attempts_total", "wrong-token"), "a rejected token is not retried")
	recs := deliveries(t, st, store.DeliveryQuery{Status: alerting.StatusDeadLettered})
	require.Len(t, recs, 2)
}
