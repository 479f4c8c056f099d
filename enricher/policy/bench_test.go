package policy_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/enricher/policy"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// BenchmarkEngineApply is the enricher's per-event cost of the inventory join and the policy,
// with the deploy/ examples (4 rules, 3 tool_tags, 7 inventory entries).
func BenchmarkEngineApply(b *testing.B) {
	files := policy.Files{PolicyFile: "../../deploy/policy.example.yml", InventoryFile: "../../deploy/inventory.example.yml"}
	files.SetDefaults()
	g, err := policy.NewEngine(files, pipeline.Settings{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	require.NoError(b, err)
	// 1 KiB of arguments, checked by support-tools' constraints on query.
	sql := "SELECT id, name FROM customers WHERE note = '" + strings.Repeat("x", 900) + "'"
	args := fmt.Sprintf(`{"sql":%q,"limit":10}`, sql)
	for _, bc := range []struct {
		name string
		ev   schemas.Event
	}{
		{"allowed", schemas.Event{AgentID: "ci-1234", AgentSource: "mtls", ServerID: "github", Method: "tools/call", Target: "get_file"}},
		{"violation", schemas.Event{AgentID: "ci-1234", AgentSource: "mtls", ServerID: "github", Method: "tools/call", Target: "merge_pull_request"}},
		{"arguments_1KiB", schemas.Event{AgentID: "spiffe://corp.example/ns/support/sa/bot", AgentSource: "mtls", ServerID: "postgres-staging",
			Method: "tools/call", Target: "query", Content: &schemas.Content{Arguments: args}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var out []schemas.Anomaly
			for i := 0; b.Loop(); i++ {
				ev := bc.ev
				ev.ID, ev.Direction, ev.Kind, ev.ObservedAt = "e", schemas.ClientToServer, schemas.KindRequest, now
				out = g.Apply(&ev, now, out[:0])
			}
		})
	}
}
