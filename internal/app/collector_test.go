package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func ingestEvent() schemas.Event {
	return schemas.Event{
		ID: uuid.Must(uuid.NewV7()).String(), SchemaVersion: schemas.EventSchemaVersion,
		ObservedAt: time.Now().UTC(), CollectorID: "stdiotap@test", Source: schemas.SourceStdioTap,
		Transport: "stdio", AgentID: "ingest-agent", AgentSource: "client_info", ServerID: "files",
		Direction: schemas.ClientToServer, Kind: schemas.KindRequest, Method: "tools/call",
		Target: "read_file", Status: schemas.StatusOK,
	}
}

// postAndConsume posts an event to the ingest URL and waits for it on mcp.events.
func postAndConsume(t *testing.T, a *app.App, cfg app.Config) {
	t.Helper()
	ev := ingestEvent()
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	resp, err := http.Post(a.IngestURL(), "application/x-ndjson", strings.NewReader(string(body)+"\n"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var mu sync.Mutex
	var got []string
	c := bus.NewConsumer(a.Brokers(), cfg.Bus, bus.ConsumerConfig{Group: "ingest-check", Topics: []string{bus.TopicEvents}},
		func(_ context.Context, msgs []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				got = append(got, string(m.Value))
			}
			return nil
		}, pipeline.Settings{})
	require.NoError(t, c.Start(context.Background()))
	defer func() { require.NoError(t, c.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range got {
			if strings.Contains(v, ev.ID) {
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "the ingested event reaches mcp.events")
}

func TestCollectorServesIngestBesideTheTap(t *testing.T) {
	upstream := mcpServer(t)
	dataDir := t.TempDir()
	cfg := baseConfig(t, dataDir, upstream.URL, "http://127.0.0.1:1/hook")
	cfg.Bus.Embedded.Port = freePort(t)
	a := startApp(t, cfg, app.TargetCollector)
	defer stopApp(t, a)
	require.NotEmpty(t, a.TapAddr())
	require.Equal(t, "http://"+a.TapAddr()+"/ingest/v1/events", a.IngestURL(), "one listener for MCP and ingest")
	require.DirExists(t, filepath.Join(dataDir, "spool", "events"), "events are spooled under the data dir")
	postAndConsume(t, a, cfg)
}

func TestCollectorWithoutUpstreamsServesIngestAlone(t *testing.T) {
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = t.TempDir()
		c.Collector.HTTP.Listen = "127.0.0.1:0"
		c.Bus.Embedded.Port = freePort(t)
		return nil
	})
	require.NoError(t, err)
	a := startApp(t, cfg, app.TargetCollector)
	defer stopApp(t, a)
	require.Empty(t, a.TapAddr(), "no HTTP tap without upstreams")
	require.NotEmpty(t, a.IngestURL())
	postAndConsume(t, a, cfg)

	resp, err := http.Get(strings.TrimSuffix(a.IngestURL(), "/ingest/v1/events") + "/mcp")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestCollectorWithIngestDisabled(t *testing.T) {
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = t.TempDir()
		c.Collector.HTTP.Listen = "127.0.0.1:0"
		c.Collector.Ingest.Disabled = true
		c.Bus.Embedded.Port = freePort(t)
		return nil
	})
	require.NoError(t, err)
	a := startApp(t, cfg, app.TargetCollector)
	defer stopApp(t, a)
	require.Empty(t, a.IngestURL())
}
