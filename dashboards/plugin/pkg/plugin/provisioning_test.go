package plugin

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const (
	datasourcesFile = "../../../../deploy/grafana/datasources/mcpwatch.yaml"
	providersFile   = "../../../../deploy/grafana/dashboards/mcpwatch.yaml"
	pluginJSONFile  = "../../src/plugin.json"
)

type provisionedDatasource struct {
	Name           string            `yaml:"name"`
	UID            string            `yaml:"uid"`
	Type           string            `yaml:"type"`
	Access         string            `yaml:"access"`
	URL            string            `yaml:"url"`
	JSONData       map[string]any    `yaml:"jsonData"`
	SecureJSONData map[string]string `yaml:"secureJsonData"`
}

// TestProvisionedDatasources loads deploy/grafana/datasources/mcpwatch.yaml as Grafana would
// (environment variables expanded) and checks that the plugin accepts it and that the
// dashboards' data source variables default to the provisioned uids.
func TestProvisionedDatasources(t *testing.T) {
	raw, err := os.ReadFile(datasourcesFile)
	require.NoError(t, err)
	env := map[string]string{"MCPWATCH_API_URL": fixtureAPI, "MCPWATCH_API_TOKEN": testToken, "PROMETHEUS_URL": "http://127.0.0.1:9090"}
	// Grafana expands variables in values; comments (which mention ${VAR}) are dropped first.
	var lines []string
	for l := range strings.SplitSeq(string(raw), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	expanded := os.Expand(strings.Join(lines, "\n"), func(k string) string {
		v, ok := env[k]
		require.True(t, ok, "provisioning uses an undocumented variable %s", k)
		return v
	})
	var file struct {
		APIVersion  int                     `yaml:"apiVersion"`
		Datasources []provisionedDatasource `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(expanded), &file))
	require.Equal(t, 1, file.APIVersion)
	byType := map[string]provisionedDatasource{}
	for _, ds := range file.Datasources {
		byType[ds.Type] = ds
	}
	mine, ok := byType[ID]
	require.True(t, ok, "the plugin's data source is provisioned")
	prom, ok := byType["prometheus"]
	require.True(t, ok, "a Prometheus data source is provisioned for the pipeline dashboard")
	require.Equal(t, "proxy", mine.Access)

	// The dashboards' variables default to these uids.
	for _, db := range loadDashboards(t) {
		var m struct {
			Templating struct {
				List []struct {
					Name    string `json:"name"`
					Type    string `json:"type"`
					Query   any    `json:"query"`
					Current struct {
						Value string `json:"value"`
					} `json:"current"`
				} `json:"list"`
			} `json:"templating"`
		}
		require.NoError(t, json.Unmarshal(db.raw, &m))
		for _, v := range m.Templating.List {
			switch {
			case v.Type == "datasource" && v.Query == ID:
				require.Equal(t, mine.UID, v.Current.Value, "%s: variable %s", db.file, v.Name)
			case v.Type == "datasource" && v.Query == "prometheus":
				require.Equal(t, prom.UID, v.Current.Value, "%s: variable %s", db.file, v.Name)
			}
		}
	}

	// The plugin takes the provisioned settings as they arrive from Grafana.
	jsonData, err := json.Marshal(mine.JSONData)
	require.NoError(t, err)
	inst, err := NewDatasource(t.Context(), backend.DataSourceInstanceSettings{
		UID: mine.UID, Name: mine.Name, Type: mine.Type, URL: mine.URL, JSONData: jsonData,
		DecryptedSecureJSONData: mine.SecureJSONData,
	})
	require.NoError(t, err)
	d := inst.(*Datasource)
	defer d.Dispose()
	res, err := d.CheckHealth(t.Context(), &backend.CheckHealthRequest{})
	require.NoError(t, err)
	require.Equal(t, backend.HealthStatusOk, res.Status, res.Message)
}

func TestProvisionedDashboards(t *testing.T) {
	raw, err := os.ReadFile(providersFile)
	require.NoError(t, err)
	var file struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Folder  string `yaml:"folder"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &file))
	require.Equal(t, 1, file.APIVersion)
	require.Len(t, file.Providers, 1)
	require.Equal(t, "file", file.Providers[0].Type)
	require.NotEmpty(t, file.Providers[0].Options.Path)
}

// TestPluginJSON checks plugin.json against what the backend and Grafana expect.
func TestPluginJSON(t *testing.T) {
	raw, err := os.ReadFile(pluginJSONFile)
	require.NoError(t, err)
	var p struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		Backend    bool   `json:"backend"`
		Alerting   bool   `json:"alerting"`
		Metrics    bool   `json:"metrics"`
		Executable string `json:"executable"`
	}
	require.NoError(t, json.Unmarshal(raw, &p))
	require.Equal(t, "datasource", p.Type)
	require.Equal(t, ID, p.ID, "the id main.go serves under")
	require.Regexp(t, `^[a-z0-9]+-[a-z0-9]+-datasource$`, p.ID, "create-plugin's <org>-<name>-<type> form")
	require.True(t, p.Backend)
	require.True(t, p.Alerting, "time series answers are alerting-ready")
	require.True(t, p.Metrics)
	require.Equal(t, "gpx_mcpwatch", p.Executable, "build.sh and the launch test name the binary gpx_mcpwatch_<os>_<arch>")
}
