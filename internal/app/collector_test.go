package app_test

import (
	"context"
	"crypto/tls"
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

	"github.com/mcpwatch/mcpwatch/collector/httptap"
	"github.com/mcpwatch/mcpwatch/collector/identity/identitytest"
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

// postAndConsume posts an event to the ingest URL with hc and waits for it on mcp.events.
func postAndConsume(t *testing.T, a *app.App, cfg app.Config, hc *http.Client) {
	t.Helper()
	ev := ingestEvent()
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	resp, err := hc.Post(a.IngestURL(), "application/x-ndjson", strings.NewReader(string(body)+"\n"))
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
	postAndConsume(t, a, cfg, http.DefaultClient)
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
	postAndConsume(t, a, cfg, http.DefaultClient)

	resp, err := http.Get(strings.TrimSuffix(a.IngestURL(), "/ingest/v1/events") + "/mcp")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestCollectorWithoutUpstreamsServesIngestOverMTLS: the ingest-only listener takes
// collector.http.tls as the tap does, so with client certificates required (which lets it listen
// beyond loopback without an ingest token) only a client with one gets an event in.
func TestCollectorWithoutUpstreamsServesIngestOverMTLS(t *testing.T) {
	dir := t.TempDir()
	ca := identitytest.NewCA(t, "agents-ca")
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "collector")
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = t.TempDir()
		c.Collector.HTTP.Listen = "127.0.0.1:0"
		c.Collector.HTTP.TLS = httptap.ListenerTLS{CertFile: certFile, KeyFile: keyFile,
			ClientCAFile: ca.WriteFile(t, dir, "agents-ca"), ClientAuth: httptap.ClientAuthRequire}
		c.Bus.Embedded.Port = freePort(t)
		return nil
	})
	require.NoError(t, err)
	a := startApp(t, cfg, app.TargetCollector)
	defer stopApp(t, a)
	require.Empty(t, a.TapAddr(), "no HTTP tap without upstreams")
	require.True(t, strings.HasPrefix(a.IngestURL(), "https://127.0.0.1:"), a.IngestURL())

	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	postAndConsume(t, a, cfg, client(ca.Client(t, "wrap", "").TLS))

	_, err = client().Post(a.IngestURL(), "application/x-ndjson", strings.NewReader("{}\n"))
	require.Error(t, err, "a client without a certificate is refused")
	require.ErrorContains(t, err, "certificate required")

	resp, err := http.Post("http://"+strings.TrimPrefix(a.IngestURL(), "https://"), "application/x-ndjson", strings.NewReader("{}\n"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP is not served")
}

// TestCollectorWithoutUpstreamsRefusesUnreadableTLS: a certificate the ingest-only listener
// cannot load stops the start, naming the field, rather than falling back to plain HTTP.
func TestCollectorWithoutUpstreamsRefusesUnreadableTLS(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = t.TempDir()
		c.Collector.HTTP.Listen = "127.0.0.1:0"
		c.Collector.HTTP.TLS = httptap.ListenerTLS{CertFile: missing, KeyFile: missing}
		c.Bus.Embedded.Port = freePort(t)
		return nil
	})
	require.NoError(t, err, "the files are read at start")
	a := app.New(cfg, []string{app.TargetCollector}, testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Start(ctx)
	require.ErrorContains(t, err, "collector.http.tls: cannot load TLS key pair")
	require.NoError(t, a.Shutdown(ctx))
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
