package httptap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// The tests in this file run the tap between real npm peers: the reference server
// (@modelcontextprotocol/server-everything), the TypeScript SDK client and the MCP Inspector
// CLI. scripts/test.sh installs them and sets MCPWATCH_NODE_MODULES; without it the tests
// skip, unless MCPWATCH_REQUIRE_NODE=1 makes that a failure.

// nodeModules returns the node_modules directory holding the npm peers.
func nodeModules(t *testing.T) string {
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

// syncBuffer collects a process's output.
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

// startEverything runs server-everything in mode (streamableHttp or sse) on a free loopback
// port and returns its base URL and its output.
func startEverything(t *testing.T, nm, mode string) (string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	preload, err := filepath.Abs("testdata/npm/loopback.cjs")
	require.NoError(t, err)
	cmd := exec.Command("node", "-r", preload,
		filepath.Join(nm, "@modelcontextprotocol/server-everything/dist/index.js"), mode)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOME="+t.TempDir())
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("server-everything %s output:\n%s", mode, out.String())
		}
	})

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			t.Fatalf("server-everything exited: %s", out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "server-everything did not listen on %s", addr)
	require.Equal(t, []string{"127.0.0.1"}, listeningAddrs(t, port), "server-everything must listen on loopback only")
	return "http://" + addr, &out
}

// announcedSessions waits until server-everything has logged n session ids (it logs each one it
// assigns, in either mode) and returns them.
func announcedSessions(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(?:Session initialized with ID: |Client Connected: +)(\S+)$`)
	var ids []string
	require.Eventually(t, func() bool {
		ids = ids[:0]
		for _, m := range re.FindAllStringSubmatch(out.String(), -1) {
			ids = append(ids, m[1])
		}
		return len(ids) >= n
	}, 5*time.Second, 10*time.Millisecond, "server-everything's output:\n%s", out)
	require.Len(t, ids, n, "server-everything's output:\n%s", out)
	return ids
}

// listeningAddrs returns the local addresses of the TCP sockets listening on port, from
// /proc/net/tcp and /proc/net/tcp6.
func listeningAddrs(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(f[1], ":")
			if p, _ := strconv.ParseInt(hexPort, 16, 32); int(p) != port {
				continue
			}
			raw, err := hex.DecodeString(hexIP)
			require.NoError(t, err)
			// The kernel prints each 32-bit word of the address in host (little-endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			addrs = append(addrs, net.IP(raw).String())
		}
	}
	return addrs
}

// runNode runs a node program with the npm peers on NODE_PATH and returns its stdout.
func runNode(t *testing.T, nm string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nm, "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "%v\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	return stdout.String()
}

// tsSteps runs the TS SDK client against url and returns its steps by name.
func tsSteps(t *testing.T, nm, url, mode string) map[string]map[string]any {
	t.Helper()
	out := runNode(t, nm, "node", "testdata/npm/client.cjs", url, mode)
	steps := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var step map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &step), line)
		steps[step["step"].(string)] = step
	}
	return steps
}

// checkTSClientEvents asserts the events of one tsSteps run through the tap.
func checkTSClientEvents(t *testing.T, tap *Tap, rec *recorder, transport, sessionID string) {
	t.Helper()
	call := func(target string) schemas.Event {
		return rec.waitFor(t, "tools/call "+target, func(e schemas.Event) bool { return e.Method == "tools/call" && e.Target == target })
	}
	echo := call("echo")
	require.Equal(t, schemas.StatusOK, echo.Status)
	require.Equal(t, `{"message":"string"}`, echo.ArgsShape)
	require.Positive(t, echo.RequestBytes)
	require.Positive(t, echo.ResponseBytes)
	require.Positive(t, echo.LatencyMicros)
	require.Len(t, echo.ResultHash, 32)
	sum := call("get-sum")
	require.Equal(t, schemas.StatusOK, sum.Status)
	require.Equal(t, `{"a":"number","b":"number"}`, sum.ArgsShape)
	require.Equal(t, schemas.StatusToolError, call("no-such-tool").Status)

	long := call("trigger-long-running-operation")
	require.Equal(t, schemas.StatusOK, long.Status)
	progress := waitForN(t, rec, 3, byMethod("notifications/progress"))
	for _, p := range progress {
		require.Equal(t, long.JSONRPCID, p.JSONRPCID, "progress is tied to its call")
		require.Equal(t, "trigger-long-running-operation", p.Target)
		require.Equal(t, schemas.ServerToClient, p.Direction)
	}

	sampling := rec.waitFor(t, "sampling/createMessage", byMethod("sampling/createMessage"))
	require.Equal(t, schemas.ServerToClient, sampling.Direction)
	require.Equal(t, schemas.KindRequest, sampling.Kind)
	require.Equal(t, schemas.StatusOK, sampling.Status)
	require.Positive(t, sampling.ResponseBytes, "the client's answer")
	require.GreaterOrEqual(t, call("trigger-sampling-request").LatencyMicros, sampling.LatencyMicros)
	elicit := rec.waitFor(t, "elicitation/create", byMethod("elicitation/create"))
	require.Equal(t, schemas.StatusOK, elicit.Status)
	require.Positive(t, elicit.ResponseBytes)

	init := rec.waitFor(t, "initialize", byMethod("initialize"))
	require.Equal(t, schemas.StatusOK, init.Status)
	require.NotEmpty(t, init.ProtocolVersion)
	list := rec.waitFor(t, "tools/list", byMethod("tools/list"))
	require.Equal(t, schemas.StatusOK, list.Status)
	require.Greater(t, list.ResponseBytes, 1000)

	for _, e := range rec.all() {
		require.Equal(t, transport, e.Transport, e.Method)
		require.Equal(t, "everything", e.ServerID)
		require.Equal(t, sessionID, e.SessionID, e.Method)
		require.Equal(t, "ts-tap-test", e.ClientName, e.Method)
		require.Equal(t, "1.2.3", e.ClientVersion, e.Method)
		require.Equal(t, "ts-tap-test", e.AgentID, e.Method)
		require.Equal(t, agentFromClientInfo, e.AgentSource, e.Method)
		require.Empty(t, e.DeclaredAgent, e.Method)
		require.Equal(t, init.ProtocolVersion, e.ProtocolVersion, e.Method)
		require.NotEqual(t, schemas.StatusMalformed, e.Status, "%+v", e)
		require.NotEqual(t, schemas.StatusTimeout, e.Status, "%+v", e)
		if e.Kind == schemas.KindRequest {
			require.NotEmpty(t, e.JSONRPCID, e.Method)
			require.Positive(t, e.ResponseBytes, e.Method)
		}
	}
	require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("unmatched_response")))
	require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("pending_limit")))
}

// TestTapWithEverythingServerAndTSClient drives server-everything over Streamable HTTP with the
// TypeScript SDK client through the tap.
func TestTapWithEverythingServerAndTSClient(t *testing.T) {
	nm := nodeModules(t)
	base, out := startEverything(t, nm, "streamableHttp")
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "everything", URL: base + "/mcp"}}})

	steps := tsSteps(t, nm, tapURL+"/mcp/everything", "http")
	require.Equal(t, "Echo: hi from ts", steps["echo"]["text"])
	require.Equal(t, "The sum of 2 and 3 is 5.", steps["sum"]["text"])
	require.Equal(t, 3.0, steps["long"]["progress"], "progress reached the client")
	require.Contains(t, steps["sampling"]["text"], "LLM sampling result")
	require.Equal(t, true, steps["missing"]["isError"])
	sessionID := steps["connected"]["sessionId"].(string)
	require.Equal(t, announcedSessions(t, out, 1), []string{sessionID})

	checkTSClientEvents(t, tap, rec, "streamable_http", sessionID)
	rec.waitFor(t, "notifications/initialized", byMethod("notifications/initialized"))
}

// TestTapWithEverythingServerOverLegacySSE drives server-everything's legacy HTTP+SSE mode
// (GET /sse, POST /message) with the TypeScript SDK's SSE client through the tap.
func TestTapWithEverythingServerOverLegacySSE(t *testing.T) {
	nm := nodeModules(t)
	base, out := startEverything(t, nm, "sse")
	tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "everything", URL: base + "/sse"}}})

	steps := tsSteps(t, nm, tapURL+"/mcp/everything", "sse")
	require.Equal(t, "Echo: hi from ts", steps["echo"]["text"])
	// Over legacy SSE the TS client settles the call before it handles the last progress
	// notification (so without the tap too); the tap sees all three (checkTSClientEvents).
	require.GreaterOrEqual(t, steps["long"]["progress"], 2.0)
	require.Equal(t, true, steps["missing"]["isError"])

	sessionID := announcedSessions(t, out, 1)[0] // in the endpoint the server announced
	checkTSClientEvents(t, tap, rec, "sse", sessionID)
	require.Eventually(t, func() bool { return tap.legacy.len() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestTapWithEverythingServerAndInspectorCLI drives server-everything with the MCP Inspector's
// headless CLI through the tap, over Streamable HTTP and legacy SSE: a run that lists the tools,
// then one that calls echo and names its agent in the agent header.
func TestTapWithEverythingServerAndInspectorCLI(t *testing.T) {
	nm := nodeModules(t)
	inspector := filepath.Join(nm, ".bin", "mcp-inspector")
	for _, tt := range []struct{ mode, path, transport, eventTransport string }{
		{mode: "streamableHttp", path: "/mcp", transport: "http", eventTransport: "streamable_http"},
		{mode: "sse", path: "/sse", transport: "sse", eventTransport: "sse"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			base, serverOut := startEverything(t, nm, tt.mode)
			tap, rec, tapURL := startTap(t, Config{Upstreams: []Upstream{{Name: "everything", URL: base + tt.path}}})
			url := tapURL + "/mcp/everything"

			out := runNode(t, nm, inspector, "--cli", url, "--transport", tt.transport, "--method", "tools/list")
			require.Contains(t, out, `"name": "echo"`)
			listSession := announcedSessions(t, serverOut, 1)[0]
			out = runNode(t, nm, inspector, "--cli", url, "--transport", tt.transport, "--header", DefaultAgentHeader+": inspector-bot",
				"--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hi")
			require.Contains(t, out, "Echo: hi")
			callSession := announcedSessions(t, serverOut, 2)[1]

			lists := waitForN(t, rec, 2, byMethod("tools/list")) // the tools/call run lists the tools first
			list := lists[0]
			require.Equal(t, schemas.StatusOK, list.Status)
			echo := rec.waitFor(t, "tools/call", byMethod("tools/call"))
			require.Equal(t, schemas.StatusOK, echo.Status)
			require.Equal(t, "echo", echo.Target)
			require.Equal(t, `{"message":"string"}`, echo.ArgsShape)
			require.Positive(t, echo.RequestBytes)
			require.Positive(t, echo.ResponseBytes)
			waitForN(t, rec, 2, byMethod("initialize")) // one session per CLI run

			// Each run's events are in the session the server announced to it; the second run's
			// are attributed to the agent its header names.
			for _, e := range rec.all() {
				require.Equal(t, "inspector-cli", e.ClientName, e.Method)
				require.Equal(t, "2.12.0", e.ClientVersion, e.Method)
				require.Equal(t, tt.eventTransport, e.Transport, e.Method)
				require.Equal(t, "everything", e.ServerID, e.Method)
				require.Equal(t, "2025-11-25", e.ProtocolVersion, e.Method)
				require.Contains(t, []string{listSession, callSession}, e.SessionID, e.Method)
				if e.SessionID == callSession {
					require.Equal(t, "inspector-bot", e.AgentID, e.Method)
					require.Equal(t, agentFromHeader, e.AgentSource, e.Method)
					require.Equal(t, "inspector-bot", e.DeclaredAgent, e.Method)
				} else {
					require.Equal(t, "inspector-cli", e.AgentID, e.Method)
					require.Equal(t, agentFromClientInfo, e.AgentSource, e.Method)
					require.Empty(t, e.DeclaredAgent, e.Method)
				}
				require.NotEqual(t, schemas.StatusMalformed, e.Status, "%+v", e)
				require.NotEqual(t, schemas.StatusTimeout, e.Status, "%+v", e)
				require.NotEqual(t, "server/discover", e.Method, "this CLI (TS SDK 1.x) does not probe for the stateless revision")
			}
			require.Equal(t, listSession, list.SessionID)
			require.Equal(t, callSession, lists[1].SessionID)
			require.Equal(t, callSession, echo.SessionID)
			require.Zero(t, counterValue(t, tap.metrics.untracked.WithLabelValues("unmatched_response")))
		})
	}
}
