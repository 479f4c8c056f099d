package sse

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type got struct {
	Type, ID, Data string
	Size           int
	Oversized      bool
}

func parseAll(max int, chunks ...string) ([]got, int) {
	var evs []got
	p := NewParser(max, func(e Event) {
		evs = append(evs, got{Type: e.Type, ID: e.ID, Data: string(e.Data), Size: e.Size, Oversized: e.Oversized})
	})
	for _, c := range chunks {
		n, err := p.Write([]byte(c))
		if err != nil || n != len(c) {
			panic("Write must consume everything")
		}
	}
	return evs, p.Comments()
}

// splits returns the stream whole, byte by byte, and cut in two at every position.
func splits(s string) [][]string {
	out := [][]string{{s}, strings.Split(s, "")}
	for i := 1; i < len(s); i++ {
		out = append(out, []string{s[:i], s[i:]})
	}
	return out
}

func TestParser(t *testing.T) {
	tests := []struct {
		name     string
		stream   string
		max      int
		want     []got
		comments int
	}{
		{
			name:   "go sdk message",
			stream: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
			want:   []got{{Type: "message", Data: `{"jsonrpc":"2.0","id":1,"result":{}}`, Size: 36}},
		},
		{
			name:   "ts sdk priming event then message with ids",
			stream: "id: 49c0\ndata: \n\nevent: message\nid: 88a9\ndata: {\"id\":2}\n\n",
			want: []got{
				{ID: "49c0", Data: "", Size: 0},
				{Type: "message", ID: "88a9", Data: `{"id":2}`, Size: 8},
			},
		},
		{
			name:     "keepalive comments are not events",
			stream:   ": ok\n\n:ping\n\ndata: x\n\n",
			want:     []got{{Data: "x", Size: 1}},
			comments: 2,
		},
		{
			name:   "multi-line data, CRLF and CR line endings",
			stream: "data: a\r\ndata:b\rdata:  c\r\n\r\n",
			want:   []got{{Data: "a\nb\n c", Size: 6}},
		},
		{
			name:   "id without data is not dispatched but remembered",
			stream: "id: 7\n\nevent: x\n\ndata: y\n\n",
			want:   []got{{ID: "7", Data: "y", Size: 1}},
		},
		{
			name:   "field without colon, unknown fields, retry",
			stream: "data\nretry: 10\nfoo: bar\n\n",
			want:   []got{{Data: "", Size: 0}},
		},
		{
			name:   "id with NUL is ignored",
			stream: "id: a\x00b\ndata: z\n\n",
			want:   []got{{Data: "z", Size: 1}},
		},
		{
			name:   "incomplete event at end is not dispatched",
			stream: "data: done\n\ndata: partial\n",
			want:   []got{{Data: "done", Size: 4}},
		},
		{
			name:   "leading BOM is stripped",
			stream: "\xef\xbb\xbfdata: x\n\n",
			want:   []got{{Data: "x", Size: 1}},
		},
		{
			name:   "oversized event is reported without data and the stream goes on",
			stream: "data: 0123456789abcdef\ndata: x\n\ndata: ok\n\n",
			max:    10,
			want:   []got{{Size: 18, Oversized: true}, {Data: "ok", Size: 2}},
		},
		{
			name:   "event at the limit is kept",
			stream: "data: 0123456789\n\n",
			max:    10,
			want:   []got{{Data: "0123456789", Size: 10}},
		},
		{
			name:   "over-long non-data line is ignored",
			stream: "event: 0123456789abcdef\ndata: ok\n\n",
			max:    10,
			want:   []got{{Data: "ok", Size: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = 1 << 20
			}
			for _, chunks := range splits(tt.stream) {
				evs, comments := parseAll(max, chunks...)
				require.Equal(t, tt.want, evs, "chunks %q", chunks)
				require.Equal(t, tt.comments, comments, "chunks %q", chunks)
			}
		})
	}
}

func TestParserDispatchesAsSoonAsTheBlankLineArrives(t *testing.T) {
	var n int
	p := NewParser(1<<20, func(Event) { n++ })
	_, _ = p.Write([]byte("event: message\ndata: {}\n"))
	require.Zero(t, n)
	_, _ = p.Write([]byte("\n"))
	require.Equal(t, 1, n)
}

// FuzzSSEParser checks that the parser never panics and that how a stream is cut into writes
// never changes the events it yields.
func FuzzSSEParser(f *testing.F) {
	// Seeds are SSE streams recorded between real peers (the shared capture set): these, and
	// whole response streams and curl-captured framing in testdata/fuzz/FuzzSSEParser.
	f.Add("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: raw\"}]}}\n\n", 7, 64)
	f.Add("id: 49c0a3b8-7306-461c-a2a4-0bc913eb3440\ndata: \n\nevent: message\nid: 88a9\ndata: {\"result\":{},\"jsonrpc\":\"2.0\",\"id\":5}\n\n", 3, 1<<20)
	f.Add(": ok\n\n\xef\xbb\xbfdata: a\r\ndata: b\r\r\n", 1, 16)
	f.Fuzz(func(t *testing.T, stream string, cut int, max int) {
		if max < 0 {
			max = -max
		}
		max %= 1 << 16
		whole, wholeComments := parseAll(max, stream)
		if cut < 0 {
			cut = -cut
		}
		if len(stream) > 0 {
			cut %= len(stream) + 1
		} else {
			cut = 0
		}
		split, splitComments := parseAll(max, stream[:cut], stream[cut:])
		require.Equal(t, whole, split)
		require.Equal(t, wholeComments, splitComments)
		for _, e := range whole {
			if !e.Oversized {
				require.Equal(t, len(e.Data), e.Size)
			}
		}
	})
}
