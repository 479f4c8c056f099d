package jsonrpc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzScannerMatchesReference holds the scanner to the reflection-based implementation in
// reference_test.go: for any input, parsing, the facts, shapes and hashes must be the same.
// It reuses FuzzJSONRPCParse's seeds (messages from the recorded captures).
func FuzzScannerMatchesReference(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzJSONRPCParse/*")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		require.NoError(f, err)
		// The corpus file is `go test fuzz v1` then []byte("…"): take the literal's bytes.
		lines := bytes.SplitN(data, []byte("\n"), 3)
		if len(lines) < 2 {
			continue
		}
		lit := bytes.TrimSuffix(bytes.TrimPrefix(lines[1], []byte("[]byte(")), []byte(")"))
		s, err := strconv.Unquote(string(lit))
		require.NoError(f, err, path)
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"jsonrpc":"2.0","ID":1,"id":2,"result":null}`,
		`{"id":1,"error":{"code":5},"error":{"message":"x"}}`,
		`{"id":1,"error":{"code":1.0}}`,
		`{"method":"a","method":null,"id":1}`,
		`{"id":"x","method":"tools/call","params":{"name":"a","name":"b","arguments":{"b":1,"a":[{"y":1},{"x":"\u00e9\u2028"}],"a":null}}}`,
		`{"id":1,"method":"initialize","params":{"clientInfo":{"NAME":"c","version":null},"protocolVersion":"2025-06-18"}}`,
		`{"id":1,"method":"x","params":{"_meta":{"progressToken":1},"\u005fmeta":2}}`,
		`{"id":1,"result":{"isError":true,"isError":1,"protocolVersion":"\ud800"}}`,
		`[{"jsonrpc":"2.0","id":5,"method":"ping"}, {"jsonrpc":"2.0","method":"n"}]`,
		"{\"id\":1,\"method\":\"m\",\"params\":{\"k\\\"\":\"<&>\",\"\xff\":[]}}",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail"},"Params":{"name":"echo"}}`,
		`{"method":1,"method":"a","id":1}`,
		`{"id":1,"error":{"code":"x","code":2,"Message":"m"}}`,
		`{"id":1,"method":"initialize","params":{"clientInfo":{"Name":"c","name":"d"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"a"} x`,
		`{"jsonrpc":"2.0","id":1,"method":"a"}{"id":2,"method":"b"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"a"}]]`,
		`{"a":"\\"}"`,
		`{"id":"\u0061\/<","method":"notifications/cancelled","params":{"requestId":2E0,"_meta":{"progressToken":-0.0}}}`,
		`{"id":12345678901234567890,"result":1}`,
		`{"id":1e400,"result":1}`,
		`{"id":1.5e-7,"result":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, batch, err := Parse(data)
		ref, refBatch, refErr := refParse(data)
		require.Equal(t, refErr == nil, err == nil, "error: %v, reference: %v", err, refErr)
		require.Equal(t, errors.Is(refErr, errRefTrailing), errors.Is(err, ErrTrailingData), "error: %v, reference: %v", err, refErr)
		require.Equal(t, refBatch, batch)
		require.Equal(t, len(ref), len(msgs))
		for i := range msgs {
			m, r := &msgs[i], &ref[i]
			require.Equal(t, string(r.Raw), string(m.Raw))
			require.Equal(t, string(r.ID), string(m.ID))
			require.Equal(t, r.ID == nil, m.ID == nil)
			require.Equal(t, r.IDString(), m.IDString())
			require.Equal(t, r.Method, m.Method)
			require.Equal(t, string(r.Params), string(m.Params))
			require.Equal(t, string(r.Result), string(m.Result))
			require.Equal(t, r.Result == nil, m.Result == nil)
			require.Equal(t, r.Error == nil, m.Error == nil)
			if r.Error != nil {
				require.Equal(t, r.Error.Code, m.Error.Code)
				require.Equal(t, r.Error.Message, m.Error.Message)
			}
			want := RequestFacts(refDescribeRequest(r))
			require.Equal(t, want, DescribeRequest(m))
			shape, hash := ArgsShapeAndHash(m)
			require.Equal(t, want.ArgsShape, shape)
			require.Equal(t, want.ArgsHash, hash)
			want.ArgsShape, want.ArgsHash = "", ""
			require.Equal(t, want, DescribeRequestWithoutArgs(m))
			require.Equal(t, ResponseFacts(refDescribeResponse(r)), DescribeResponse(m))
			for _, raw := range [][]byte{m.Raw, m.Params, m.Result} {
				shape, hash := ShapeAndHash(raw)
				refShape, refHash := refShapeAndHash(raw)
				require.Equal(t, refShape, shape)
				require.Equal(t, refHash, hash)
			}
		}
		// The value functions on anything at all.
		shape, hash := ShapeAndHash(data)
		wantShape, wantHash := refShapeAndHash(data)
		require.Equal(t, wantShape, shape, "%q", data)
		require.Equal(t, wantHash, hash, "%q", data)
		require.Equal(t, refHash(data), Hash(data))
		require.Equal(t, refShape(data), Shape(data))
		require.Equal(t, refCanonicalID(data), CanonicalID(data), "%q", data)
		c, err := Canonical(data)
		rc, refErr := refCanonical(data)
		require.Equal(t, refErr == nil, err == nil)
		require.Equal(t, string(rc), string(c))
	})
}
