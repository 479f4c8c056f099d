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
// Notifications about a request are tied to it: progress by its progressToken (on whichever
// stream it arrives), a cancellation by the request's id; their events carry the request's
// JSONRPCID and Target. A cancelled request is settled once, as status error with code
// CodeCancelled (-32800). A subscriptions/listen request (2026-07-28) has no deadline and
// becomes one event when it ends. The legacy HTTP+SSE transport (2024-11-05) is recognised by
// the endpoint event on its GET stream, whose URL the tap rewrites to its own route so the
// client's POSTs come back through it; requests are then paired with responses on the GET
// stream (legacy.go).
//
// The tap never changes what the peers say to each other: bodies are forwarded byte for byte,
// streams are passed on event by event as they arrive, and whatever it cannot parse passes
// through and is recorded as an unparsed event. The one change is on the way up: the tap asks
// upstreams for an unencoded (identity) body, which every client accepts, so it can read it.
// Forwarding follows httputil.ReverseProxy's rules (hop-by-hop headers, Host, trailers, 1xx,
// 502 when the upstream is unreachable) at less cost: plain-HTTP upstreams are reached on the
// tap's own keep-alive connections, read and written by the request's goroutine, and a stream
// is flushed whenever the tap would otherwise wait for the upstream (forward.go, h1client.go);
// TLS upstreams, proxies from the environment and bodies the tap streams go through
// http.Transport, and protocol upgrades through httputil.ReverseProxy.
//
// Sessions are tracked by Mcp-Session-Id: the client's name and version and the negotiated
// protocol version learnt from initialize are stamped on every later event of the session. The
// 2026-07-28 revision has no sessions; its events carry the client identity each request
// declares in params._meta, and a session id stitched by identity.Stitcher (per agent, server,
// client and client IP, until an idle gap), as does any other traffic without a session id.
//
// Each event is attributed to an agent by identity.Resolver: the verified client certificate
// when the listener does mTLS (Config.TLS), a bearer JWT, the agent-id header, W3C baggage or
// the client's name, by the configured precedence (Config.Identity, docs/identity.md).
//
// Events describe arguments and results by shape (keys and JSON types) and hashes of their
// canonical JSON. They also carry them as content (schemas.Content), secrets masked and cut at
// a size cap, for inspection on mcp.events; only where Config.Capture opts a server or tool in
// is that content marked captured, and kept past the enricher (package capture).
//
// Outcomes: a JSON-RPC error is status error with its code; a result with isError: true is
// tool_error; a non-2xx HTTP answer (Go servers answer transport errors in text/plain) is error
// with the HTTP status as code, or the code of a JSON-RPC error with a null id in the body; an
// unreachable upstream is error 502; no response before the stream ended or before
// RequestTimeout is timeout. Bodies and SSE events over MaxMessageBytes are unparsed events
// (status malformed) carrying only their size, as is anything that is not JSON-RPC.
//
// Events are handed to the emitter by a goroutine of the tap's own, so a slow emitter never
// holds a call.
//
// Memory is bounded: MaxPending requests per HTTP exchange and server requests per session,
// MaxSessions sessions (least recently used forgotten first, idle ones after
// SessionIdleTimeout), and MaxMessageBytes buffered per body or SSE event.
//
// Metrics (prometheus, on settings.Registry): mcpwatch_httptap_requests_total{upstream,method},
// mcpwatch_httptap_events_total{status}, mcpwatch_httptap_malformed_total{direction},
// mcpwatch_httptap_upstream_errors_total{upstream} and
// mcpwatch_httptap_untracked_messages_total{reason} (unmatched_response, pending_limit,
// duplicate_id, legacy_session_limit).
package httptap
