// Package identity attributes MCP traffic to agents and stitches sessions where the protocol
// has none.
//
// A Resolver looks at one HTTP request (its verified mTLS client certificate, its bearer JWT, an
// agent-id header, a W3C baggage entry) and at the client's declared clientInfo name, and picks
// the agent by a configured precedence, saying which method attributed it (mtls, jwt,
// jwt_unverified, header, baggage, client_info or unknown) for Event.AgentSource. Bearer tokens
// are verified against a JWKS (file or URL, cached and refreshed) or an HMAC secret; the token
// itself is never stored or logged, only a hash of it keys a bounded verification cache.
//
// A Stitcher gives traffic without a protocol session id (the stateless 2026-07-28 revision,
// legacy transports) a session id derived from its key and start: operations of the same agent,
// server and client instance belong to one session until an idle gap passes, unless they
// continue a trace already seen in it. Its open sessions are saved to a file at shutdown and loaded at start, so a session
// in progress keeps its id across a restart. docs/identity.md states the rules precisely.
package identity
