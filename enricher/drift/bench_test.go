package drift_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/enricher/drift"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// BenchmarkObserve measures the tracker on the events it sees: a tools/call (not a list: the
// common case, which must cost nothing); an unchanged tools/list of 50 tools (about 15 KiB:
// the same text as the server's previous list, recognised by its hash); and parsing such a
// list when its text is new (canonical JSON and fingerprints of every tool).
func BenchmarkObserve(b *testing.B) {
	var tools []string
	for i := range 50 {
		tools = append(tools, fmt.Sprintf(`{"name":"tool_%02d","description":"Does thing %d with the given path and options.","inputSchema":{"type":"object","properties":{"path":{"type":"string","description":"Where"},"recursive":{"type":"boolean"},"limit":{"type":"integer","minimum":1}},"required":["path"]},"annotations":{"readOnlyHint":true}}`, i, i))
	}
	result := toolsResult("", tools...)
	b.Run("tools_call", func(b *testing.B) {
		tr := drift.New(nil, pipeline.Settings{})
		ev := &schemas.Event{AgentID: "a", ServerID: "s", Kind: schemas.KindRequest, Direction: schemas.ClientToServer,
			Status: schemas.StatusOK, Method: "tools/call", Target: "x", Content: &schemas.Content{Arguments: `{"q":"x"}`}}
		b.ReportAllocs()
		for b.Loop() {
			tr.Observe(ev)
		}
	})
	b.Run("tools_list_50_unchanged", func(b *testing.B) {
		tr := drift.New(nil, pipeline.Settings{})
		ev := list("a", "s", at(0), "", result)
		tr.Observe(ev)
		tr.TakeDefinitions()
		b.SetBytes(int64(len(result)))
		b.ReportAllocs()
		for b.Loop() {
			tr.Observe(ev)
		}
		if strings.Count(result, `"name"`) != 50 {
			b.Fatal("bad fixture")
		}
	})
	b.Run("tools_list_50_parse", func(b *testing.B) {
		b.SetBytes(int64(len(result)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := drift.ParseList("tools/list", []byte(result)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
