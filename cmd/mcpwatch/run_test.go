package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// syncBuffer is a bytes.Buffer that a running command may write while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// upstreamMCP is a real MCP server (the official Go SDK) over Streamable HTTP with an echo tool.
func upstreamMCP(t *testing.T) *httptest.Server {
	t.Helper()
	type echoArgs struct {
		Message string `json:"message"`
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "cmdtest-server", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its input"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)
	return srv
}

// testRunConfig is a configuration file for `mcpwatch run` on loopback ports picked for the test.
type testRunConfig struct {
	path    string
	tapURL  string // the tap's /mcp endpoint
	apiAddr string
	apiURL  string
}

func writeRunConfig(t *testing.T, upstreamURL string) testRunConfig {
	t.Helper()
	tapPort, apiPort, brokerPort := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	path := filepath.Join(t.TempDir(), "mcpwatch.yml")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `collector:
  http:
    listen: 127.0.0.1:%d
    upstreams:
      - name: default
        url: %s
api:
  listen: 127.0.0.1:%d
bus:
  embedded:
    port: %d
writer:
  flush_interval: 20ms
`, tapPort, upstreamURL, apiPort, brokerPort), 0o600))
	return testRunConfig{
		path:    path,
		tapURL:  fmt.Sprintf("http://127.0.0.1:%d/mcp", tapPort),
		apiAddr: fmt.Sprintf("127.0.0.1:%d", apiPort),
		apiURL:  fmt.Sprintf("http://127.0.0.1:%d", apiPort),
	}
}

// waitReady polls the API's /readyz until it answers 200. exited closes if mcpwatch stops
// first; logs says what it printed.
func waitReady(t *testing.T, apiURL string, exited <-chan struct{}, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("mcpwatch exited before it was ready:\n%s", logs)
		default:
		}
		resp, err := http.Get(apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcpwatch not ready after 30s (last error %v):\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectAgent opens a real MCP client session (the official Go SDK) through the tap.
func connectAgent(ctx context.Context, tapURL, agent string) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: agent, Version: "1.0.0"}, nil)
	return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: tapURL}, nil)
}

// echo calls the echo tool and checks the answer came back through the tap unchanged.
func echo(ctx context.Context, cs *mcp.ClientSession, msg string) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}})
	if err != nil {
		return err
	}
	if res.IsError || len(res.Content) != 1 {
		return fmt.Errorf("echo failed: %+v", res)
	}
	if got, ok := res.Content[0].(*mcp.TextContent); !ok || got.Text != msg {
		return fmt.Errorf("echo answered %+v, want %q", res.Content[0], msg)
	}
	return nil
}

// echoHash is the ArgsHash of the event for echo(msg).
func echoHash(msg string) string {
	return jsonrpc.Hash([]byte(`{"message":"` + msg + `"}`))
}

// cliJSON runs a query command in-process with -o json against apiURL and decodes its output.
// It returns an error rather than failing, so it can run inside require.Eventually.
func cliJSON(apiURL string, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args = append(args, "--api", apiURL, "-o", "json")
	if code := runMain(ctx, args, &stdout, &stderr); code != exitOK {
		return fmt.Errorf("mcpwatch %v: exit %d: %s", args, code, stderr.String())
	}
	return json.Unmarshal(stdout.Bytes(), v)
}

// agentSessions lists an agent's sessions with `mcpwatch sessions list`.
func agentSessions(apiURL, agent string) ([]store.Session, error) {
	var got api.SessionsResponse
	err := cliJSON(apiURL, &got, "sessions", "list", "--agent", agent, "--limit", "1000")
	return got.Sessions, err
}

// storedEchoHashes is the ArgsHash of every successful echo call in an agent's sessions, read
// with `mcpwatch sessions list` and `mcpwatch sessions show`.
func storedEchoHashes(apiURL, agent string) (map[string]bool, error) {
	sessions, err := agentSessions(apiURL, agent)
	if err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for _, s := range sessions {
		var show struct {
			Events []schemas.Event `json:"events"`
		}
		if err := cliJSON(apiURL, &show, "sessions", "show", s.ID, "--limit", "1000"); err != nil {
			return nil, err
		}
		for _, e := range show.Events {
			if e.Method == "tools/call" && e.Target == "echo" && e.Status == schemas.StatusOK {
				got[e.ArgsHash] = true
			}
		}
	}
	return got, nil
}

func findSession(sessions []store.Session, id string) (store.Session, bool) {
	i := slices.IndexFunc(sessions, func(s store.Session) bool { return s.ID == id })
	if i < 0 {
		return store.Session{}, false
	}
	return sessions[i], true
}

// TestRunInProcess runs `mcpwatch run` in-process on the embedded defaults, sends a real MCP
// session through its tap, finds it with `mcpwatch sessions list`, and stops it as Ctrl-C does.
func TestRunInProcess(t *testing.T) {
	t.Setenv("MCPWATCH_TOKEN", "")
	upstream := upstreamMCP(t)
	rc := writeRunConfig(t, upstream.URL)
	dataDir := filepath.Join(t.TempDir(), "data")
	// Goroutines of the test's own HTTP servers and clients are not mcpwatch's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		code = runMain(ctx, []string{"run", "--data-dir", dataDir, "--config", rc.path}, &stdout, &stderr)
	}()
	defer func() { cancel(); <-exited }()
	waitReady(t, rc.apiURL, exited, &stderr)

	callCtx, callCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer callCancel()
	cs, err := connectAgent(callCtx, rc.tapURL, "cmdtest-agent")
	require.NoError(t, err)
	require.NoError(t, echo(callCtx, cs, "hello through the tap"))
	sessionID := cs.ID()
	require.NotEmpty(t, sessionID)
	require.NoError(t, cs.Close())

	var sess store.Session
	require.Eventually(t, func() bool {
		sessions, err := agentSessions(rc.apiURL, "cmdtest-agent")
		var ok bool
		sess, ok = findSession(sessions, sessionID)
		return err == nil && ok && slices.Contains(sess.Tools, "echo")
	}, 20*time.Second, 50*time.Millisecond, "the session is listed by `mcpwatch sessions list`")
	require.Equal(t, "cmdtest-agent", sess.AgentID)
	require.Equal(t, "default", sess.ServerID)
	require.Equal(t, []string{"echo"}, sess.Tools)
	got, err := storedEchoHashes(rc.apiURL, "cmdtest-agent")
	require.NoError(t, err)
	require.Equal(t, map[string]bool{echoHash("hello through the tap"): true}, got)

	cancel() // what SIGINT does to main's context
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return after its context was cancelled:\n%s", stderr.String())
	}
	require.Equal(t, exitOK, code, stderr.String())
	logs := stderr.String()
	require.Contains(t, logs, `msg="MCP tap listening" url=`+rc.tapURL)
	require.Contains(t, logs, `msg="API listening" url=`+rc.apiURL)
	require.Contains(t, logs, "msg=stopped")
	require.NotContains(t, logs, "level=ERROR")
	require.NotContains(t, logs, "hello through the tap", "payloads are never logged")
	require.Empty(t, stdout.String())
	require.FileExists(t, filepath.Join(dataDir, "mcpwatch.db"))
	require.DirExists(t, filepath.Join(dataDir, "kafka"))

	// Nothing listens any more.
	_, err = http.Get(rc.apiURL + "/healthz")
	require.Error(t, err)
	upstream.Close()
	http.DefaultClient.CloseIdleConnections()
}

// TestRunStartFailure: a port already taken is a failure to start (exit 1), logged, and the
// process does not hang.
func TestRunStartFailure(t *testing.T) {
	upstream := upstreamMCP(t)
	rc := writeRunConfig(t, upstream.URL)
	// Something else holds the API's port.
	l, err := net.Listen("tcp", rc.apiAddr)
	require.NoError(t, err)
	defer l.Close()

	r := runCmd(t, "run", "--data-dir", filepath.Join(t.TempDir(), "data"), "--config", rc.path)
	require.Equal(t, exitFailure, r.code, r.stderr)
	require.Contains(t, r.stderr, `msg="cannot start"`)
	require.Contains(t, r.stderr, "api.listen "+rc.apiAddr, "the log names what could not start")
	require.NotContains(t, r.stderr, "msg=stopped")
}

// mcpwatchProcess is `mcpwatch` running as a real process.
type mcpwatchProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
}

func startMcpwatch(t *testing.T, args ...string) *mcpwatchProcess {
	t.Helper()
	p := &mcpwatchProcess{
		cmd:    exec.Command(mcpwatchBinary(t), args...),
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Dir = t.TempDir() // so a default ./mcpwatch-data would land here, not in the tree
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// terminate sends SIGTERM and returns the exit code.
func (p *mcpwatchProcess) terminate(t *testing.T) int {
	t.Helper()
	return p.stop(t, syscall.SIGTERM)
}

// stop sends sig and returns the exit code.
func (p *mcpwatchProcess) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("mcpwatch did not exit within 30s of %v:\n%s", sig, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestBinarySIGTERMAndRestart runs the built binary: SIGTERM stops it cleanly (exit 0,
// "stopped" logged), a restart on the same data dir still lists what was recorded, and SIGINT
// stops it cleanly too.
func TestBinarySIGTERMAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mcpwatch binary")
	}
	t.Setenv("MCPWATCH_TOKEN", "")
	upstream := upstreamMCP(t)
	rc := writeRunConfig(t, upstream.URL)
	dataDir := filepath.Join(t.TempDir(), "data")
	args := []string{"run", "--config", rc.path, "--data-dir", dataDir}

	p := startMcpwatch(t, args...)
	waitReady(t, rc.apiURL, p.exited, p.stderr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := connectAgent(ctx, rc.tapURL, "restart-agent")
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, echo(ctx, cs, fmt.Sprintf("before-restart-%d", i)))
	}
	sessionID := cs.ID()
	require.NoError(t, cs.Close())
	var before store.Session
	require.Eventually(t, func() bool {
		sessions, err := agentSessions(rc.apiURL, "restart-agent")
		var ok bool
		before, ok = findSession(sessions, sessionID)
		// initialize, notifications/initialized and three calls.
		return err == nil && ok && before.Events >= 5
	}, 20*time.Second, 50*time.Millisecond)

	require.Equal(t, 0, p.terminate(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "msg=stopped")
	require.NotContains(t, p.stderr.String(), "level=ERROR")

	p = startMcpwatch(t, args...)
	waitReady(t, rc.apiURL, p.exited, p.stderr)
	sessions, err := agentSessions(rc.apiURL, "restart-agent")
	require.NoError(t, err)
	after, ok := findSession(sessions, sessionID)
	require.True(t, ok, "the session recorded before the restart is still listed")
	require.Equal(t, before.Events, after.Events)
	require.Equal(t, []string{"echo"}, after.Tools)
	got, err := storedEchoHashes(rc.apiURL, "restart-agent")
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i := range 3 {
		require.True(t, got[echoHash(fmt.Sprintf("before-restart-%d", i))])
	}
	// Ctrl-C stops it the same way.
	require.Equal(t, 0, p.stop(t, os.Interrupt), p.stderr.String())
	require.Contains(t, p.stderr.String(), "msg=stopped")
}

// TestBinarySIGTERMLosesNoCall: calls keep coming while mcpwatch gets SIGTERM; after a restart,
// every call the client saw succeed is stored.
func TestBinarySIGTERMLosesNoCall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the mcpwatch binary")
	}
	t.Setenv("MCPWATCH_TOKEN", "")
	upstream := upstreamMCP(t)
	rc := writeRunConfig(t, upstream.URL)
	dataDir := filepath.Join(t.TempDir(), "data")
	args := []string{"run", "--config", rc.path, "--data-dir", dataDir}

	p := startMcpwatch(t, args...)
	waitReady(t, rc.apiURL, p.exited, p.stderr)

	const beforeSignal = 20
	calls := callUntilDown(t, p, rc.tapURL, "stream-agent", beforeSignal)
	require.Equal(t, 0, p.terminate(t), p.stderr.String())
	succeeded := calls.wait(t)
	require.GreaterOrEqual(t, len(succeeded), beforeSignal)
	t.Logf("%d calls succeeded, %d of them after SIGTERM was sent", len(succeeded), len(succeeded)-beforeSignal)

	p = startMcpwatch(t, args...)
	waitReady(t, rc.apiURL, p.exited, p.stderr)
	var missing []string
	require.Eventually(t, func() bool {
		got, err := storedEchoHashes(rc.apiURL, "stream-agent")
		if err != nil {
			return false
		}
		missing = missing[:0]
		for _, msg := range succeeded {
			if !got[echoHash(msg)] {
				missing = append(missing, msg)
			}
		}
		return len(missing) == 0
	}, 20*time.Second, 100*time.Millisecond, "calls the client saw succeed but not stored: %v", &missing)
	require.Equal(t, 0, p.terminate(t), p.stderr.String())
}

// echoCalls are sequential echo calls an agent makes through the tap until one fails.
type echoCalls struct {
	succeeded []string
	done      chan error
}

// callUntilDown starts echo calls ("<agent>-<i>") as agent through the tap at tapURL until one
// fails because mcpwatch is gone, and returns once n have succeeded (failing the test if the
// calls stop before that).
func callUntilDown(t *testing.T, p *mcpwatchProcess, tapURL, agent string, n int) *echoCalls {
	t.Helper()
	c := &echoCalls{done: make(chan error, 1)}
	reached := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cs, err := connectAgent(ctx, tapURL, agent)
		if err != nil {
			c.done <- err
			return
		}
		defer cs.Close()
		for i := 0; ; i++ {
			msg := fmt.Sprintf("%s-%d", agent, i)
			if err := echo(ctx, cs, msg); err != nil {
				c.done <- nil
				return
			}
			c.succeeded = append(c.succeeded, msg)
			if i+1 == n {
				close(reached)
			}
		}
	}()
	select {
	case <-reached:
	case err := <-c.done:
		t.Fatalf("calls stopped early (%v):\n%s", err, p.stderr)
	}
	return c
}

// wait returns the calls that succeeded, once a call has failed.
func (c *echoCalls) wait(t *testing.T) []string {
	t.Helper()
	require.NoError(t, <-c.done)
	return c.succeeded
}
