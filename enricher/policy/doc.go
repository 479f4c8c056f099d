// Package policy says what agents may do, and notices when they do something else. A policy
// is a YAML file of rules: each matches agents by identity (agent id, how it was attributed,
// client name, declared agent) and by inventory attributes (team, environment, peer group,
// criticality, tags), and says which servers and tools they may use, which they must not,
// which tool and server tags they must not touch (tool_tags tags tools: pii, prod,
// destructive), which server environments they may reach, and what the arguments of their
// tool calls must look like. mcpwatch observes and never blocks: a violation becomes a
// policy_violation anomaly that names the rule, what was done and what the rule allows.
//
// Engine is the enricher's use of it: it joins the inventory (package inventory) into every
// event's labels, raises unknown_agent once per agent the inventory does not list, evaluates
// the policy, and reloads both files when they change or on SIGHUP, keeping the last good
// version when a new one is invalid. See docs/policy.md.
package policy
