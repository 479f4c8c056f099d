package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestAlertsReplayDLQ(t *testing.T) {
	ctx := context.Background()
	var busCfg bus.Config
	busCfg.SetDefaults()
	busCfg.Partitions = 1
	b, err := bus.StartEmbedded(0, t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, bus.EnsureTopics(ctx, b.Brokers(), busCfg))

	var mu sync.Mutex
	var got []string // delivery ids received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Get(alerting.HeaderDelivery))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	// Two dead letters for soc, one for a sink no longer configured.
	ts := time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC)
	var ids []string
	var msgs []kafka.Message
	for i, sink := range []string{"soc", "gone", "soc"} {
		an := schemas.Anomaly{
			ID: fmt.Sprintf("7d2f1c7e-0b1a-4c3e-9f00-00000000000%d", i), SchemaVersion: 1, Time: ts, AgentID: "billing-bot",
			Kind: "new_tool", Subject: "delete_all", Score: 80, Severity: schemas.SeverityHigh, Title: "t",
			Explanation: schemas.Explanation{Summary: "s", Model: "first_seen_tool"}, EvidenceEventIDs: []string{},
			FirstSeen: ts, LastSeen: ts, Count: 1,
		}
		v, err := json.Marshal(an)
		require.NoError(t, err)
		if sink == "soc" {
			ids = append(ids, alerting.DeliveryID(an, sink))
		}
		msgs = append(msgs, kafka.Message{Key: []byte(an.AgentID), Value: v, Headers: []kafka.Header{
			{Key: alerting.DLQHeaderSink, Value: []byte(sink)},
			{Key: alerting.DLQHeaderDeliveryID, Value: []byte(alerting.DeliveryID(an, sink))},
			{Key: alerting.DLQHeaderError, Value: []byte("webhook soc answered 500 Internal Server Error")},
		}})
	}
	p := bus.NewProducer(b.Brokers(), bus.TopicAlertsDLQ, busCfg)
	require.NoError(t, p.Produce(ctx, msgs...))
	require.NoError(t, p.Close())

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcpwatch.yml")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, `data_dir: %s
bus:
  brokers: [%s]
alerting:
  webhooks:
    - name: soc
      url: %s
`, dir, b.Brokers()[0], srv.URL), 0o600))

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runMain(ctx, append([]string{"alerts", "replay-dlq", "--config", cfgPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, stderr := run("--dry-run", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var dry []alerting.ReplayResult
	require.NoError(t, json.Unmarshal([]byte(out), &dry))
	require.Len(t, dry, 2)
	require.Equal(t, alerting.ReplayWouldReplay, dry[0].Status)
	require.Equal(t, ids[0], dry[0].DeliveryID)
	require.Equal(t, int64(2), dry[1].Offset)
	mu.Lock()
	require.Empty(t, got, "a dry run sends nothing")
	mu.Unlock()

	code, out, stderr = run()
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, out, "STATUS")
	require.Contains(t, out, "2 replayed, 0 failed")
	mu.Lock()
	require.Equal(t, ids, got, "the original delivery ids")
	mu.Unlock()

	code, out, _ = run("--sink", "soc")
	require.Equal(t, exitOK, code)
	require.Equal(t, "0 replayed, 0 failed, 0 would be replayed, 0 invalid\n", out, "the position was committed")

	st, err := store.Open(ctx, store.Config{Backend: store.BackendSQLite, SQLite: store.SQLiteConfig{Path: filepath.Join(dir, "mcpwatch.db")}, RetentionDays: 30}, pipeline.Settings{})
	require.NoError(t, err)
	defer st.Close()
	ds, err := st.Deliveries(ctx, store.DeliveryQuery{Status: alerting.StatusReplayed})
	require.NoError(t, err)
	require.Len(t, ds, 2)

	code, _, stderr = run("--sink", "gone")
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr, `sink "gone" is not configured`)
	code, _, stderr = run("-o", "xml")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-o: must be table or json")
	var out2, err2 bytes.Buffer
	require.Equal(t, exitUsage, runMain(ctx, []string{"alerts", "resend"}, &out2, &err2))
	require.Contains(t, err2.String(), `unknown command "resend"`)
}
