package alerting_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// BenchmarkAlertLatency measures, on loopback, the time from an anomaly produced to
// mcp.anomalies to a webhook receiving it, one anomaly at a time so each one is measured
// alone. p50-ms and p99-ms count from the Produce call (so they include the producer's
// batch_timeout, as the detector's anomalies do); acked-p50-ms and acked-p99-ms from the
// broker's acknowledgement (Produce returning). Each op is one alert.
func BenchmarkAlertLatency(b *testing.B) {
	brokers := startBroker(b)
	st := openStore(b)
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		now := time.Now()
		mu.Lock()
		arrived[r.Header.Get(alerting.HeaderDelivery)] = now
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	startAlerting(b, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{hook("soc", srv.URL)}}), brokers, nil, st)
	p := bus.NewProducer(brokers, bus.TopicAnomalies, testBusConfig())
	defer p.Close()
	ctx := context.Background()

	// Warm up: the consumer joins its group and the connections open.
	require.NoError(b, p.Produce(ctx, encode(b, anomaly("ffffffffffff", schemas.SeverityHigh, 1))...))
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		b.Fatal("warm-up alert never arrived")
	}

	lat := make([]time.Duration, 0, b.N)
	acked := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		an := anomaly(strconv.FormatInt(int64(100000000000+i), 10), schemas.SeverityHigh, 1)
		msgs := encode(b, an)
		id := alerting.DeliveryID(an, "soc")
		start := time.Now()
		require.NoError(b, p.Produce(ctx, msgs...))
		ack := time.Now()
		for {
			select {
			case <-got:
			case <-time.After(30 * time.Second):
				b.Fatalf("alert %d never arrived", i)
			}
			mu.Lock()
			at, ok := arrived[id]
			mu.Unlock()
			if ok {
				lat = append(lat, at.Sub(start))
				acked = append(acked, at.Sub(ack))
				break
			}
		}
	}
	b.StopTimer()
	q := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.50), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(q(acked, 0.50), "acked-p50-ms")
	b.ReportMetric(q(acked, 0.99), "acked-p99-ms")
}
