package main

//lint:file-ignore SA1019 sampling and roots are deprecated in 2026-07-28 but older revisions use them; the tap must observe them

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// npmPeers returns the node_modules directory scripts/test.sh installs the npm MCP peers into
// (MCPWATCH_NODE_MODULES). Without it the test skips, unless MCPWATCH_REQUIRE_NODE=1.
func npmPeers(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MCPWATCH_NODE_MODULES")
	_, nodeErr := exec.LookPath("node")
	switch {
	case dir != "" && nodeErr == nil:
		return dir
	case os.Getenv("MCPWATCH_REQUIRE_NODE") == "1":
		t.Fatalf("npm MCP peers required: MCPWATCH_NODE_MODULES=%q, node: %v (run make test)", dir, nodeErr)
	default:
		t.Skip("npm MCP peers not installed: set MCPWATCH_NODE_MODULES (make test does)")
	}
	return ""
}

// TestWrapServerEverything drives the npm reference server over stdio through `mcpwatch wrap`
// with the official Go SDK client: tools, resources, prompts, progress, and the server's own
// requests (roots, sampling) answered by the client. mcpwatch stores each operation.
func TestWrapServerEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mcpwatch binary")
	}
	modules := npmPeers(t)
	t.Setenv("MCPWATCH_TOKEN", "")
	rc := writeCollectorOnlyConfig(t, "")
	p := startMcpwatch(t, "run", "--config", rc.path, "--data-dir", filepath.Join(t.TempDir(), "data"))
	waitReady(t, rc.apiURL, p.exited, p.stderr)

	server := filepath.Join(modules, "@modelcontextprotocol", "server-everything", "dist", "index.js")
	var wrapStderr syncBuffer
	cmd := exec.Command(mcpwatchBinary(t), "wrap", "--mcpwatch", rc.collectorURL, "--spool-dir", t.TempDir(), "--",
		"node", server, "stdio")
	cmd.Stderr = &wrapStderr
	cmd.Dir = t.TempDir()
	client := mcp.NewClient(&mcp.Implementation{Name: "everything-agent", Version: "1.0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "test-model", Role: "assistant", Content: &mcp.TextContent{Text: "sampled"}}, nil
		},
	})
	client.AddRoots(&mcp.Root{URI: "file:///tmp/project", Name: "project"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	require.NoError(t, err, wrapStderr.String())

	tools, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, tools.Tools)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello everything"}})
	require.NoError(t, err)
	require.Equal(t, "Echo: hello everything", res.Content[0].(*mcp.TextContent).Text)
	sum, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 40}})
	require.NoError(t, err)
	require.Contains(t, sum.Content[0].(*mcp.TextContent).Text, "42")
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://resource/static/document/architecture.md"})
	require.NoError(t, err)
	_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "simple-prompt"})
	require.NoError(t, err)
	progress, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "trigger-long-running-operation",
		Arguments: map[string]any{"duration": 1, "steps": 2}, Meta: mcp.Meta{"progressToken": "p1"}})
	require.NoError(t, err)
	require.False(t, progress.IsError)
	sampled, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "trigger-sampling-request", Arguments: map[string]any{"prompt": "hi", "maxTokens": 10}})
	require.NoError(t, err)
	require.False(t, sampled.IsError)
	_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "no-such-tool", Arguments: map[string]any{}})
	require.NoError(t, cs.Close())

	var events []schemas.Event
	require.Eventually(t, func() bool {
		events, err = agentEvents(rc.apiURL, "everything-agent")
		return err == nil && len(findEvents(events, "tools/call", "no-such-tool")) == 1 &&
			len(findEvents(events, "sampling/createMessage", "")) == 1
	}, 30*time.Second, 100*time.Millisecond, "stored: %v", &events)

	sessionID := events[0].SessionID
	u, err := uuid.Parse(sessionID)
	require.NoError(t, err, "the session id wrap minted for the run")
	require.Equal(t, uuid.Version(7), u.Version())
	for _, ev := range events {
		require.Equal(t, schemas.SourceStdioTap, ev.Source)
		require.Equal(t, sessionID, ev.SessionID, ev.Method)
		require.Equal(t, "server-everything", ev.ServerID, "named after the package node runs")
		require.Equal(t, "everything-agent", ev.ClientName)
		require.Equal(t, "everything-agent", ev.AgentID, "without --agent, the client's name")
		require.Equal(t, "client_info", ev.AgentSource)
		require.Empty(t, ev.DeclaredAgent)
		require.Equal(t, "2025-11-25", ev.ProtocolVersion)
		require.NotEqual(t, schemas.StatusMalformed, ev.Status, "%+v", ev)
	}
	one := func(method, target string) schemas.Event {
		t.Helper()
		got := findEvents(events, method, target)
		require.Len(t, got, 1, "%s %s", method, target)
		return got[0]
	}
	for _, c := range []struct{ method, target string }{
		{"initialize", ""}, {"tools/list", ""}, {"tools/call", "echo"}, {"tools/call", "get-sum"},
		{"resources/read", "demo://resource/static/document/architecture.md"}, {"prompts/get", "simple-prompt"},
		{"tools/call", "trigger-long-running-operation"}, {"tools/call", "trigger-sampling-request"},
	} {
		ev := one(c.method, c.target)
		require.Equal(t, schemas.StatusOK, ev.Status, "%s %s", c.method, c.target)
		require.Equal(t, schemas.ClientToServer, ev.Direction)
		require.Positive(t, ev.ResponseBytes)
	}
	require.Equal(t, echoHash("hello everything"), one("tools/call", "echo").ArgsHash)
	require.Contains(t, []schemas.Status{schemas.StatusError, schemas.StatusToolError}, one("tools/call", "no-such-tool").Status)

	sampling := one("sampling/createMessage", "")
	require.Equal(t, schemas.ServerToClient, sampling.Direction)
	require.Equal(t, schemas.StatusOK, sampling.Status, "the server's request paired with the client's answer")
	roots := findEvents(events, "roots/list", "")
	require.NotEmpty(t, roots)
	for _, r := range roots {
		require.Equal(t, schemas.ServerToClient, r.Direction)
		require.Equal(t, schemas.StatusOK, r.Status)
	}
	progressEvents := findEvents(events, "notifications/progress", "")
	require.NotEmpty(t, progressEvents)
	require.Equal(t, schemas.ServerToClient, progressEvents[0].Direction)
	require.Equal(t, 0, p.terminate(t), p.stderr.String())
}
