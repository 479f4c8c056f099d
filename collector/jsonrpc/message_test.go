package jsonrpc

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		batch   bool
		wantErr bool
		check   func(t *testing.T, msgs []Message)
	}{
		{
			name: "request",
			in:   `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"raw"}}}`,
			check: func(t *testing.T, msgs []Message) {
				require.Len(t, msgs, 1)
				require.True(t, msgs[0].IsRequest())
				require.Equal(t, "2", msgs[0].IDString())
				require.Equal(t, "tools/call", msgs[0].Method)
			},
		},
		{
			name: "notification",
			in:   `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			check: func(t *testing.T, msgs []Message) {
				require.True(t, msgs[0].IsNotification())
				require.Nil(t, msgs[0].ID)
			},
		},
		{
			name: "response with result first and string id",
			in:   ` {"result":{"content":[]},"jsonrpc":"2.0","id":"a-1"}` + "\n",
			check: func(t *testing.T, msgs []Message) {
				require.True(t, msgs[0].IsResponse())
				require.Equal(t, `"a-1"`, msgs[0].IDString())
				require.Equal(t, `{"result":{"content":[]},"jsonrpc":"2.0","id":"a-1"}`, string(msgs[0].Raw))
			},
		},
		{
			name: "error response with null id",
			in:   `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request"},"id":null}`,
			check: func(t *testing.T, msgs []Message) {
				require.True(t, msgs[0].IsResponse())
				require.Equal(t, "null", msgs[0].IDString())
				require.Equal(t, -32000, msgs[0].Error.Code)
			},
		},
		{
			name:  "batch",
			in:    `[{"jsonrpc":"2.0","id":5,"method":"ping"}, {"jsonrpc":"2.0","method":"notifications/x"}]`,
			batch: true,
			check: func(t *testing.T, msgs []Message) {
				require.Len(t, msgs, 2)
				require.True(t, msgs[0].IsRequest())
				require.Equal(t, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, string(msgs[0].Raw))
				require.True(t, msgs[1].IsNotification())
			},
		},
		{name: "empty batch", in: `[]`, batch: true, wantErr: true},
		{name: "batch with a bad element", in: `[{"jsonrpc":"2.0","id":1,"method":"ping"},3]`, batch: true, wantErr: true},
		{name: "not json", in: `not json{`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
		{name: "scalar", in: `42`, wantErr: true},
		{name: "no method nor id", in: `{"jsonrpc":"2.0"}`, wantErr: true},
		{name: "response without result", in: `{"jsonrpc":"2.0","id":1}`, wantErr: true},
		{name: "method not a string", in: `{"jsonrpc":"2.0","id":1,"method":3}`, wantErr: true},
		{name: "error not an object", in: `{"jsonrpc":"2.0","id":1,"error":"x"}`, wantErr: true},
		{
			// Members match exactly, as both SDKs match them: the server runs "fail", not "echo".
			name: "keys in another case are other keys",
			in:   `{"jsonrpc":"2.0","ID":9,"id":1,"method":"tools/call","Method":"ping","params":{"name":"fail"},"Params":{"name":"echo"}}`,
			check: func(t *testing.T, msgs []Message) {
				require.Equal(t, "1", msgs[0].IDString())
				require.Equal(t, "tools/call", msgs[0].Method)
				require.Equal(t, `{"name":"fail"}`, string(msgs[0].Params))
			},
		},
		{
			name: "the last of duplicate keys counts",
			in:   `{"jsonrpc":"2.0","id":1,"id":2,"method":3,"method":"b","params":{"name":"a"},"params":{"name":"b"}}`,
			check: func(t *testing.T, msgs []Message) {
				require.Equal(t, "2", msgs[0].IDString())
				require.Equal(t, "b", msgs[0].Method)
				require.Equal(t, `{"name":"b"}`, string(msgs[0].Params))
			},
		},
		{
			name: "error members match exactly, the last error counts",
			in:   `{"jsonrpc":"2.0","id":1,"error":{"code":5},"error":{"Code":7,"code":"x","code":-32601,"message":"m"}}`,
			check: func(t *testing.T, msgs []Message) {
				require.Equal(t, &Error{Code: -32601, Message: "m"}, msgs[0].Error)
			},
		},
		{name: "only a key in another case", in: `{"jsonrpc":"2.0","ID":1,"Method":"ping"}`, wantErr: true},
		{name: "invalid then trailing", in: `{"jsonrpc":"2.0","method":a} x`, wantErr: true},
		{name: "unterminated", in: `{"jsonrpc":"2.0","method":"a\`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, batch, err := Parse([]byte(tt.in))
			require.Equal(t, tt.batch, batch)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			tt.check(t, msgs)
		})
	}
}

// TestParseTrailingData: the Go SDK reads the first value of an HTTP body and runs it, so the
// tap gets that value's messages, and an error that says more followed.
func TestParseTrailingData(t *testing.T) {
	tests := []struct {
		in, raw string
		batch   bool
	}{
		{in: `{"jsonrpc":"2.0","id":1,"method":"tools/call"} x`, raw: `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`},
		{in: ` {"jsonrpc":"2.0","id":1,"method":"a"}{"jsonrpc":"2.0","id":2,"method":"b"} `, raw: `{"jsonrpc":"2.0","id":1,"method":"a"}`},
		{in: `{"jsonrpc":"2.0","id":1,"result":{"a":"}"}}}`, raw: `{"jsonrpc":"2.0","id":1,"result":{"a":"}"}}`},
		{in: `[{"jsonrpc":"2.0","id":1,"method":"a"}] [`, raw: `{"jsonrpc":"2.0","id":1,"method":"a"}`, batch: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			msgs, batch, err := Parse([]byte(tt.in))
			require.ErrorIs(t, err, ErrTrailingData)
			require.Equal(t, tt.batch, batch)
			require.Len(t, msgs, 1)
			require.Equal(t, tt.raw, string(msgs[0].Raw))
			require.Equal(t, "1", msgs[0].IDString())
			if !tt.batch {
				m, err := ParseMessage([]byte(tt.in))
				require.ErrorIs(t, err, ErrTrailingData)
				require.Equal(t, tt.raw, string(m.Raw))
			}
		})
	}
	// Whitespace after the value is not trailing data.
	_, _, err := Parse([]byte("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"} \r\n\t"))
	require.NoError(t, err)
	// An invalid first message is an error of its own, not trailing data.
	_, _, err = Parse([]byte(`{"jsonrpc":"2.0","id":1} x`))
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrTrailingData)
}

// TestIDString: a request and its response pair although the server re-encoded the id, as the
// Go SDK answers each of these requests (and JSON.stringify(JSON.parse(id)) would).
func TestIDString(t *testing.T) {
	tests := []struct{ sent, answered, want string }{
		{`1`, `1`, `1`},
		{`-42`, `-42`, `-42`},
		{`0`, `0`, `0`},
		{`-0`, `0`, `0`},
		{`1.0`, `1`, `1`},
		{`2E0`, `2`, `2`},
		{`1e2`, `100`, `100`},
		{`1.5`, `1.5`, `1.5`},
		{`1.5e-7`, `0.00000015`, `1.5e-7`},
		{`1e21`, `1E+21`, `1e+21`},
		{`1e20`, `100000000000000000000`, `100000000000000000000`},
		{`1e-400`, `0`, `0`},
		{`12345678901234567890`, `12345678901234567000`, `12345678901234567000`},
		{`123456789012345678`, `123456789012345680`, `123456789012345680`},
		{`"a"`, `"a"`, `"a"`},
		{`"\u0061"`, `"a"`, `"a"`},
		{`"a\/b"`, `"a/b"`, `"a/b"`},
		{`"\u003c&>"`, `"<\u0026>"`, `"<&>"`},
		{`"\u00e9"`, `"é"`, `"é"`},
		{"\"\u2028\"", "\"\u2028\"", `"\u2028"`},
		{`"\ud800"`, `"\ufffd"`, `"` + "\ufffd" + `"`},
		{"\"\xff\"", `"\ufffd"`, `"` + "\ufffd" + `"`},
		{`null`, `null`, `null`},
		// Beyond float64 no peer can echo the number: it stays as written, and never panics.
		{`1e400`, `1e400`, `1e400`},
		{`-1e400`, `-1e400`, `-1e400`},
	}
	for _, tt := range tests {
		t.Run(tt.sent, func(t *testing.T) {
			req, err := ParseMessage([]byte(`{"jsonrpc":"2.0","id":` + tt.sent + `,"method":"ping"}`))
			require.NoError(t, err)
			resp, err := ParseMessage([]byte(`{"jsonrpc":"2.0","id":` + tt.answered + `,"result":{}}`))
			require.NoError(t, err)
			require.Equal(t, tt.want, req.IDString())
			require.Equal(t, tt.want, resp.IDString())
			require.True(t, json.Valid([]byte(req.IDString())))
		})
	}
	require.Empty(t, (&Message{}).IDString())
	require.Equal(t, `"a`, CanonicalID([]byte(`"a`)), "malformed text stays as written")
	require.Equal(t, `2`, (&Message{ID: []byte(` 2.0 `)}).IDString())
}

func TestCloneOwnsItsBytes(t *testing.T) {
	buf := []byte(` {"jsonrpc":"2.0","id":7,"result":{"content":[]},"error":{"code":1,"message":"m"}} `)
	m, err := ParseMessage(buf)
	require.NoError(t, err)
	c := m.Clone()
	for i := range buf {
		buf[i] = 'x' // the buffer is reused
	}
	require.Equal(t, `{"jsonrpc":"2.0","id":7,"result":{"content":[]},"error":{"code":1,"message":"m"}}`, string(c.Raw))
	require.Equal(t, `7`, string(c.ID))
	require.Equal(t, `{"content":[]}`, string(c.Result))
	require.Nil(t, c.Params)
	require.Equal(t, &Error{Code: 1, Message: "m"}, c.Error)
	require.NotSame(t, m.Error, c.Error)

	// Parts that are not the message's own bytes are copied too.
	other := Message{Raw: []byte(`{}`), Params: []byte(`[1]`)}
	require.Equal(t, `[1]`, string(other.Clone().Params))
}
