// Package drift detects tool-definition drift: it fingerprints the tools, prompts, resources
// and resource templates each MCP server returns in its list results (tools/list,
// prompts/list, resources/list, resources/templates/list), keeps every server's current set,
// and reports definitions that were added, removed or changed after the server's first list
// result (the baseline), with a readable diff, a severity that weighs whether the server
// announced the change (notifications/*/list_changed) and whether a new description carries
// injection flags, and tools of the same name offered to one agent by two servers
// (shadowing). Every version is recorded in the store (store.SaveDefinitions), and the current
// state is rebuilt from there on start, so a restart neither re-baselines nor re-alerts.
package drift
