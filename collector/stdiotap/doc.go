// Package stdiotap is mcpwatch's collector for MCP's stdio transport: it runs an MCP server as
// a child process in place of the client's own launch (`mcpwatch wrap -- CMD ARGS…`), relays
// the client's stdin to the child and the child's stdout back, and emits one schemas.Event per
// MCP operation it sees on the way.
//
// The relay never changes or holds back traffic: each read is written on at once, byte for
// byte; parsing happens afterwards on a copy, in a goroutine of its own, so a slow parser (or
// a slow event sink) cannot delay a message. If the parser falls behind by more than its
// bounded buffer, the bytes it missed are recorded as one unparsed event and parsing resumes
// at the next line. The child's stderr is the caller's to give (wrap passes its own, so the
// child writes to it directly).
//
// Messages are newline-delimited JSON-RPC (single messages or batches). Requests are paired
// with the response that carries their id coming back the other way, per direction (ids start
// at 0 on both sides): client requests with server responses, server requests (sampling,
// roots, elicitation) with client responses. A pair, a notification, or a request that gets no
// answer (before RequestTimeout, before notifications/cancelled, or before the child exits) is
// one event. Lines that are not JSON-RPC, and lines longer than MaxLineBytes (relayed, not
// parsed), are unparsed events with status malformed and their size.
//
// Every event of one Run shares a SessionID (a UUIDv7 minted per run), Source stdiotap,
// Transport stdio and ServerID (Config.ServerID, by default derived from the command). The
// agent is Config.AgentID when set (recorded as the declared agent), else the clientInfo name
// from initialize. As everywhere in mcpwatch, events record argument shapes and hashes; the
// arguments and results themselves travel masked and size-capped for the enricher's inspection,
// and are stored only where the running mcpwatch's capture rules opt the server in.
package stdiotap
