// Package httptap is mcpwatch's collector for MCP's Streamable HTTP transport: a transparent
// reverse proxy in front of one or more MCP servers that watches the JSON-RPC traffic going
// through it and emits one schemas.Event per MCP operation.
//
// Clients connect to /mcp (the upstream named "default", or the first one) or /mcp/{name}. Each
// POST body is parsed (a message or a batch); requests wait for their responses on that POST's
// response, which is either one JSON body or an SSE stream parsed as it flows, and become one
// event each when paired, when their stream ends without an answer, or when RequestTimeout
// passes. Notifications and the client's answers to server requests become events when their
// 202 arrives. Messages the server sends on a request's stream or on the standalone GET stream
// become server-to-client events; a server request is paired with the client's answering POST.
//
// The tap never changes what the peers say to each other: bodies are forwarded byte for byte,
// streams are passed on event by event as they arrive, and whatever it cannot parse passes
// through and is recorded as an unparsed event. The one change is on the way up: the tap asks
// upstreams for an unencoded (identity) body, which every client accepts, so it can read it.
//
// Sessions are tracked by Mcp-Session-Id: the client's name and version and the negotiated
// protocol version learnt from initialize are stamped on every later event of the session. The
// 2026-07-28 revision has no sessions; its events carry the client identity each request
// declares in params._meta and an empty SessionID (the tap does not invent session ids).
//
// Events carry no argument or result values: only the arguments' shape (keys and JSON types) and
// hashes of the canonical JSON of arguments and results.
package httptap
