package plugin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"
)

// syncBuffer collects the plugin's log lines, written from go-plugin's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLaunchedLikeGrafana builds the backend binary as `make plugin` does and starts it the way
// Grafana starts a backend plugin: hashicorp/go-plugin with Grafana's handshake (protocol 2,
// magic cookie grafana_plugin_type=datasource), gRPC only, the v2 plugin set. Over that
// connection it calls CheckHealth and QueryData with a data source's settings in the plugin
// context, as Grafana does, against the fixture's API.
func TestLaunchedLikeGrafana(t *testing.T) {
	bin := filepath.Join(t.TempDir(), fmt.Sprintf("gpx_mcpwatch_%s_%s", runtime.GOOS, runtime.GOARCH))
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the test builds the plugin with the go command")
	build := exec.Command(goTool, "build", "-o", bin, "github.com/mcpwatch/mcpwatch/dashboards/plugin/pkg")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	logs := &syncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GF_VERSION=12.3.0", "GF_EDITION=oss", "GF_PLUGIN_APP_CLIENT_SECRET=")
	client := goplugin.NewClient(&goplugin.ClientConfig{
		Cmd: cmd,
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: {
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
			"data":        &grpcplugin.DataGRPCPlugin{},
			"stream":      &grpcplugin.StreamGRPCPlugin{},
		}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: logs, Level: hclog.Trace}),
		StartTimeout:     time.Minute,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	require.NoError(t, err, "handshake; plugin log:\n%s", logs)
	require.Equal(t, grpcplugin.ProtocolVersion, client.NegotiatedVersion())
	rawData, err := rpc.Dispense("data")
	require.NoError(t, err)
	rawDiag, err := rpc.Dispense("diagnostics")
	require.NoError(t, err)
	dataClient := rawData.(grpcplugin.DataClient)
	diagClient := rawDiag.(grpcplugin.DiagnosticsClient)

	settings := func(token string) *backend.DataSourceInstanceSettings {
		return &backend.DataSourceInstanceSettings{
			ID: 7, UID: fmt.Sprintf("mcpwatch-%d", len(token)), Name: "mcpwatch", Type: ID, URL: fixtureAPI,
			JSONData: []byte(`{"timeout": 10}`), DecryptedSecureJSONData: map[string]string{TokenKey: token},
			Updated: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		}
	}
	pctx := func(token string) backend.PluginContext {
		return backend.PluginContext{Namespace: "default", PluginID: ID, DataSourceInstanceSettings: settings(token)}
	}

	health, err := diagClient.CheckHealth(t.Context(), &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pctx(testToken))})
	require.NoError(t, err)
	res := backend.FromProto().CheckHealthResponse(health)
	require.Equal(t, backend.HealthStatusOk, res.Status, res.Message)
	require.Contains(t, res.Message, "is ready")

	health, err = diagClient.CheckHealth(t.Context(), &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pctx("wrong-" + testToken))})
	require.NoError(t, err)
	res = backend.FromProto().CheckHealthResponse(health)
	require.Equal(t, backend.HealthStatusError, res.Status)
	require.Contains(t, res.Message, "rejected the token")

	req := &backend.QueryDataRequest{PluginContext: pctx(testToken), Queries: []backend.DataQuery{
		dataQuery(t, "rate", QueryAgentRate, `{"agent": "research-agent"}`, exfilRange, time.Minute, 48),
		dataQuery(t, "anomalies", QueryAnomalies, `{"minSeverity": "high"}`, day2, 0, 0),
		dataQuery(t, "bad", QueryTimeSeries, `{"metric": "bytes"}`, day2, 0, 0),
	}}
	protoResp, err := dataClient.QueryData(t.Context(), backend.ToProto().QueryDataRequest(req))
	require.NoError(t, err)
	resp, err := backend.FromProto().QueryDataResponse(protoResp)
	require.NoError(t, err)

	rate := resp.Responses["rate"]
	require.NoError(t, rate.Error)
	require.Len(t, rate.Frames, 1)
	require.Equal(t, []string{"time", "observed", "expected", "lower", "upper"}, fieldNames(rate.Frames[0]))
	n, err := rate.Frames[0].RowLen()
	require.NoError(t, err)
	require.Equal(t, 48, n)
	anomalies := resp.Responses["anomalies"]
	require.NoError(t, anomalies.Error)
	n, err = anomalies.Frames[0].RowLen()
	require.NoError(t, err)
	require.Equal(t, 3, n, "research-agent's three high and critical anomalies")
	require.ErrorContains(t, resp.Responses["bad"].Error, `metric: "bytes" is not one of`)
	require.Equal(t, backend.StatusBadRequest, resp.Responses["bad"].Status)

	client.Kill()
	require.True(t, client.Exited())
	require.NotContains(t, logs.String(), testToken, "the token never reaches the plugin's logs")
}

func fieldNames(f *data.Frame) []string {
	names := make([]string, len(f.Fields))
	for i, fl := range f.Fields {
		names[i] = fl.Name
	}
	return names
}
