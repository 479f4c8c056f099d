package inspect_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/enricher/inspect"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// sharedData returns dir under ../shared/data (or $env), skipping the test when it is
// missing, and failing it in CI.
func sharedData(t *testing.T, env, dir string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join("..", "..", "..", "shared", "data", dir)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (set %s): %v", p, env, err)
		}
		t.Skipf("%s not found (set %s): %v", p, env, err)
	}
	return p
}

// TestRecordedTrafficIsClean inspects every request's params and every result in traffic
// recorded between real MCP clients and servers (tool lists with long descriptions, file
// contents, base64 images, resources): ordinary traffic raises no flag.
func TestRecordedTrafficIsClean(t *testing.T) {
	dir := sharedData(t, "MCPWATCH_CAPTURES_DIR", "mcp-captures")
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	in := newInspector(t, inspect.Config{})
	inspected := 0
	for _, file := range files {
		f, err := os.Open(file)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var line struct {
				Msg, Body, Data json.RawMessage
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
			if len(line.Data) > 0 && line.Data[0] == '"' { // an SSE event's data
				var s string
				require.NoError(t, json.Unmarshal(line.Data, &s))
				line.Data = json.RawMessage(s)
			}
			for _, raw := range []json.RawMessage{line.Msg, line.Body, line.Data} {
				var rpc struct{ Params, Result json.RawMessage }
				if json.Unmarshal(raw, &rpc) != nil || len(rpc.Params)+len(rpc.Result) == 0 {
					continue
				}
				ev := schemas.Event{Content: &schemas.Content{Arguments: string(rpc.Params), Result: string(rpc.Result)}}
				in.Event(&ev)
				require.Empty(t, ev.Flags, "%s: %s", filepath.Base(file), raw)
				inspected++
			}
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
	}
	require.Greater(t, inspected, 100)
}
