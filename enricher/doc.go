// Package enricher is the stage between mcp.events and mcp.events.enriched. It resolves which
// agent each event belongs to (by a configurable precedence over the identities the collector
// saw) and adds operator labels. Later it will add content-inspection flags, tool-definition
// drift, policy and inventory context.
package enricher
