// Package inspect looks inside the content of MCP operations (tool arguments and results, tool
// descriptions) for what an agent should not be fed or leak: instruction-like injection
// phrasing, hidden Unicode, terminal escapes and control characters, encoded payloads, shell
// and script snippets, secrets, personal data, and links to hosts outside an allowlist,
// markdown-image exfiltration links included. Each finding becomes a schemas.Flag with a type,
// a severity, the JSON path of the string it was found in, and evidence that locates it
// (offsets, lengths, a keyed short hash, the rule) without repeating it.
//
// The enricher runs an Inspector on every event's size-capped content before it drops what
// was not captured; docs/inspection.md lists the flag types and severities. An Inspector is
// safe for concurrent use. It scans each string once to collect cheap features and runs a
// detector only when those features call for it, so a clean string costs one pass and no
// allocation.
package inspect
