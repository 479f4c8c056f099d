package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// readAllMessages reads every message of every partition of topic from the start.
func readAllMessages(t *testing.T, brokers []string, topic string, partitions int) [][]byte {
	t.Helper()
	var out [][]byte
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 20 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Logf("reading %s[%d]: %v", topic, p, err)
				}
				break
			}
			out = append(out, m.Value)
		}
		require.NoError(t, r.Close())
	}
	return out
}

// echoEvents decodes the tools/call echo events among msgs, by server.
func echoEvents(t *testing.T, msgs [][]byte) map[string]schemas.Event {
	t.Helper()
	out := map[string]schemas.Event{}
	for _, v := range msgs {
		var ev schemas.Event
		require.NoError(t, json.Unmarshal(v, &ev))
		if ev.Method == "tools/call" && ev.Target == "echo" {
			out[ev.ServerID] = ev
		}
	}
	return out
}

// TestCaptureEndToEnd runs every role with capture on for one server's echo tool and not for
// another server's: the captured call's content reaches mcp.events.enriched masked and cut at
// max_bytes; the other call's content travels on mcp.events only (for inspection) and its
// argument value reaches neither mcp.events.enriched nor the store.
func TestCaptureEndToEnd(t *testing.T) {
	capturedUp, otherUp := mcpServer(t), mcpServer(t)
	hook := newWebhookReceiver(t)
	cfg := baseConfig(t, t.TempDir(), capturedUp.URL, hook.srv.URL)
	require.NoError(t, cfg.AddUpstream("other="+otherUp.URL))
	cfg.Collector.Capture = []capture.Rule{{Server: "default", Tools: capture.Tools{Names: []string{"echo"}}, MaxBytes: 64}}
	a := startApp(t, cfg)
	defer stopApp(t, a)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const secretToken = "c2VjcmV0LXRva2VuLTEyMzQ1Njc4OTA"
	capturedMsg := "deploy with Authorization: Bearer " + secretToken + " and then some more words to be cut"
	const uncapturedMsg = "uncaptured value 7f3a"

	cs := agentSession(t, a.TapAddr(), "capture-agent")
	require.NoError(t, callEcho(ctx, cs, capturedMsg))
	capturedSession := cs.ID()
	require.NoError(t, cs.Close())

	client := mcp.NewClient(&mcp.Implementation{Name: "capture-agent", Version: "2.1.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + a.TapAddr() + "/mcp/other"}, nil)
	require.NoError(t, err)
	require.NoError(t, callEcho(ctx, cs, uncapturedMsg))
	otherSession := cs.ID()
	require.NoError(t, cs.Close())

	var enriched [][]byte
	var echoes map[string]schemas.Event
	require.Eventually(t, func() bool {
		enriched = readAllMessages(t, a.Brokers(), bus.TopicEventsEnriched, cfg.Bus.Partitions)
		echoes = echoEvents(t, enriched)
		return len(echoes) == 2
	}, 30*time.Second, 100*time.Millisecond, "both echo calls reach mcp.events.enriched")

	got := echoes["default"]
	require.NotNil(t, got.Content, "captured content is kept")
	require.True(t, got.Content.Captured)
	require.True(t, got.Content.Truncated)
	require.Equal(t, `{"message":"deploy with Authorization: Bearer *** and then some `, got.Content.Arguments, "masked, then cut at max_bytes")
	require.Equal(t, `{"content":[{"type":"text","text":"deploy with Authorization: Be`, got.Content.Result, "cut at max_bytes")
	require.Nil(t, echoes["other"].Content, "content that was not captured is dropped by the enricher")
	for _, m := range enriched {
		require.NotContains(t, string(m), secretToken, "a masked secret is never on mcp.events.enriched")
		require.NotContains(t, string(m), uncapturedMsg, "an uncaptured value is never on mcp.events.enriched")
	}

	// The raw topic carried the uncaptured call's content, for inspection only, masked too.
	raw := readAllMessages(t, a.Brokers(), bus.TopicEvents, cfg.Bus.Partitions)
	rawOther := echoEvents(t, raw)["other"]
	require.NotNil(t, rawOther.Content)
	require.False(t, rawOther.Content.Captured)
	require.Equal(t, `{"message":"`+uncapturedMsg+`"}`, rawOther.Content.Arguments)
	for _, m := range raw {
		require.NotContains(t, string(m), secretToken)
	}

	// Nothing of either value is in the store.
	apiClient, err := api.NewClient("http://"+a.APIAddr(), "", nil)
	require.NoError(t, err)
	for _, sid := range []string{capturedSession, otherSession} {
		var evs []schemas.Event
		require.Eventually(t, func() bool {
			evs, err = apiClient.SessionEvents(ctx, sid, 100)
			return err == nil && hasMethod(evs, "tools/call")
		}, 30*time.Second, 50*time.Millisecond)
		stored := fmt.Sprint(evs)
		require.NotContains(t, stored, uncapturedMsg)
		require.NotContains(t, stored, secretToken)
	}
}
