package alerting_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TestDeadLetterAndReplay dead-letters alerts a sink keeps failing, then replays them once it
// works: with their original delivery ids, recorded as replayed, the position committed only
// past what was accepted.
func TestDeadLetterAndReplay(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t)
	pending := lag(t, brokers)
	st := openStore(t)
	broken := newReceiver(t, always(http.StatusInternalServerError))
	strict := newReceiver(t, always(http.StatusBadRequest))
	retry := alerting.RetryConfig{MaxAttempts: 2, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	cfg := noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", broken.srv.URL), hook("strict", strict.srv.URL)}, Retry: retry})
	a := newAlerting(t, cfg, st, brokers, nil)
	require.NoError(t, a.Start(ctx))
	as := []schemas.Anomaly{
		anomaly("000000000001", schemas.SeverityHigh, 1),
		anomaly("000000000002", schemas.SeverityHigh, 1),
		anomaly("000000000003", schemas.SeverityHigh, 1),
	}
	produceAnomalies(t, brokers, as...)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Shutdown(ctx))
	require.EqualValues(t, 6, topicEnd(t, brokers, bus.TopicAlertsDLQ))
	dlq := readTopic(t, brokers, bus.TopicAlertsDLQ, 6)
	dlqIDs := map[string]bool{}
	for _, m := range dlq {
		dlqIDs[header(m, alerting.DLQHeaderDeliveryID)] = true
	}

	// The sink comes back, except that it fails the second alert once more.
	fixed := newReceiverAnswer(t, func(_ int, r request) int {
		if r.header.Get(alerting.HeaderDelivery) == alerting.DeliveryID(as[1], "soc") {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg.Webhooks[0].URL = fixed.srv.URL
	cfg.SetDefaults()

	dry, err := alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{Sink: "soc", DryRun: true}, pipelineSettings())
	require.NoError(t, err)
	require.Len(t, dry, 3)
	for i, r := range dry {
		require.Equal(t, alerting.ReplayWouldReplay, r.Status)
		require.Equal(t, alerting.DeliveryID(as[i], "soc"), r.DeliveryID)
		require.True(t, dlqIDs[r.DeliveryID])
		require.Equal(t, as[i].ID, r.AnomalyID)
	}
	require.Zero(t, fixed.count(), "a dry run sends nothing")
	again, err := alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{Sink: "soc", DryRun: true}, pipelineSettings())
	require.NoError(t, err)
	require.Equal(t, dry, again, "and commits nothing")

	res, err := alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{Sink: "soc"}, pipelineSettings())
	require.NoError(t, err)
	require.Len(t, res, 2, "the replay stops at the first alert still not accepted")
	require.Equal(t, alerting.ReplayReplayed, res[0].Status)
	require.Equal(t, alerting.ReplayFailed, res[1].Status)
	require.Equal(t, 2, res[1].Attempts)
	require.Contains(t, res[1].Error, "500")
	got := fixed.requests()
	require.Equal(t, alerting.DeliveryID(as[0], "soc"), got[0].header.Get(alerting.HeaderDelivery), "the original delivery id")

	// Again, once the receiver accepts everything: it resumes at the failed one.
	ok := newReceiver(t, nil)
	cfg.Webhooks[0].URL = ok.srv.URL
	res, err = alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{Sink: "soc"}, pipelineSettings())
	require.NoError(t, err)
	require.Len(t, res, 2)
	for i, r := range res {
		require.Equal(t, alerting.ReplayReplayed, r.Status)
		require.Equal(t, alerting.DeliveryID(as[i+1], "soc"), r.DeliveryID)
		require.Equal(t, r.DeliveryID, ok.requests()[i].header.Get(alerting.HeaderDelivery))
	}
	res, err = alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{Sink: "soc"}, pipelineSettings())
	require.NoError(t, err)
	require.Empty(t, res, "nothing left for soc")

	replayed := deliveries(t, st, store.DeliveryQuery{Sink: "soc", Status: alerting.StatusReplayed})
	require.Len(t, replayed, 3)
	for i, d := range replayed {
		require.Equal(t, alerting.DeliveryID(as[i], "soc"), d.ID)
		require.Empty(t, d.Error)
	}
	require.Len(t, deliveries(t, st, store.DeliveryQuery{Sink: "soc", Status: alerting.StatusDeadLettered}), 3, "the dead-lettered records stay")

	// Every sink: strict still rejects; its position stays put.
	res, err = alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{}, pipelineSettings())
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, "strict", res[0].Sink)
	require.Equal(t, alerting.ReplayFailed, res[0].Status)
	require.Contains(t, res[0].Error, "400")
	require.Equal(t, 1, res[0].Attempts, "a rejection is not retried")

	_, err = alerting.ReplayDLQ(ctx, cfg, st, brokers, alerting.ReplayOptions{Sink: "nope"}, pipelineSettings())
	require.ErrorContains(t, err, `sink "nope" is not configured`)
}
