package jsonrpc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDescribeRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want RequestFacts
	}{
		{
			name: "tools/call",
			in:   `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"progressToken":"tok-1","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}`,
			want: RequestFacts{
				Target: "echo", ArgsShape: `{"message":"string"}`, ArgsHash: Hash([]byte(`{"message":"hello"}`)),
				TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331", ProgressToken: `"tok-1"`,
			},
		},
		{
			name: "initialize",
			in:   `{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"clientInfo":{"name":"gocli","version":"0.1.0"},"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true}}}}`,
			want: RequestFacts{
				ClientName: "gocli", ClientVersion: "0.1.0", ProtocolVersion: "2025-11-25",
				ArgsShape: `{"capabilities":{"roots":{"listChanged":"boolean"}},"clientInfo":{"name":"string","version":"string"},"protocolVersion":"string"}`,
				ArgsHash:  Hash([]byte(`{"clientInfo":{"name":"gocli","version":"0.1.0"},"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true}}}`)),
			},
		},
		{
			name: "stateless tools/call with _meta identity",
			in:   `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"gocli","version":"0.1.0"},"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"echo","arguments":{"message":"hello from go"}}}`,
			want: RequestFacts{
				Target: "echo", ArgsShape: `{"message":"string"}`, ArgsHash: Hash([]byte(`{"message":"hello from go"}`)),
				ClientName: "gocli", ClientVersion: "0.1.0", ProtocolVersion: "2026-07-28",
			},
		},
		{
			name: "resources/read",
			in:   `{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"test://info"}}`,
			want: RequestFacts{Target: "test://info", ArgsShape: `{"uri":"string"}`, ArgsHash: Hash([]byte(`{"uri":"test://info"}`))},
		},
		{
			name: "completion/complete",
			in:   `{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"n","value":"x"}}}`,
			want: RequestFacts{
				Target:    "greet",
				ArgsShape: `{"argument":{"name":"string","value":"string"},"ref":{"name":"string","type":"string"}}`,
				ArgsHash:  Hash([]byte(`{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"n","value":"x"}}`)),
			},
		},
		{
			name: "progress names its token",
			in:   `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":42,"progress":1,"total":2}}`,
			want: RequestFacts{
				ProgressToken: `42`, ArgsShape: `{"progress":"number","progressToken":"number","total":"number"}`,
				ArgsHash: Hash([]byte(`{"progressToken":42,"progress":1,"total":2}`)),
			},
		},
		{
			name: "cancelled names the request",
			in:   `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"r-7","reason":"user"}}`,
			want: RequestFacts{
				RequestID: `"r-7"`, ArgsShape: `{"reason":"string","requestId":"string"}`,
				ArgsHash: Hash([]byte(`{"requestId":"r-7","reason":"user"}`)),
			},
		},
		{
			// The server answers progress with the token decoded and re-encoded: the tap must
			// pair "tok\u002d1" with "tok-1", and 7.0 with 7.
			name: "progress tokens and cancelled ids are canonical",
			in:   `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7.0,"_meta":{"progressToken":"tok\u002d1"}}}`,
			want: RequestFacts{
				RequestID: `7`, ProgressToken: `"tok-1"`, ArgsShape: `{"requestId":"number"}`,
				ArgsHash: Hash([]byte(`{"requestId":7.0}`)),
			},
		},
		{
			name: "progress token of a notification is canonical",
			in:   `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":2E0,"progress":1}}`,
			want: RequestFacts{
				ProgressToken: `2`, ArgsShape: `{"progress":"number","progressToken":"number"}`,
				ArgsHash: Hash([]byte(`{"progressToken":2E0,"progress":1}`)),
			},
		},
		{
			name: "members in another case are other members",
			in:   `{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"clientInfo":{"Name":"evil","name":"gocli","VERSION":"9"},"ProtocolVersion":"x"}}`,
			want: RequestFacts{
				ClientName: "gocli",
				ArgsShape:  `{"ProtocolVersion":"string","clientInfo":{"Name":"string","VERSION":"string","name":"string"}}`,
				ArgsHash:   Hash([]byte(`{"clientInfo":{"Name":"evil","name":"gocli","VERSION":"9"},"ProtocolVersion":"x"}`)),
			},
		},
		{name: "tools/list without params", in: `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`},
		{name: "tools/list with only _meta", in: `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"x":1}}}`},
		{name: "wrong types are ignored", in: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":7,"_meta":{"traceparent":5}}}`},
		{name: "params not an object", in: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, DescribeRequest(&m))
		})
	}
}

func TestDescribeResponse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ResponseFacts
	}{
		{
			name: "ok",
			in:   `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"Echo: raw"}]}}`,
			want: ResponseFacts{ResultHash: Hash([]byte(`{"content":[{"type":"text","text":"Echo: raw"}]}`))},
		},
		{
			name: "tool error",
			in:   `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"bad"}],"isError":true}}`,
			want: ResponseFacts{ToolError: true, ResultHash: Hash([]byte(`{"content":[{"type":"text","text":"bad"}],"isError":true}`))},
		},
		{
			name: "initialize",
			in:   `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","serverInfo":{"name":"gosrv"}}}`,
			want: ResponseFacts{ProtocolVersion: "2025-06-18", ResultHash: Hash([]byte(`{"protocolVersion":"2025-06-18","serverInfo":{"name":"gosrv"}}`))},
		},
		{
			name: "json-rpc error",
			in:   `{"jsonrpc":"2.0","id":8,"error":{"code":-32601,"message":"Method not found"}}`,
			want: ResponseFacts{HasError: true, ErrorCode: -32601},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, DescribeResponse(&m))
		})
	}
}

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		in, trace, span string
	}{
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"},
		{"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", "", ""},
		{"00-00000000000000000000000000000000-b7ad6b7169203331-01", "", ""},
		{"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", "", ""},
		{"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", "", ""},
		{"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "", ""},
		{"garbage", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			trace, span := ParseTraceparent(tt.in)
			require.Equal(t, tt.trace, trace)
			require.Equal(t, tt.span, span)
		})
	}
}
