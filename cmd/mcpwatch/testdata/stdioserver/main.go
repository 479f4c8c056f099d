// Command stdioserver is a stdio MCP server (the official Go SDK) for the `mcpwatch wrap`
// tests. Tools: echo (returns its message), fail (a tool error). STDIOSERVER_EXIT sets the exit
// code after the client closes stdin. SIGTERM, SIGHUP and SIGUSR1 make it say so on stderr and exit
// 40+signal; SIGINT kills it (default action). STDIOSERVER_MODE=cat copies stdin to stdout
// instead of speaking MCP.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	exit, _ := strconv.Atoi(os.Getenv("STDIOSERVER_EXIT"))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	go func() {
		sig := <-sigs
		fmt.Fprintln(os.Stderr, "stdioserver: got", sig)
		os.Exit(40 + int(sig.(syscall.Signal)))
	}()
	fmt.Fprint(os.Stderr, "stdioserver: starting \x01\xff\n")

	if os.Getenv("STDIOSERVER_MODE") == "cat" {
		_, _ = io.Copy(os.Stdout, os.Stdin)
		os.Exit(exit)
	}

	server := mcp.NewServer(&mcp.Implementation{Name: "stdioserver", Version: "1.0.0"}, nil)
	type echoArgs struct {
		Message string `json:"message"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its input"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "fail", Description: "Always fails"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no"}}}, nil, nil
		})
	if err := server.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "stdioserver:", err)
	}
	os.Exit(exit)
}
