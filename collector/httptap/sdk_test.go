package httptap

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TestTapWithGoSDKPeers puts the tap between a real go-sdk client and server in each of the
// server's transport modes, and in each protocol revision the SDK speaks over Streamable HTTP,
// and checks both what the client got and what the tap emitted.
func TestTapWithGoSDKPeers(t *testing.T) {
	tests := []struct {
		name         string
		opts         mcp.StreamableHTTPOptions
		agent        string // agent header the client sends, if any
		version      string // the revision the client asks for, if not the SDK's default
		stateless    bool
		wantProtocol string
	}{
		{name: "sse", agent: "billing-bot", wantProtocol: "2025-11-25"},
		{name: "json response", opts: mcp.StreamableHTTPOptions{JSONResponse: true}, wantProtocol: "2025-11-25"},
		{name: "stateless", opts: mcp.StreamableHTTPOptions{Stateless: true}, stateless: true, wantProtocol: "2026-07-28"},
		{name: "2025-06-18", version: "2025-06-18", wantProtocol: "2025-06-18"},
		{name: "2025-03-26", version: "2025-03-26", wantProtocol: "2025-03-26"},
		{name: "2024-11-05", version: "2024-11-05", wantProtocol: "2024-11-05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now().UTC()
			up := startMCPUpstream(t, &tt.opts)
			_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "default", URL: up.URL + "/mcp"}}})

			var opts *mcp.ClientSessionOptions
			if tt.version != "" {
				opts = &mcp.ClientSessionOptions{ProtocolVersion: tt.version}
			}
			cs, _ := connectVersion(t, tapURL+"/mcp", tt.agent, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.Equal(t, tt.wantProtocol, cs.InitializeResult().ProtocolVersion, "the revision the peers agreed on")

			tools, err := cs.ListTools(ctx, nil)
			require.NoError(t, err)
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			require.ElementsMatch(t, []string{"echo", "fail", "roots"}, names)

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello tap"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			require.Equal(t, "Echo: hello tap", res.Content[0].(*mcp.TextContent).Text)

			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{}})
			require.NoError(t, err)
			require.True(t, res.IsError)

			sessionID := cs.ID()
			if tt.stateless {
				require.Empty(t, sessionID)
			} else {
				require.NotEmpty(t, sessionID)
			}
			require.NoError(t, cs.Close())

			wantAgent, wantSource := "test-agent", agentFromClientInfo
			if tt.agent != "" {
				wantAgent, wantSource = tt.agent, agentFromHeader
			}
			// checkCommon asserts what every event of this session carries.
			checkCommon := func(e schemas.Event) {
				t.Helper()
				u, err := uuid.Parse(e.ID)
				require.NoError(t, err)
				require.Equal(t, uuid.Version(7), u.Version())
				require.Equal(t, schemas.EventSchemaVersion, e.SchemaVersion)
				require.Equal(t, "test-tap", e.CollectorID)
				require.Equal(t, schemas.SourceHTTPTap, e.Source)
				require.Equal(t, "streamable_http", e.Transport)
				require.Equal(t, "default", e.ServerID)
				require.Empty(t, e.Flags, "the SDK's Mcp-Method and Mcp-Name agree with its bodies")
				require.Equal(t, time.UTC, e.ObservedAt.Location())
				require.False(t, e.ObservedAt.Before(begin), "observed_at %s before the test began", e.ObservedAt)
				require.Equal(t, "test-agent", e.ClientName)
				require.Equal(t, "1.0", e.ClientVersion)
				require.Equal(t, wantAgent, e.AgentID)
				require.Equal(t, wantSource, e.AgentSource)
				require.Equal(t, tt.agent, e.DeclaredAgent)
			}

			echo := rec.waitFor(t, "tools/call echo", func(e schemas.Event) bool { return e.Target == "echo" })
			checkCommon(echo)
			require.Equal(t, schemas.ClientToServer, echo.Direction)
			require.Equal(t, schemas.KindRequest, echo.Kind)
			require.Equal(t, "tools/call", echo.Method)
			require.Equal(t, schemas.StatusOK, echo.Status)
			if tt.stateless {
				sessionID = echo.SessionID // stitched by the tap; the other events must share it
				require.NotEmpty(t, sessionID)
			}
			require.Equal(t, sessionID, echo.SessionID)
			require.Equal(t, tt.wantProtocol, echo.ProtocolVersion)
			require.NotEmpty(t, echo.JSONRPCID)
			require.Positive(t, echo.LatencyMicros)
			require.Positive(t, echo.RequestBytes)
			require.Positive(t, echo.ResponseBytes)
			require.Equal(t, `{"message":"string"}`, echo.ArgsShape)
			require.Equal(t, jsonrpc.Hash([]byte(`{"message":"hello tap"}`)), echo.ArgsHash)
			require.Len(t, echo.ResultHash, 32)

			fail := rec.waitFor(t, "tools/call fail", func(e schemas.Event) bool { return e.Target == "fail" })
			checkCommon(fail)
			require.Equal(t, schemas.StatusToolError, fail.Status)
			require.Zero(t, fail.ErrorCode)
			require.Equal(t, sessionID, fail.SessionID)

			list := rec.waitFor(t, "tools/list", byMethod("tools/list"))
			checkCommon(list)
			require.Equal(t, schemas.StatusOK, list.Status)
			require.Positive(t, list.ResponseBytes)
			require.NotEqual(t, echo.JSONRPCID, list.JSONRPCID)
			require.Equal(t, sessionID, list.SessionID)

			if tt.stateless {
				disc := rec.waitFor(t, "server/discover", byMethod("server/discover"))
				checkCommon(disc)
				require.Equal(t, schemas.StatusOK, disc.Status)
				require.Equal(t, sessionID, disc.SessionID, "stitched into the same session")
				require.Empty(t, rec.matching(byMethod("initialize")))
			} else {
				init := rec.waitFor(t, "initialize", byMethod("initialize"))
				checkCommon(init)
				require.Equal(t, schemas.StatusOK, init.Status)
				require.Equal(t, sessionID, init.SessionID, "the session id the server assigned in the initialize response")
				require.Equal(t, tt.wantProtocol, init.ProtocolVersion)
				require.Positive(t, init.LatencyMicros)

				initd := rec.waitFor(t, "notifications/initialized", byMethod("notifications/initialized"))
				checkCommon(initd)
				require.Equal(t, schemas.KindNotification, initd.Kind)
				require.Equal(t, schemas.ClientToServer, initd.Direction)
				require.Equal(t, schemas.StatusOK, initd.Status)
				require.Equal(t, sessionID, initd.SessionID)
				require.Empty(t, initd.JSONRPCID)
			}

			// Nothing was misunderstood or left hanging, and every event has its own id.
			ids := map[string]bool{}
			for _, e := range rec.all() {
				require.NotEqual(t, schemas.StatusMalformed, e.Status, "malformed: %+v", e)
				require.NotEqual(t, schemas.StatusTimeout, e.Status, "timeout: %+v", e)
				require.False(t, ids[e.ID])
				ids[e.ID] = true
			}

			// The upstream saw its own host, as its DNS-rebinding protection requires.
			upHost := must(url.Parse(up.URL)).Host
			require.NotEmpty(t, up.seenHosts())
			for _, h := range up.seenHosts() {
				require.Equal(t, upHost, h)
			}
		})
	}
}

// TestTapServerInitiatedTraffic checks server-to-client messages on a request's SSE stream:
// a progress notification, and a roots/list request paired with the client's answering POST.
func TestTapServerInitiatedTraffic(t *testing.T) {
	up := startMCPUpstream(t, &mcp.StreamableHTTPOptions{})
	_, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "files", URL: up.URL}}})
	cs, _ := connect(t, tapURL+"/mcp/files", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	params := &mcp.CallToolParams{Name: "roots", Arguments: map[string]any{}}
	params.SetProgressToken("tok-1")
	res, err := cs.CallTool(ctx, params)
	require.NoError(t, err)
	require.Equal(t, "1 roots", res.Content[0].(*mcp.TextContent).Text)
	sessionID := cs.ID()
	require.NoError(t, cs.Close())

	progress := rec.waitFor(t, "notifications/progress", byMethod("notifications/progress"))
	require.Equal(t, schemas.ServerToClient, progress.Direction)
	require.Equal(t, schemas.KindNotification, progress.Kind)
	require.Equal(t, schemas.StatusOK, progress.Status)
	require.Equal(t, sessionID, progress.SessionID)
	require.Equal(t, "files", progress.ServerID)
	require.Equal(t, "test-agent", progress.AgentID)
	require.Positive(t, progress.RequestBytes)

	roots := rec.waitFor(t, "roots/list", byMethod("roots/list"))
	require.Equal(t, schemas.ServerToClient, roots.Direction)
	require.Equal(t, schemas.KindRequest, roots.Kind)
	require.Equal(t, schemas.StatusOK, roots.Status)
	require.Equal(t, sessionID, roots.SessionID)
	require.Positive(t, roots.LatencyMicros)
	require.Positive(t, roots.RequestBytes)
	require.Positive(t, roots.ResponseBytes, "the client's answer")
	require.Len(t, roots.ResultHash, 32)

	call := rec.waitFor(t, "tools/call roots", func(e schemas.Event) bool { return e.Method == "tools/call" && e.Target == "roots" })
	require.Equal(t, schemas.StatusOK, call.Status)
	require.Equal(t, call.JSONRPCID, progress.JSONRPCID, "progress is tied to its request by the token")
	require.Equal(t, "roots", progress.Target)
	require.GreaterOrEqual(t, call.LatencyMicros, roots.LatencyMicros, "the call waited for the roots answer")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
