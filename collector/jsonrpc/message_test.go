package jsonrpc

import (
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
		{name: "trailing garbage", in: `{"jsonrpc":"2.0","method":"a"} x`, wantErr: true},
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
