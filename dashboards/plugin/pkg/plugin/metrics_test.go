package plugin

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/internal/app"
)

// metricRE finds mcpwatch metric names in PromQL.
var metricRE = regexp.MustCompile(`\bmcpwatch_[a-z0-9_]+\b`)

// dashboardMetrics returns the metric names the Prometheus panels query.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, db := range loadDashboards(t) {
		for _, p := range allPanels(db.Panels) {
			for _, tg := range p.Targets {
				ds := tg.datasource()
				if ds.Type != "prometheus" {
					continue
				}
				require.Equal(t, "${prom}", ds.UID, "panel %q: use the prom variable, not a fixed uid", p.Title)
				expr, _ := tg["expr"].(string)
				found := metricRE.FindAllString(expr, -1)
				require.NotEmpty(t, found, "panel %q: %q names no mcpwatch metric", p.Title, expr)
				names = append(names, found...)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// scrapeFamilies returns the series names in a Prometheus text exposition (a histogram's or
// summary's family also gives _bucket, _sum and _count) and the label names each one's samples
// carry.
func scrapeFamilies(t *testing.T, url string) (map[string]bool, map[string]map[string]bool) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out, labels := map[string]bool{}, map[string]map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "#" && f[1] == "TYPE":
			out[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					out[f[2]+s] = true
				}
			}
		case len(f) >= 2 && f[0] != "#":
			name, rest, _ := strings.Cut(f[0], "{")
			if labels[name] == nil {
				labels[name] = map[string]bool{}
			}
			for _, m := range labelRE.FindAllStringSubmatch(rest, -1) {
				labels[name][m[1]] = true
			}
		}
	}
	require.NoError(t, sc.Err())
	return out, labels
}

// labelRE finds label names in a sample's {…}; byRE finds PromQL's by (…) and legendRE a legend's
// {{label}}.
var (
	labelRE  = regexp.MustCompile(`(\w+)="`)
	byRE     = regexp.MustCompile(`\bby \(([^)]*)\)`)
	legendRE = regexp.MustCompile(`\{\{(\w+)\}\}`)
)

// TestPipelineDashboardMetrics checks that every metric the pipeline health dashboard queries
// is exposed by a real mcpwatch: every role started in one process (embedded broker, SQLite),
// a real MCP client calling a real MCP server through the tap, so that a new_tool anomaly is
// raised and alerted to one webhook that accepts it and one that is down (its alert is
// dead-lettered), and one request to an upstream that is down. Labelled counters only appear once they count something, which is why the
// traffic is needed. This proves the names exist and are spelt right; it cannot prove a panel
// draws what its title says (no Prometheus or Grafana runs here).
func TestPipelineDashboardMetrics(t *testing.T) {
	want := dashboardMetrics(t)
	require.Contains(t, want, "mcpwatch_bus_consumer_lag_messages")

	upstream := mcpServer(t)
	accepted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(accepted.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	brokerPort := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	cfg, err := app.LoadConfig("", func(c *app.Config) error {
		c.DataDir = filepath.Join(t.TempDir(), "data")
		c.Bus.Embedded.Port = brokerPort
		c.Collector.HTTP.Listen = "127.0.0.1:0"
		c.API.Listen = "127.0.0.1:0"
		c.Writer.FlushInterval = 20 * time.Millisecond
		c.Alerting.Webhooks = []alerting.WebhookConfig{
			{Name: "soc", URL: accepted.URL},
			{Name: "down", URL: "http://" + closedPort(t) + "/hook"},
		}
		c.Alerting.Retry.MaxAttempts = 2
		c.Alerting.Retry.InitialBackoff = 10 * time.Millisecond
		c.Alerting.Retry.MaxBackoff = 20 * time.Millisecond
		c.Alerting.Retry.DeadLetterWhenUnavailable = true
		if err := c.AddUpstream(upstream.URL); err != nil {
			return err
		}
		return c.AddUpstream("gone=http://" + closedPort(t) + "/mcp")
	})
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a := app.New(cfg, app.AllTargets, logger)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, a.Start(ctx))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, a.Shutdown(ctx))
	}()

	client := mcp.NewClient(&mcp.Implementation{Name: "dashboard-agent", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + a.TapAddr() + "/mcp"}, nil)
	require.NoError(t, err)
	_, err = cs.ListTools(ctx, nil)
	require.NoError(t, err)
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
	require.NoError(t, err)
	require.NoError(t, cs.Close())
	// A call to an MCP server that is down counts an upstream error.
	resp, err := http.Post("http://"+a.TapAddr()+"/mcp/gone", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.GreaterOrEqual(t, resp.StatusCode, 500, "the tap answers for an unreachable upstream")

	var missing []string
	var labels map[string]map[string]bool
	require.Eventually(t, func() bool {
		var have map[string]bool
		have, labels = scrapeFamilies(t, "http://"+a.APIAddr()+"/metrics")
		missing = missing[:0]
		for _, name := range want {
			if !have[name] {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 100*time.Millisecond, "metrics the pipeline dashboard queries but mcpwatch does not expose: %v", &missing)

	// Every label a panel groups by or names in its legend is on the metrics it queries.
	for _, db := range loadDashboards(t) {
		for _, p := range allPanels(db.Panels) {
			for _, tg := range p.Targets {
				if tg.datasource().Type != "prometheus" {
					continue
				}
				expr, _ := tg["expr"].(string)
				legend, _ := tg["legendFormat"].(string)
				var used []string
				for _, m := range byRE.FindAllStringSubmatch(expr, -1) {
					for l := range strings.SplitSeq(m[1], ",") {
						used = append(used, strings.TrimSpace(l))
					}
				}
				for _, m := range legendRE.FindAllStringSubmatch(legend, -1) {
					used = append(used, m[1])
				}
				for _, name := range metricRE.FindAllString(expr, -1) {
					for _, l := range used {
						require.True(t, labels[name][l], "panel %q: %s has no label %q (it has %v)", p.Title, name, l, labels[name])
					}
				}
			}
		}
	}
}

// mcpServer is a real MCP server (the official Go SDK) over Streamable HTTP with an echo tool.
func mcpServer(t *testing.T) *httptest.Server {
	t.Helper()
	type echoArgs struct {
		Message string `json:"message"`
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "dashboard-test-server", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its input"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)
	return srv
}
