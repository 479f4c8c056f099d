package httptap

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/sse"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// FuzzEndpointWatcher checks the one place the tap rewrites a stream's bytes: the client gets
// the upstream's bytes unchanged unless the stream's first event (as the SSE parser the clients'
// side follows sees it) is an endpoint event, and then only that event's data differs; and how
// the stream is cut into reads never changes what the client gets.
func FuzzEndpointWatcher(f *testing.F) {
	// Seeds: the SSE framing recorded between real peers, each stream alone and after an
	// endpoint event, and the cases of the tests.
	endpoint := "event: endpoint\ndata: /message?sessionId=0d2f6c1e\n\n"
	for _, s := range captureStreams(f) {
		f.Add(s, []byte{7})
		f.Add(endpoint+s, []byte{3, 40})
	}
	for _, s := range []string{
		"retry: 3000\n\nevent: endpoint\ndata: /message?sessionId=abc\n\n",
		"\xef\xbb\xbf: hi\r\n\r\nid: 1\r\nevent: endpoint\r\ndata:/message?sessionId=abc\r\n\r\n: keepalive\r\n\r\n",
		"id: 7\r\rretry: 10\r\revent: endpoint\rdata: /messages/abc123\r\r",
		"event: endpoint\n\ndata: /message?sessionId=abc\n\n",
		"event: endpoint\ndata\n\n",
		"\n\xef\xbb\xbfevent: endpoint\ndata: /x\n\n",
		"event: endpoint\ndata: /a\ndata: /b\n\n",
		"event: endpoint\ndata: http://other.example:9/message?sessionId=abc\n\n",
		"event: endpoint\ndata: /message?sessionId=abc",
	} {
		f.Add(s, []byte{1, 2, 3})
	}
	tap, err := New(Config{Upstreams: []Upstream{{Name: "up", URL: "http://127.0.0.1:1/sse"}}}, &recorder{},
		pipeline.Settings{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, stream string, cuts []byte) {
		tap.legacy = legacyRegistry{} // each input starts with no announced paths
		got := watchStream(t, tap, []string{stream})
		require.Equal(t, got, watchStream(t, tap, cutAt(stream, cuts)), "cut by %v", cuts)
		if len(stream) <= 2048 {
			require.Equal(t, got, watchStream(t, tap, strings.Split(stream, "")), "a byte per read")
		}
		if got == stream {
			return
		}
		in, out := sseEvents(stream), sseEvents(got)
		require.NotEmpty(t, in, "bytes changed in a stream with no event: %q", got)
		require.Equal(t, legacyEndpointEvent, in[0].Type, "bytes changed though the first event is not an endpoint: %q", got)
		require.NotContains(t, string(in[0].Data), "\n", "a multi-line endpoint was rewritten")
		require.Len(t, out, len(in))
		require.True(t, strings.HasPrefix(string(out[0].Data), "/mcp/up"), "the endpoint is on the tap: %q", out[0].Data)
		out[0].Data, out[0].Size = in[0].Data, in[0].Size
		require.Equal(t, in, out, "only the endpoint's data differs")
	})
}

// sseEvents is what a client's SSE parser makes of a stream.
func sseEvents(stream string) []sse.Event {
	var evs []sse.Event
	p := sse.NewParser(len(stream)+1, func(e sse.Event) {
		e.Data = []byte(string(e.Data))
		evs = append(evs, e)
	})
	_, _ = p.Write([]byte(stream))
	return evs
}

// cutAt cuts s into reads of the lengths cuts gives (a byte each, 1 to 256), the rest in one.
func cutAt(s string, cuts []byte) []string {
	var chunks []string
	for _, c := range cuts {
		n := min(int(c)+1, len(s))
		chunks, s = append(chunks, s[:n]), s[n:]
	}
	return append(chunks, s)
}

// captureStreams returns the SSE streams recorded between real peers (the shared capture set,
// curl's framing included) that seed FuzzSSEParser.
func captureStreams(f *testing.F) []string {
	files, err := filepath.Glob("../sse/testdata/fuzz/FuzzSSEParser/*")
	require.NoError(f, err)
	require.NotEmpty(f, files)
	var streams []string
	for _, path := range files {
		data, err := os.ReadFile(path)
		require.NoError(f, err)
		// The corpus file is `go test fuzz v1`, then string("…") and FuzzSSEParser's ints.
		lines := strings.Split(string(data), "\n")
		require.Greater(f, len(lines), 1, path)
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		require.NoError(f, err, path)
		streams = append(streams, s)
	}
	return streams
}
