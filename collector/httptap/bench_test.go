package httptap

import (
	"context"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkTapToolsCall measures sequential tools/call round trips between a go-sdk client and
// server, directly and through the tap; compare the two sub-benchmarks' ns/op and allocs/op.
func BenchmarkTapToolsCall(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts mcp.StreamableHTTPOptions
	}{
		{"sse", mcp.StreamableHTTPOptions{}},
		{"json", mcp.StreamableHTTPOptions{JSONResponse: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			up := startMCPUpstream(b, &mode.opts)
			_, _, tapURL := startTap(b, Config{Upstreams: []Upstream{{Name: "default", URL: up.URL}}})
			for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"tap", tapURL + "/mcp"}} {
				b.Run(target.name, func(b *testing.B) {
					cs, _ := connect(b, target.url, "")
					defer cs.Close()
					params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello"}}
					ctx := context.Background()
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if _, err := cs.CallTool(ctx, params); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
