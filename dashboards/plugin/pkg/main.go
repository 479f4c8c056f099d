// Command gpx_mcpwatch is mcpwatch's Grafana backend datasource plugin. Grafana starts it and
// talks to it over gRPC (hashicorp/go-plugin); it answers Grafana's queries by calling the
// mcpwatch HTTP API.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/mcpwatch/mcpwatch/dashboards/plugin/pkg/plugin"
)

func main() {
	// Manage serves until Grafana stops the process, creating one Datasource per configured
	// data source (and a new one whenever its settings change).
	if err := datasource.Manage(plugin.ID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("plugin stopped", "err", err)
		os.Exit(1)
	}
}
