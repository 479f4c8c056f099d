package jsonrpc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShape(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"message":"hello"}`, `{"message":"string"}`},
		{`{"b":1,"a":{"y":true,"x":null}}`, `{"a":{"x":"null","y":"boolean"},"b":"number"}`},
		{`{"tags":["a","b"],"mixed":[1,"x",2],"empty":[]}`, `{"empty":[],"mixed":["number","string"],"tags":["string"]}`},
		{`{"items":[{"id":1},{"id":2},{"name":"z"}]}`, `{"items":[{"id":"number"},{"name":"string"}]}`},
		{`"secret"`, `"string"`},
		{`{}`, `{}`},
		{``, ``},
		{`{bad`, ``},
		{`{"k\"ey":"<v>"}`, `{"k\"ey":"string"}`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, Shape([]byte(tt.in)))
		})
	}
}

func TestShapeNeverContainsValues(t *testing.T) {
	shape := Shape([]byte(`{"password":"hunter2","list":["tok-123"],"n":31337}`))
	require.NotContains(t, shape, "hunter2")
	require.NotContains(t, shape, "tok-123")
	require.NotContains(t, shape, "31337")
}

func TestCanonicalAndHash(t *testing.T) {
	a := []byte(`{"b": [1, 2.50, {"y": "<&>", "x": null}], "a": "é"}`)
	b := []byte(`{"a":"é","b":[1,2.50,{"x":null,"y":"<&>"}]}`)
	ca, err := Canonical(a)
	require.NoError(t, err)
	require.Equal(t, `{"a":"é","b":[1,2.50,{"x":null,"y":"<&>"}]}`, string(ca))

	require.Equal(t, Hash(a), Hash(b), "key order and whitespace must not change the hash")
	require.Len(t, Hash(a), 32)
	require.NotEqual(t, Hash(a), Hash([]byte(`{"a":"e","b":[1,2.50,{"x":null,"y":"<&>"}]}`)))
	require.Empty(t, Hash(nil))
	require.Empty(t, Hash([]byte(`{not json`)))
	// printf '{"message":"hi"}' | sha256sum, first 32 hex digits
	require.Equal(t, "adbd982b8fe0bbd8477f09262028d3ac", Hash([]byte(`{ "message" : "hi" }`)))
}
