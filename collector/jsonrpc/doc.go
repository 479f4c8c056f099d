// Package jsonrpc parses JSON-RPC 2.0 messages as MCP peers put them on the wire (single messages
// and batches), reads the MCP facts a collector records about them (method target, client
// identity, protocol version, trace context, tool errors), and redacts payloads into what an
// event may carry: the shape of the arguments (keys and JSON types) and short hashes of the
// canonical JSON of arguments and results. It holds no state and is shared by the collectors.
package jsonrpc
