package httptap

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TestTapWithGoSDKPeers puts the tap between a real go-sdk client and server in each of the
// server's transport modes, and in each protocol revision the SDK speaks over Streamable HTTP,
// and checks both what the client got and what the tap emitted.
func TestTapWithGoSDKPeers(t *testing.T) {
	// The revisions the SDK's client asks for by default: the stateless one, and when the server
	// cannot serve that, the newest sessionful one.
	const stateless, sessionful = "2026-07-28", "2025-11-25"
	tests := []struct {
		name           string
		opts           mcp.StreamableHTTPOptions
		serverVersions []string // the only revisions the server speaks, if set
		agent          string   // agent header the client sends, if any
		version        string   // the revision the client asks for, if not the SDK's default
		wantProtocol   string   // the revision the peers agree on
		// probeError is the code the server refuses the client's server/discover probe with (sent
		// when the client asks for the SDK's default revision and the server is stateful); 0: the
		// server answers it with the revisions it speaks, none of them stateless.
		probeError int
	}{
		{name: "sse", agent: "billing-bot", wantProtocol: sessionful},
		{name: "json response", opts: mcp.StreamableHTTPOptions{JSONResponse: true}, wantProtocol: sessionful},
		{name: "json response 2025-06-18", opts: mcp.StreamableHTTPOptions{JSONResponse: true}, version: "2025-06-18", wantProtocol: "2025-06-18"},
		{name: "json response 2024-11-05", opts: mcp.StreamableHTTPOptions{JSONResponse: true}, version: "2024-11-05", wantProtocol: "2024-11-05"},
		{name: "stateless", opts: mcp.StreamableHTTPOptions{Stateless: true}, wantProtocol: stateless},
		{name: "stateless json response", opts: mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}, agent: "batch-bot", wantProtocol: stateless},
		{name: "2025-06-18", version: "2025-06-18", wantProtocol: "2025-06-18"},
		{name: "2025-03-26", version: "2025-03-26", wantProtocol: "2025-03-26"},
		{name: "2024-11-05", version: "2024-11-05", wantProtocol: "2024-11-05"},
		// A stateless server answers a sessionful revision's initialize without an Mcp-Session-Id.
		{name: "stateless server 2025-06-18", opts: mcp.StreamableHTTPOptions{Stateless: true}, version: "2025-06-18", wantProtocol: "2025-06-18"},
		{name: "stateless server json response 2025-03-26", opts: mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true},
			agent: "ops-bot", version: "2025-03-26", wantProtocol: "2025-03-26"},
		// The server negotiates down from what the client asked for.
		{name: "server limited to 2025-03-26", serverVersions: []string{"2025-03-26"}, version: "2025-06-18", wantProtocol: "2025-03-26"},
		{name: "server limited, probe refused", serverVersions: []string{"2025-06-18", "2025-03-26"}, wantProtocol: "2025-06-18", probeError: -32022},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now().UTC()
			var wire wireLog
			srv := newMCPServerWith(&mcp.ServerOptions{SupportedProtocolVersions: tt.serverVersions})
			up := startSDKUpstream(t, srv, &tt.opts, &wire)
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

			hasSession := !tt.opts.Stateless           // the server assigns an Mcp-Session-Id
			discovered := tt.wantProtocol >= stateless // server/discover, not initialize, began it
			sessionID := cs.ID()
			if hasSession {
				require.NotEmpty(t, sessionID)
			} else {
				require.Empty(t, sessionID)
			}
			require.NoError(t, cs.Close())

			wantAgent, wantSource := "test-agent", agentFromClientInfo
			wantClient, wantClientVersion := "test-agent", "1.0"
			if !hasSession && !discovered {
				// Without a session id or _meta, nothing after initialize names the client.
				wantAgent, wantSource = identity.UnknownAgent, identity.SourceUnknown
				wantClient, wantClientVersion = "", ""
			}
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
				require.Equal(t, wantClient, e.ClientName, e.Method)
				require.Equal(t, wantClientVersion, e.ClientVersion, e.Method)
				require.Equal(t, wantAgent, e.AgentID, e.Method)
				require.Equal(t, wantSource, e.AgentSource, e.Method)
				require.Equal(t, tt.agent, e.DeclaredAgent, e.Method)
				require.Equal(t, tt.wantProtocol, e.ProtocolVersion, e.Method)
			}

			echo := rec.waitFor(t, "tools/call echo", func(e schemas.Event) bool { return e.Target == "echo" })
			checkCommon(echo)
			require.Equal(t, schemas.ClientToServer, echo.Direction)
			require.Equal(t, schemas.KindRequest, echo.Kind)
			require.Equal(t, "tools/call", echo.Method)
			require.Equal(t, schemas.StatusOK, echo.Status)
			if !hasSession {
				sessionID = echo.SessionID // stitched by the tap; the other events must share it
				require.NotEmpty(t, sessionID)
			}
			require.Equal(t, sessionID, echo.SessionID)
			require.NotEmpty(t, echo.JSONRPCID)
			require.Positive(t, echo.LatencyMicros)
			wire.requireSizes(t, echo)
			require.Equal(t, `{"message":"string"}`, echo.ArgsShape)
			require.Equal(t, jsonrpc.Hash([]byte(`{"message":"hello tap"}`)), echo.ArgsHash)
			require.Len(t, echo.ResultHash, 32)

			fail := rec.waitFor(t, "tools/call fail", func(e schemas.Event) bool { return e.Target == "fail" })
			checkCommon(fail)
			require.Equal(t, schemas.StatusToolError, fail.Status)
			require.Zero(t, fail.ErrorCode)
			require.Equal(t, sessionID, fail.SessionID)
			wire.requireSizes(t, fail)

			list := rec.waitFor(t, "tools/list", byMethod("tools/list"))
			checkCommon(list)
			require.Equal(t, schemas.StatusOK, list.Status)
			require.NotEqual(t, echo.JSONRPCID, list.JSONRPCID)
			require.Equal(t, sessionID, list.SessionID)
			wire.requireSizes(t, list)

			if discovered {
				disc := rec.waitFor(t, "server/discover", byMethod("server/discover"))
				checkCommon(disc)
				require.Equal(t, schemas.StatusOK, disc.Status)
				require.Equal(t, sessionID, disc.SessionID, "stitched into the same session")
				wire.requireSizes(t, disc)
				require.Empty(t, rec.matching(byMethod("initialize")))
			} else {
				init := rec.waitFor(t, "initialize", byMethod("initialize"))
				require.Equal(t, schemas.StatusOK, init.Status)
				require.Positive(t, init.LatencyMicros)
				wire.requireSizes(t, init)
				require.Equal(t, tt.wantProtocol, init.ProtocolVersion, "the revision the server answered, not the one asked for")
				require.Equal(t, "test-agent", init.ClientName)
				if hasSession {
					checkCommon(init)
					require.Equal(t, sessionID, init.SessionID, "the session id the server assigned in the initialize response")
				} else {
					// The stitching key includes the client's name, which only initialize carries
					// here (docs/identity.md), so it begins a stitched session of its own.
					require.NotEmpty(t, init.SessionID)
					require.NotEqual(t, sessionID, init.SessionID)
				}

				initd := rec.waitFor(t, "notifications/initialized", byMethod("notifications/initialized"))
				checkCommon(initd)
				require.Equal(t, schemas.KindNotification, initd.Kind)
				require.Equal(t, schemas.ClientToServer, initd.Direction)
				require.Equal(t, schemas.StatusOK, initd.Status)
				require.Equal(t, sessionID, initd.SessionID)
				require.Empty(t, initd.JSONRPCID)
				wire.requireSizes(t, initd)

				// Asking for the SDK's default revision, the client first probed with server/discover,
				// before any session existed.
				probes := rec.matching(byMethod("server/discover"))
				if tt.version != "" {
					require.Empty(t, probes)
				} else {
					require.Len(t, probes, 1)
					probe := probes[0]
					require.Equal(t, schemas.KindRequest, probe.Kind)
					require.Equal(t, stateless, probe.ProtocolVersion, "what the probe asked for")
					require.Equal(t, "test-agent", probe.ClientName, "from its _meta")
					require.Equal(t, wantAgent, probe.AgentID)
					require.NotEmpty(t, probe.SessionID, "stitched")
					require.NotEqual(t, sessionID, probe.SessionID, "sent before the session existed")
					wire.requireSizes(t, probe)
					if tt.probeError == 0 {
						require.Equal(t, schemas.StatusOK, probe.Status)
						require.Zero(t, probe.ErrorCode)
					} else {
						require.Equal(t, schemas.StatusError, probe.Status)
						require.Equal(t, tt.probeError, probe.ErrorCode, "the JSON-RPC code the server refused it with")
					}
				}
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
	var wire wireLog
	up := startSDKUpstream(t, newMCPServer(), &mcp.StreamableHTTPOptions{}, &wire)
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
	wire.requireSizes(t, progress)

	roots := rec.waitFor(t, "roots/list", byMethod("roots/list"))
	require.Equal(t, schemas.ServerToClient, roots.Direction)
	require.Equal(t, schemas.KindRequest, roots.Kind)
	require.Equal(t, schemas.StatusOK, roots.Status)
	require.Equal(t, sessionID, roots.SessionID)
	require.Positive(t, roots.LatencyMicros)
	wire.requireSizes(t, roots) // the server's request on the call's stream, the client's answering POST
	require.Len(t, roots.ResultHash, 32)

	call := rec.waitFor(t, "tools/call roots", func(e schemas.Event) bool { return e.Method == "tools/call" && e.Target == "roots" })
	require.Equal(t, schemas.StatusOK, call.Status)
	wire.requireSizes(t, call)
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
