package alerting_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestRouteAccepts(t *testing.T) {
	an := schemas.Anomaly{AgentID: "billing-bot", Kind: "rate_spike", ServerID: "prod-db", Severity: schemas.SeverityHigh, Tags: []string{"finance", "pii"}}
	noServer := an
	noServer.ServerID = ""
	noTags := an
	noTags.Tags = nil
	for _, tc := range []struct {
		name  string
		route alerting.Route
		an    schemas.Anomaly
		want  bool
	}{
		{name: "empty route", want: true},
		{name: "severity at the minimum", route: alerting.Route{MinSeverity: schemas.SeverityHigh}, want: true},
		{name: "severity below", route: alerting.Route{MinSeverity: schemas.SeverityCritical}},
		{name: "kind included by glob", route: alerting.Route{Kinds: alerting.Filter{Include: []string{"new_tool", "rate_*"}}}, want: true},
		{name: "kind not included", route: alerting.Route{Kinds: alerting.Filter{Include: []string{"new_tool"}}}},
		{name: "exclude wins over include", route: alerting.Route{Kinds: alerting.Filter{Include: []string{"rate_*"}, Exclude: []string{"rate_spike"}}}},
		{name: "agent excluded", route: alerting.Route{Agents: alerting.Filter{Exclude: []string{"billing-*"}}}},
		{name: "other agent excluded", route: alerting.Route{Agents: alerting.Filter{Exclude: []string{"test-*"}}}, want: true},
		{name: "agent glob with class", route: alerting.Route{Agents: alerting.Filter{Include: []string{"[a-c]illing-bot"}}}, want: true},
		{name: "server included", route: alerting.Route{Servers: alerting.Filter{Include: []string{"prod-*"}}}, want: true},
		{name: "no server, servers included", route: alerting.Route{Servers: alerting.Filter{Include: []string{"prod-*"}}}, an: noServer},
		{name: "no server, servers excluded", route: alerting.Route{Servers: alerting.Filter{Exclude: []string{"dev-*"}}}, an: noServer, want: true},
		{name: "one tag included", route: alerting.Route{Tags: alerting.Filter{Include: []string{"pii"}}}, want: true},
		{name: "no tag included", route: alerting.Route{Tags: alerting.Filter{Include: []string{"secrets"}}}},
		{name: "one tag excluded excludes", route: alerting.Route{Tags: alerting.Filter{Include: []string{"pii"}, Exclude: []string{"fin*"}}}},
		{name: "untagged, tags included", route: alerting.Route{Tags: alerting.Filter{Include: []string{"*"}}}, an: noTags},
		{name: "untagged, tags excluded", route: alerting.Route{Tags: alerting.Filter{Exclude: []string{"pii"}}}, an: noTags, want: true},
		{
			name:  "every filter passes",
			route: alerting.Route{MinSeverity: schemas.SeverityMedium, Kinds: alerting.Filter{Include: []string{"rate_*"}}, Agents: alerting.Filter{Include: []string{"*-bot"}}, Servers: alerting.Filter{Exclude: []string{"dev-*"}}, Tags: alerting.Filter{Include: []string{"pii"}}},
			want:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.an
			if a.AgentID == "" {
				a = an
			}
			r := tc.route
			if r.MinSeverity == "" {
				r.MinSeverity = schemas.SeverityInfo
			}
			require.Equal(t, tc.want, r.Accepts(a))
		})
	}
}

// TestRoutingToSinks sends a mix of anomalies through the bus to sinks with different routes.
func TestRoutingToSinks(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	all, pager, finance, noTest := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	pagerHook := hook("pager", pager.srv.URL)
	pagerHook.MinSeverity = schemas.SeverityHigh
	pagerHook.Kinds = alerting.Filter{Include: []string{"rate_*", "new_tool"}, Exclude: []string{"rate_drop"}}
	financeHook := hook("finance", finance.srv.URL)
	financeHook.Tags = alerting.Filter{Include: []string{"finance"}}
	financeHook.Servers = alerting.Filter{Include: []string{"ledger*"}}
	noTestHook := hook("no-test", noTest.srv.URL)
	noTestHook.Agents = alerting.Filter{Exclude: []string{"test-*", "ci-?"}}
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("all", all.srv.URL), pagerHook, financeHook, noTestHook}, Retry: fastRetry}), brokers, nil)

	mk := func(id, agent, kind, server string, sev schemas.Severity, tags ...string) schemas.Anomaly {
		a := anomaly(id, sev, 1)
		a.AgentID, a.Kind, a.ServerID, a.Tags = agent, kind, server, tags
		return a
	}
	as := []schemas.Anomaly{
		mk("000000000001", "billing-bot", "rate_spike", "ledger", schemas.SeverityCritical, "finance"), // all, pager, finance, no-test
		mk("000000000002", "billing-bot", "rate_drop", "ledger", schemas.SeverityHigh, "finance"),      // all, finance, no-test
		mk("000000000003", "test-bot", "new_tool", "ledger-2", schemas.SeverityHigh),                   // all, pager
		mk("000000000004", "ci-1", "scan", "ledger", schemas.SeverityLow, "finance", "pii"),            // all, finance
		mk("000000000005", "ci-12", "scan", "docs", schemas.SeverityMedium, "finance"),                 // all, no-test
	}
	produceAnomalies(t, brokers, as...)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)

	got := func(r *receiver) []string {
		var ids []string
		for _, req := range r.requests() {
			var an schemas.Anomaly
			require.NoError(t, json.Unmarshal(req.body, &an))
			ids = append(ids, an.ID[len(an.ID)-1:])
		}
		return ids
	}
	require.Equal(t, []string{"1", "2", "3", "4", "5"}, got(all))
	require.Equal(t, []string{"1", "3"}, got(pager))
	require.Equal(t, []string{"1", "2", "4"}, got(finance))
	require.Equal(t, []string{"1", "2", "5"}, got(noTest))
}

// digestsOf decodes the digests a receiver got.
func digestsOf(t *testing.T, r *receiver) (alerts []schemas.Anomaly, digests []alerting.Digest) {
	t.Helper()
	for _, req := range r.requests() {
		switch req.header.Get(alerting.HeaderEvent) {
		case "digest":
			var d struct {
				Type string `json:"type"`
				alerting.Digest
			}
			require.NoError(t, json.Unmarshal(req.body, &d))
			require.Equal(t, "mcpwatch.digest", d.Type)
			digests = append(digests, d.Digest)
		case "anomaly":
			var an schemas.Anomaly
			require.NoError(t, json.Unmarshal(req.body, &an))
			alerts = append(alerts, an)
		default:
			t.Fatalf("unexpected %s %q", alerting.HeaderEvent, req.header.Get(alerting.HeaderEvent))
		}
	}
	return alerts, digests
}

// TestReAlertWindowAndDigest: repeats of one anomaly within the window (anomaly time) are
// held back, a severity rise or the end of the window alerts again, and the digest sent at
// shutdown lists what was held back, per anomaly, with counts.
func TestReAlertWindowAndDigest(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	soc, every := newReceiver(t, nil), newReceiver(t, nil)
	zero := time.Duration(0)
	everyHook := hook("every", every.srv.URL)
	everyHook.ReAlertWindow = &zero // this sink overrides the global window
	window, digest := 10*time.Minute, time.Hour
	reg := prometheus.NewRegistry()
	a := newAlerting(t, alerting.Config{
		Webhooks: []alerting.WebhookConfig{hook("soc", soc.srv.URL), everyHook},
		Noise:    alerting.NoiseConfig{ReAlertWindow: &window, DigestInterval: &digest},
		Retry:    fastRetry,
	}, openStore(t), brokers, reg)
	require.NoError(t, a.Start(context.Background()))
	shut := false
	t.Cleanup(func() {
		if !shut {
			require.NoError(t, a.Shutdown(context.Background()))
		}
	})

	version := func(id string, count int, after time.Duration, sev schemas.Severity) schemas.Anomaly {
		an := anomaly(id, sev, count)
		an.Time = anomalyTime.Add(after)
		an.LastSeen = an.Time
		return an
	}
	produceAnomalies(t, brokers,
		version("000000000001", 1, 0, schemas.SeverityMedium),                // alerted: first
		version("000000000001", 2, time.Minute, schemas.SeverityMedium),      // held back
		version("000000000001", 3, 2*time.Minute, schemas.SeverityMedium),    // held back
		version("000000000002", 1, 2*time.Minute, schemas.SeverityLow),       // alerted: another anomaly
		version("000000000001", 4, 3*time.Minute, schemas.SeverityHigh),      // alerted: severity rose
		version("000000000001", 5, 9*time.Minute, schemas.SeverityHigh),      // held back (window restarts at 3m)
		version("000000000002", 2, 5*time.Minute, schemas.SeverityLow),       // held back
		version("000000000001", 6, 13*time.Minute, schemas.SeverityHigh),     // alerted: window over
		version("000000000001", 7, 14*time.Minute, schemas.SeverityCritical), // alerted: severity rose
		version("000000000001", 8, 15*time.Minute, schemas.SeverityCritical), // held back
		version("000000000003", 1, 15*time.Minute, schemas.SeverityInfo),     // alerted
		version("000000000003", 2, 30*time.Minute, schemas.SeverityInfo),     // alerted: window over
	)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Shutdown(context.Background())) // sends the pending digest
	shut = true

	alerts, digests := digestsOf(t, soc)
	type v struct {
		id    string
		count int
	}
	var got []v
	for _, an := range alerts {
		got = append(got, v{an.ID[len(an.ID)-1:], an.Count})
	}
	require.Equal(t, []v{{"1", 1}, {"2", 1}, {"1", 4}, {"1", 6}, {"1", 7}, {"3", 1}, {"3", 2}}, got)
	require.Equal(t, 5.0, counter(t, reg, "mcpwatch_alerts_suppressed_total", "soc"))

	require.Len(t, digests, 1)
	d := digests[0]
	require.Equal(t, "soc", d.Sink)
	require.Equal(t, "10m0s", d.ReAlertWindow)
	require.Equal(t, 5, d.Suppressed)
	require.Equal(t, []alerting.DigestEntry{
		{AnomalyID: anomaly("000000000001", "", 0).ID, AgentID: "billing-bot", Kind: "new_tool", Subject: "delete_all_000000000001", Severity: schemas.SeverityCritical, Suppressed: 4, Count: 8, LastSeen: anomalyTime.Add(15 * time.Minute)},
		{AnomalyID: anomaly("000000000002", "", 0).ID, AgentID: "billing-bot", Kind: "new_tool", Subject: "delete_all_000000000002", Severity: schemas.SeverityLow, Suppressed: 1, Count: 2, LastSeen: anomalyTime.Add(5 * time.Minute)},
	}, d.Entries)
	require.False(t, d.End.Before(d.Start))

	everyAlerts, everyDigests := digestsOf(t, every)
	require.Len(t, everyAlerts, 12, "a window of 0 alerts every version")
	require.Empty(t, everyDigests, "nothing held back, no digest")
	require.Zero(t, counter(t, reg, "mcpwatch_alerts_suppressed_total", "every"))
}

// TestDigestIsPeriodic: with a short digest interval, digests arrive while alerting runs, and
// together they account for every repeat held back, once. A digest the sink answers 503 is
// retried like any alert.
func TestDigestIsPeriodic(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	failDigests := 2
	rec := newReceiverAnswer(t, func(_ int, r request) int {
		if r.header.Get(alerting.HeaderEvent) == "digest" && failDigests > 0 {
			failDigests--
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	window, digest := time.Hour, 20*time.Millisecond
	h := hook("soc", rec.srv.URL)
	h.DigestInterval = &digest
	reg := prometheus.NewRegistry()
	startAlerting(t, alerting.Config{Webhooks: []alerting.WebhookConfig{h}, Noise: alerting.NoiseConfig{ReAlertWindow: &window}, Retry: fastRetry}, brokers, reg)

	var as []schemas.Anomaly
	for i := 1; i <= 30; i++ {
		an := anomaly("000000000001", schemas.SeverityMedium, i)
		an.Time = anomalyTime.Add(time.Duration(i) * time.Second)
		as = append(as, an)
	}
	produceAnomalies(t, brokers, as[:15]...)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	produceAnomalies(t, brokers, as[15:]...)
	// The first two digest requests were answered 503 (and sent again): only the others count.
	delivered := func() []alerting.Digest {
		_, ds := digestsOf(t, rec)
		return ds[min(2, len(ds)):]
	}
	require.Eventually(t, func() bool {
		n := 0
		for _, d := range delivered() {
			n += d.Suppressed
		}
		return n >= 29
	}, 10*time.Second, 10*time.Millisecond)
	alerts, _ := digestsOf(t, rec)
	require.Len(t, alerts, 1)
	total := 0
	ds := delivered()
	for _, d := range ds {
		require.Len(t, d.Entries, 1)
		total += d.Suppressed
	}
	require.Equal(t, 29, total, "every repeat is in exactly one delivered digest")
	require.Equal(t, 30, ds[len(ds)-1].Entries[0].Count)
}

// TestSyslogThroughAlerting: a syslog sink configured in alerting.syslog gets its routed
// alerts (here over TCP with octet counting to a plain listener), with the delivery id.
func TestSyslogThroughAlerting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	frames := make(chan string, 4)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			n := 0
			if _, err := fmt.Fscanf(r, "%d ", &n); err != nil {
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			frames <- string(b)
		}
	}()
	brokers := startBroker(t)
	startAlerting(t, noNoise(alerting.Config{
		Syslog: []alerting.SyslogConfig{{Name: "siem", Address: l.Addr().String(), Transport: alerting.SyslogTCP, Format: alerting.FormatCEF, Route: alerting.Route{MinSeverity: schemas.SeverityHigh}}},
		Retry:  fastRetry,
	}), brokers, nil)
	crit := anomaly("000000000002", schemas.SeverityCritical, 1)
	produceAnomalies(t, brokers, anomaly("000000000001", schemas.SeverityLow, 1), crit)
	select {
	case f := <-frames:
		require.Contains(t, f, "CEF:0|mcpwatch|")
		require.Contains(t, f, alerting.DeliveryID(crit, "siem"))
		require.Contains(t, f, "delete_all_000000000002", "the routed (critical) one, not the low one")
	case <-time.After(10 * time.Second):
		t.Fatal("no syslog message")
	}
}
