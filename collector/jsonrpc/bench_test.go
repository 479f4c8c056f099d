package jsonrpc

import "testing"

var (
	benchRequest  = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello","count":3,"tags":["a","b"]},"_meta":{"progressToken":"tok-1","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}`)
	benchResponse = []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"Echo: hello"}],"isError":false}}`)
)

// BenchmarkParseAndDescribe measures what the tap does with each message of a tools/call.
func BenchmarkParseAndDescribe(b *testing.B) {
	b.Run("parse-request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Parse(benchRequest); err != nil {
				b.Fatal(err)
			}
		}
	})
	req, _ := ParseMessage(benchRequest)
	b.Run("describe-request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if DescribeRequest(&req).Target != "echo" {
				b.Fatal("no target")
			}
		}
	})
	b.Run("parse-response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Parse(benchResponse); err != nil {
				b.Fatal(err)
			}
		}
	})
	resp, _ := ParseMessage(benchResponse)
	b.Run("describe-response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if DescribeResponse(&resp).ResultHash == "" {
				b.Fatal("no hash")
			}
		}
	})
}
