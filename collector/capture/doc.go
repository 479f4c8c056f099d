// Package capture decides which content of MCP operations a collector attaches to events, and
// makes that content safe to carry: secrets masked, size capped.
//
// By default events describe arguments and results only by shape and hashes. Two things add
// content (schemas.Content): inspection, on by default, attaches up to InspectionMaxBytes of
// each operation's arguments and result so the enricher can inspect them on mcp.events, after
// which the enricher drops it; and capture, which an operator turns on per server or per tool
// (collector.capture), marks the content captured so it is kept on mcp.events.enriched and
// stored, cut at the rule's max_bytes. List results (tools/list, prompts/list, resources/list,
// resources/templates/list) are carried up to DefinitionsMaxBytes instead when that is larger,
// so the enricher can compare servers' definitions whole (tool-definition drift). Either way values under secret-looking keys (password,
// token, secret, authorization, api_key, …) and strings that look like credentials (bearer
// tokens, JWTs, AWS access key ids, GitHub, Slack and sk- API keys, private keys, passwords in
// URLs) are replaced by "***" before anything leaves the collector.
package capture
