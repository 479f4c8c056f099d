package jsonrpc

import (
	"testing"
)

// FuzzJSONRPCParse feeds arbitrary bodies through everything the tap does with a message body.
func FuzzJSONRPCParse(f *testing.F) {
	// Seeds are messages recorded between real peers (the shared capture set): these, and one of
	// each kind of message in every capture in testdata/fuzz/FuzzJSONRPCParse.
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true}},"io.modelcontextprotocol/clientInfo":{"name":"gocli","version":"0.1.0"},"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"Echo: raw"}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"validating \"arguments\""}],"isError":true}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Unsupported protocol version"},"id":null}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":5,"method":"ping"},{"jsonrpc":"2.0","id":6,"method":"ping"}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok-1","message":"step 1","progress":1,"total":3}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, _, err := Parse(data)
		if err != nil {
			return
		}
		for i := range msgs {
			m := &msgs[i]
			if m.IsRequest() || m.IsNotification() {
				_ = DescribeRequest(m)
			} else {
				_ = DescribeResponse(m)
			}
			_ = Shape(m.Raw)
			if Hash(m.Raw) == "" {
				t.Fatalf("a parsed message must hash: %q", m.Raw)
			}
		}
	})
}
