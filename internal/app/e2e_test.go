package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/app"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// mcpServer is a real MCP server (the official Go SDK) over Streamable HTTP with an echo tool.
func mcpServer(t *testing.T) *httptest.Server {
	t.Helper()
	type echoArgs struct {
		Message string `json:"message"`
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "e2e-server", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its input"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "delete_all", Description: "Deletes everything"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// webhookReceiver records the anomalies posted to it, by delivery id.
type webhookReceiver struct {
	mu         sync.Mutex
	deliveries map[string]schemas.Anomaly
	srv        *httptest.Server
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{deliveries: map[string]schemas.Anomaly{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a schemas.Anomaly
		if err := json.Unmarshal(body, &a); err != nil || schemas.ValidateAnomalyJSON(body) != nil {
			http.Error(rw, "bad anomaly", http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.deliveries[r.Header.Get(alerting.HeaderDelivery)] = a
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookReceiver) find(kind, subject string) (schemas.Anomaly, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.deliveries {
		if a.Kind == kind && a.Subject == subject {
			return a, true
		}
	}
	return schemas.Anomaly{}, false
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// baseConfig is a test configuration: loopback ports chosen by the OS, fast flushes.
func baseConfig(t *testing.T, dataDir, upstream, webhook string) app.Config {
	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = dataDir
		c.Collector.HTTP.Listen = "127.0.0.1:0"
		c.API.Listen = "127.0.0.1:0"
		// Not the default port: a developer's own mcpwatch may be running on it.
		c.Bus.Embedded.Port = freePort(t)
		c.Writer.FlushInterval = 20 * time.Millisecond
		c.Alerting.Webhooks = []alerting.WebhookConfig{{Name: "soc", URL: webhook}}
		c.Alerting.Retry.InitialBackoff = 20 * time.Millisecond
		c.Alerting.Retry.MaxBackoff = 100 * time.Millisecond
		return c.AddUpstream(upstream)
	})
	require.NoError(t, err)
	return cfg
}

func startApp(t *testing.T, cfg app.Config, targets ...string) *app.App {
	t.Helper()
	if len(targets) == 0 {
		targets = app.AllTargets
	}
	a := app.New(cfg, targets, testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.Start(ctx))
	return a
}

func stopApp(t *testing.T, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, a.Shutdown(ctx), "a second Shutdown is a no-op")
}

// agentSession is a real MCP client (the official Go SDK) connected through the tap.
func agentSession(t *testing.T, tapAddr, agent string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: agent, Version: "2.1.0"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: "http://" + tapAddr + "/mcp"}, nil)
	require.NoError(t, err)
	return cs
}

func callEcho(ctx context.Context, cs *mcp.ClientSession, msg string) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}})
	if err != nil {
		return err
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != msg {
		return fmt.Errorf("echo answered %q, want %q", got, msg)
	}
	return nil
}

// checkPipeline drives one agent session through the tap and asserts what every later stage
// made of it: stored events with agent, tool, sizes, latency and status; a session summary; a
// first-seen-tool anomaly in the store and at the webhook.
func checkPipeline(t *testing.T, tapAddr, apiAddr string, hook *webhookReceiver) {
	t.Helper()
	ctx := context.Background()
	cs := agentSession(t, tapAddr, "e2e-agent")
	_, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, callEcho(ctx, cs, "hello through the tap"))
	sessionID := cs.ID()
	require.NotEmpty(t, sessionID)
	require.NoError(t, cs.Close())

	client, err := api.NewClient("http://"+apiAddr, "", nil)
	require.NoError(t, err)
	var events []schemas.Event
	require.Eventually(t, func() bool {
		events, err = client.SessionEvents(ctx, sessionID, 100)
		return err == nil && hasMethod(events, "tools/call")
	}, 30*time.Second, 50*time.Millisecond, "the tools/call reaches the store")

	call := events[indexOf(events, "tools/call")]
	require.Equal(t, "e2e-agent", call.AgentID)
	require.Equal(t, "client_info", call.AgentSource)
	require.Equal(t, "e2e-agent", call.ClientName)
	require.Equal(t, "2.1.0", call.ClientVersion)
	require.Equal(t, "default", call.ServerID)
	require.Equal(t, "echo", call.Target)
	require.Equal(t, schemas.StatusOK, call.Status)
	require.Equal(t, schemas.KindRequest, call.Kind)
	require.Equal(t, schemas.ClientToServer, call.Direction)
	require.Positive(t, call.RequestBytes)
	require.Positive(t, call.ResponseBytes)
	require.Positive(t, call.LatencyMicros)
	require.Equal(t, `{"message":"string"}`, call.ArgsShape)
	require.Equal(t, jsonrpc.Hash([]byte(`{"message":"hello through the tap"}`)), call.ArgsHash)
	require.NotContains(t, fmt.Sprint(call), "hello through the tap", "argument values are never stored")
	require.True(t, hasMethod(events, "initialize"))
	require.True(t, hasMethod(events, "tools/list"))

	sess, err := client.Session(ctx, sessionID)
	require.NoError(t, err)
	require.Equal(t, "e2e-agent", sess.AgentID)
	require.Equal(t, []string{"echo"}, sess.Tools)

	require.Eventually(t, func() bool {
		as, err := client.Anomalies(ctx, store.AnomalyQuery{AgentID: "e2e-agent", Kind: "new_tool"})
		return err == nil && len(as) == 1 && as[0].Subject == "echo"
	}, 30*time.Second, 50*time.Millisecond, "a first-time tool becomes a stored anomaly")
	require.Eventually(t, func() bool {
		a, ok := hook.find("new_tool", "echo")
		return ok && a.AgentID == "e2e-agent" && len(a.EvidenceEventIDs) == 1 && a.EvidenceEventIDs[0] == call.ID
	}, 30*time.Second, 50*time.Millisecond, "the webhook receives the anomaly with its evidence")
}

func hasMethod(events []schemas.Event, method string) bool { return indexOf(events, method) >= 0 }

func indexOf(events []schemas.Event, method string) int {
	for i, e := range events {
		if e.Method == method {
			return i
		}
	}
	return -1
}

// TestEndToEndEmbedded runs every role in one process on the embedded defaults (kfake broker
// and SQLite under the data dir), then restarts mid-stream on the same data dir.
func TestEndToEndEmbedded(t *testing.T) {
	upstream := mcpServer(t)
	hook := newWebhookReceiver(t)
	dataDir := t.TempDir()
	cfg := baseConfig(t, dataDir, upstream.URL, hook.srv.URL)

	a := startApp(t, cfg)
	checkPipeline(t, a.TapAddr(), a.APIAddr(), hook)

	// Calls keep flowing while mcpwatch stops and starts again on the same data dir and ports.
	cfg.Collector.HTTP.Listen = a.TapAddr()
	cfg.API.Listen = a.APIAddr()
	var accepted atomic.Int64
	var wantHashes sync.Map
	stopCalls := make(chan struct{})
	callsDone := make(chan struct{})
	go func() {
		defer close(callsDone)
		for i := 0; ; i++ {
			select {
			case <-stopCalls:
				return
			default:
			}
			// A fresh session each round: a restarted tap is new to the client anyway.
			client := mcp.NewClient(&mcp.Implementation{Name: "restart-agent", Version: "1"}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + cfg.Collector.HTTP.Listen + "/mcp"}, nil)
			if err == nil {
				for j := 0; j < 5; j++ {
					msg := fmt.Sprintf("call-%d-%d", i, j)
					if callEcho(ctx, cs, msg) != nil {
						break
					}
					accepted.Add(1)
					wantHashes.Store(jsonrpc.Hash([]byte(`{"message":"`+msg+`"}`)), true)
				}
				_ = cs.Close()
			} else {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}
	}()
	require.Eventually(t, func() bool { return accepted.Load() >= 20 }, 30*time.Second, 10*time.Millisecond)
	stopApp(t, a)
	before := accepted.Load()
	time.Sleep(100 * time.Millisecond)
	a = startApp(t, cfg)
	defer stopApp(t, a)
	require.Eventually(t, func() bool { return accepted.Load() >= before+20 }, 30*time.Second, 10*time.Millisecond, "calls flow again after the restart")
	close(stopCalls)
	<-callsDone

	// Every call the tap answered is stored after the restart: none lost.
	client, err := api.NewClient("http://"+a.APIAddr(), "", nil)
	require.NoError(t, err)
	want := 0
	wantHashes.Range(func(any, any) bool { want++; return true })
	require.EqualValues(t, accepted.Load(), want)
	require.Eventually(t, func() bool {
		got := map[string]bool{}
		sessions, err := client.Sessions(context.Background(), store.SessionQuery{AgentID: "restart-agent", Limit: store.MaxLimit})
		if err != nil {
			return false
		}
		for _, s := range sessions {
			evs, err := client.SessionEvents(context.Background(), s.ID, 1000)
			if err != nil {
				return false
			}
			for _, e := range evs {
				if e.Method == "tools/call" && e.Status == schemas.StatusOK {
					got[e.ArgsHash] = true
				}
			}
		}
		missing := 0
		wantHashes.Range(func(k, _ any) bool {
			if !got[k.(string)] {
				missing++
			}
			return true
		})
		if missing > 0 {
			t.Logf("%d of %d accepted calls not stored yet", missing, want)
		}
		return missing == 0
	}, 30*time.Second, 200*time.Millisecond)

	// The anomaly raised before the restart survived it, and the baseline did too: echo is no
	// longer new for e2e-agent, so calling it again raises nothing new.
	as, err := client.Anomalies(context.Background(), store.AnomalyQuery{AgentID: "e2e-agent"})
	require.NoError(t, err)
	require.Len(t, as, 1)
}

// TestEndToEndSplitRoles runs each role as its own App against one kfake broker and the real
// ClickHouse server, as a multi-node deployment would.
func TestEndToEndSplitRoles(t *testing.T) {
	chAddr := os.Getenv("MCPWATCH_TEST_CLICKHOUSE_ADDR")
	if chAddr == "" {
		if os.Getenv("MCPWATCH_REQUIRE_CLICKHOUSE") == "1" {
			t.Fatal("MCPWATCH_REQUIRE_CLICKHOUSE=1 but MCPWATCH_TEST_CLICKHOUSE_ADDR is unset")
		}
		t.Skip("MCPWATCH_TEST_CLICKHOUSE_ADDR is unset; start a server with scripts/clickhouse.sh")
	}
	broker, err := bus.StartEmbedded(0, t.TempDir(), testLogger(t))
	require.NoError(t, err)
	defer broker.Close()

	upstream := mcpServer(t)
	hook := newWebhookReceiver(t)
	cfg := baseConfig(t, t.TempDir(), upstream.URL, hook.srv.URL)
	cfg.Bus.Brokers = broker.Brokers()
	cfg.Store.Backend = store.BackendClickHouse
	cfg.Store.ClickHouse.Addr = []string{chAddr}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg.Store.ClickHouse.Database = "mcpwatch_e2e_" + hex.EncodeToString(b)
	require.NoError(t, cfg.Validate())

	var apps []*app.App
	for _, target := range app.AllTargets {
		apps = append(apps, startApp(t, cfg, target))
	}
	defer func() {
		for i := len(apps) - 1; i >= 0; i-- {
			stopApp(t, apps[i])
		}
		dropDatabase(t, cfg.Store)
	}()
	var tapAddr, apiAddr string
	for _, a := range apps {
		tapAddr += a.TapAddr()
		apiAddr += a.APIAddr()
	}
	require.NotEmpty(t, tapAddr)
	require.NotEmpty(t, apiAddr)
	checkPipeline(t, tapAddr, apiAddr, hook)
}

func dropDatabase(t *testing.T, cfg store.Config) {
	t.Helper()
	if !strings.HasPrefix(cfg.ClickHouse.Database, "mcpwatch_e2e_") {
		return
	}
	st, err := store.Open(context.Background(), cfg, pipeline.Settings{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.(*store.ClickHouse).DropDatabase(context.Background()))
}
