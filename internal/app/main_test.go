package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// httptest servers' idle keep-alive connections from the MCP SDK client's transport.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// The upstream MCP server (the Go SDK) keeps sessions whose clients went away through a
		// restarted tap until they time out; that is the test server's state, not mcpwatch's.
		goleak.IgnoreTopFunction("github.com/modelcontextprotocol/go-sdk/mcp.(*streamableServerConn).Read"),
	)
}
