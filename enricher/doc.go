// Package enricher is the stage between mcp.events and mcp.events.enriched. It keeps the agent
// attribution the collector made (collector.identity: mTLS, JWT, header, baggage, clientInfo),
// completing it only for events that arrive without one, adds operator labels, and drops event
// content that was not captured, so only content an operator opted in to capture is stored.
// Later it will inspect that content (flags), and add tool-definition drift, policy and
// inventory context.
package enricher
