package policy_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/enricher/policy"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const testPolicy = `
tool_tags:
  - tools: ["delete_*", drop_table]
    tags: [destructive]
  - servers: ["db-*"]
    tools: [query]
    tags: [pii]
  - tools: [query]
    tags: [sql]
rules:
  - name: ci-read-only
    match:
      agents: ["ci-*"]
    servers: [github, "db-dev"]
    deny_servers: [db-prod]
    tools: ["read_*", "list_*", query]
    deny_tools: [read_secrets]
  - name: no-destruction
    severity: critical
    match:
      teams: [payments]
    forbid_tags: [destructive, prod]
  - name: dev-in-dev
    severity: medium
    match:
      environments: [dev]
    server_environments: [dev, shared]
  - name: same-env
    severity: low
    match:
      peer_groups: [strict]
    same_environment: true
  - name: sql
    match:
      agent_sources: [mtls, jwt]
      clients: ["claude-*"]
    arguments:
      - tools: [query]
        path: sql
        required: true
        must_match: '^(?i)select\b'
        must_not_match: '(?i)\bpg_sleep\b'
        max_length: 40
      - tools: [query]
        path: options.mode
        enum: [read, explain]
      - tools: [query]
        path: "files[*].path"
        must_not_match: '^/etc/'
  - name: strangers
    severity: medium
    match:
      in_inventory: false
      declared_agents: ["*"]
    deny_tools: ["*"]
`

const testInventory = `
agents:
  - id: ci-1
    team: platform
    environment: dev
  - id: pay-1
    team: payments
    environment: prod
    peer_group: strict
    tags: [finance]
  - id: strict-dev
    environment: dev
    peer_group: strict
servers:
  - id: github
    environment: shared
  - id: db-prod
    environment: prod
    tags: [prod]
  - id: db-dev
    environment: dev
  - id: unknown-env
`

func load(t *testing.T) (*policy.Policy, *inventory.Inventory) {
	t.Helper()
	p, err := policy.Parse([]byte(testPolicy), "policy.yml")
	require.NoError(t, err)
	inv, err := inventory.Parse([]byte(testInventory), "inventory.yml")
	require.NoError(t, err)
	return p, inv
}

// call builds a client-to-server event.
func call(agent, server, method, target string) *schemas.Event {
	return &schemas.Event{AgentID: agent, AgentSource: "header", ServerID: server, Direction: schemas.ClientToServer,
		Kind: schemas.KindRequest, Method: method, Target: target}
}

func toolCall(agent, server, tool string) *schemas.Event {
	return call(agent, server, "tools/call", tool)
}

// sqlCall is a query from an agent the sql rule matches, with arguments as the collector
// passed them.
func sqlCall(args string, truncated bool) *schemas.Event {
	ev := toolCall("analyst", "warehouse", "query")
	ev.AgentSource, ev.ClientName = "mtls", "claude-code"
	if args != "" {
		ev.Content = &schemas.Content{Arguments: args, Truncated: truncated}
	}
	return ev
}

type violation struct {
	rule, tool string
	reasons    []string
}

func TestEvaluate(t *testing.T) {
	p, inv := load(t)
	for _, tc := range []struct {
		name      string
		ev        *schemas.Event
		want      []violation
		unchecked []string // rule: path: why
	}{
		{name: "allowed server and tool", ev: toolCall("ci-1", "github", "read_file")},
		{name: "allowed: any method on an allowed server", ev: call("ci-1", "github", "tools/list", "")},
		{
			name: "server not allowed (any method)",
			ev:   call("ci-1", "gitlab", "initialize", ""),
			want: []violation{{"ci-read-only", "", []string{"server gitlab is not among the allowed servers"}}},
		},
		{
			name: "denied server, and dev agent on a prod server",
			ev:   toolCall("ci-1", "db-prod", "query"),
			want: []violation{
				{"ci-read-only", "", []string{"server db-prod is not among the allowed servers", "server db-prod is denied (deny_servers db-prod)"}},
				{"dev-in-dev", "", []string{"server db-prod is in environment prod"}},
			},
		},
		{
			name: "tool not allowed",
			ev:   toolCall("ci-1", "github", "create_issue"),
			want: []violation{{"ci-read-only", "create_issue", []string{"tool create_issue is not among the allowed tools"}}},
		},
		{
			name: "denied tool among allowed ones",
			ev:   toolCall("ci-1", "github", "read_secrets"),
			want: []violation{{"ci-read-only", "read_secrets", []string{"tool read_secrets is denied (deny_tools read_secrets)"}}},
		},
		{
			name: "tool names only count for tools/call",
			ev:   call("ci-1", "github", "prompts/get", "create_issue"),
		},
		{
			name: "forbidden tool tag",
			ev:   toolCall("pay-1", "db-prod", "delete_repo"),
			want: []violation{
				{"no-destruction", "", []string{"server db-prod is tagged prod (forbid_tags)"}},
				{"no-destruction", "delete_repo", []string{"tool delete_repo is tagged destructive (forbid_tags)"}},
			},
		},
		{
			name: "forbidden server tag, and a server outside the agent's environment",
			ev:   call("pay-1", "db-dev", "tools/list", ""),
			want: []violation{{"same-env", "", []string{"agent in environment prod used server db-dev in environment dev"}}},
		},
		{
			name: "forbidden server tag",
			ev:   call("pay-1", "db-prod", "tools/list", ""),
			want: []violation{{"no-destruction", "", []string{"server db-prod is tagged prod (forbid_tags)"}}},
		},
		{
			name: "dev agent on a prod server",
			ev:   call("strict-dev", "db-prod", "initialize", ""),
			want: []violation{
				{"dev-in-dev", "", []string{"server db-prod is in environment prod"}},
				{"same-env", "", []string{"agent in environment dev used server db-prod in environment prod"}},
			},
		},
		{
			name: "dev agent on a shared server: in server_environments, not the same environment",
			ev:   call("strict-dev", "github", "initialize", ""),
			want: []violation{{"same-env", "", []string{"agent in environment dev used server github in environment shared"}}},
		},
		{name: "servers without an environment are not checked", ev: call("strict-dev", "unknown-env", "initialize", "")},
		{name: "servers not in the inventory are not checked", ev: call("strict-dev", "elsewhere", "initialize", "")},
		{name: "server-initiated requests are not the agent's", ev: func() *schemas.Event {
			ev := call("ci-1", "gitlab", "sampling/createMessage", "")
			ev.Direction = schemas.ServerToClient
			return ev
		}()},
		{name: "arguments within the constraints", ev: sqlCall(`{"sql":"SELECT 1","options":{"mode":"read"},"files":[{"path":"/tmp/a"}]}`, false)},
		{
			name: "argument regexes",
			ev:   sqlCall(`{"sql":"select pg_sleep(10)"}`, false),
			want: []violation{{"sql", "query", []string{"argument sql (19 characters) matches must_not_match /(?i)\\bpg_sleep\\b/"}}},
		},
		{
			name: "argument must match",
			ev:   sqlCall(`{"sql":"DELETE FROM users"}`, false),
			want: []violation{{"sql", "query", []string{"argument sql (17 characters) does not match must_match /^(?i)select\\b/"}}},
		},
		{
			name: "argument too long, characters not bytes",
			ev:   sqlCall(`{"sql":"SELECT 'ééééééééééééééééééééééééééééééééé'"}`, false),
			want: []violation{{"sql", "query", []string{"argument sql has 42 characters, more than max_length 40"}}},
		},
		{
			name: "argument not in enum",
			ev:   sqlCall(`{"sql":"SELECT 1","options":{"mode":"write"}}`, false),
			want: []violation{{"sql", "query", []string{"argument options.mode (5 characters) is not one of enum [read, explain]"}}},
		},
		{
			name: "a number checked as its JSON text",
			ev:   sqlCall(`{"sql":"SELECT 1","options":{"mode":7}}`, false),
			want: []violation{{"sql", "query", []string{"argument options.mode (1 characters) is not one of enum [read, explain]"}}},
		},
		{
			name: "every element of [*]",
			ev:   sqlCall(`{"sql":"SELECT 1","files":[{"path":"/tmp/a"},{"path":"/etc/passwd"},{"name":"x"}]}`, false),
			want: []violation{{"sql", "query", []string{"argument files[1].path (11 characters) matches must_not_match /^/etc//"}}},
		},
		{
			name: "required argument missing",
			ev:   sqlCall(`{"query":"SELECT 1"}`, false),
			want: []violation{{"sql", "query", []string{"argument sql is missing (required)"}}},
		},
		{
			name:      "truncated arguments are not guessed at",
			ev:        sqlCall(`{"sql":"SELECT * FROM users WHERE pg_sl`, true),
			unchecked: []string{"sql: sql: the arguments were cut at the inspection size cap", "sql: options.mode: the arguments were cut at the inspection size cap", "sql: files[*].path: the arguments were cut at the inspection size cap"},
		},
		{
			name:      "absent arguments are not guessed at",
			ev:        sqlCall("", false),
			unchecked: []string{"sql: sql: the arguments were not passed to the enricher", "sql: options.mode: the arguments were not passed to the enricher", "sql: files[*].path: the arguments were not passed to the enricher"},
		},
		{
			name: "absent arguments: the shape still shows a required argument missing",
			ev: func() *schemas.Event {
				ev := sqlCall("", false)
				ev.ArgsShape = `{"query":"string"}`
				return ev
			}(),
			want:      []violation{{"sql", "query", []string{"argument sql is missing (required)"}}},
			unchecked: []string{"sql: options.mode: the arguments were not passed to the enricher", "sql: files[*].path: the arguments were not passed to the enricher"},
		},
		{
			name:      "a masked value is not checked",
			ev:        sqlCall(`{"sql":"***"}`, false),
			unchecked: []string{"sql: sql: the value was masked as a secret by the collector"},
		},
		{
			name: "match conditions: source and client",
			ev: func() *schemas.Event {
				ev := sqlCall(`{"sql":"DROP TABLE x"}`, false)
				ev.AgentSource = "header" // the sql rule wants mtls or jwt
				return ev
			}(),
		},
		{
			name: "in_inventory false and declared agents",
			ev: func() *schemas.Event {
				ev := toolCall("stranger", "github", "anything")
				ev.DeclaredAgent = "stranger"
				return ev
			}(),
			want: []violation{{"strangers", "anything", []string{"tool anything is denied (deny_tools *)"}}},
		},
		{name: "declared_agents needs a declared agent", ev: toolCall("stranger", "github", "anything")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &policy.Call{Event: tc.ev, Agent: inv.Agent(tc.ev.AgentID), Server: inv.Server(tc.ev.ServerID)}
			if tc.ev.Method == "tools/call" {
				c.ToolTags = p.ToolTags(tc.ev.ServerID, tc.ev.Target)
			}
			res := p.Evaluate(c)
			var got []violation
			for _, v := range res.Violations {
				got = append(got, violation{v.Rule.Name, v.Tool, v.Reasons})
			}
			require.Equal(t, tc.want, got)
			var unchecked []string
			for _, u := range res.Unchecked {
				unchecked = append(unchecked, u.Rule.Name+": "+u.Path+": "+u.Why)
			}
			require.Equal(t, tc.unchecked, unchecked)
		})
	}
}

func TestToolTags(t *testing.T) {
	p, _ := load(t)
	for _, tc := range []struct {
		server, tool string
		want         []string
	}{
		{"github", "delete_repo", []string{"destructive"}},
		{"db-prod", "query", []string{"pii", "sql"}},
		{"warehouse", "query", []string{"sql"}},
		{"github", "read_file", nil},
	} {
		require.Equal(t, tc.want, p.ToolTags(tc.server, tc.tool), "%s/%s", tc.server, tc.tool)
	}
	// The shared slice of a single entry is not modified by a later merge.
	require.Equal(t, []string{"sql"}, p.ToolTags("warehouse", "query"))
}

func TestRuleDefaults(t *testing.T) {
	p, _ := load(t)
	rules := p.Rules()
	require.Equal(t, schemas.SeverityHigh, rules[0].Severity, "the default severity")
	require.Equal(t, schemas.SeverityCritical, rules[1].Severity)
	require.Equal(t, "servers github, db-dev; no servers db-prod; tools read_*, list_*, query; no tools read_secrets", rules[0].Allows())
	require.Equal(t, "argument sql of query required, matching /^(?i)select\\b/, not matching /(?i)\\bpg_sleep\\b/, at most 40 characters; "+
		"argument options.mode of query one of [read, explain]; argument files[*].path of query not matching /^/etc//", rules[4].Allows())
}

// Every problem is reported at once, at its line, with its path.
func TestParseErrors(t *testing.T) {
	path := filepath.Join("testdata", "bad.yml")
	_, err := policy.Load(path)
	require.Error(t, err)
	want := []string{
		`:3: tool_tags[0].tags[1]: must not contain commas or spaces, got "two words"`,
		`:4: tool_tags[1].tools: must list at least one tool`,
		`:8: rules[1].name: duplicate rule name "ok" (also rules[0])`,
		`:11: rules[2].severity: must be info, low, medium, high or critical, got "urgent"`,
		`:13: rules[2].match.agents[0]: invalid glob "ci-[0-9": missing closing ]`,
		`:14: rules[2].tools[1]: invalid glob "[": missing closing ]`,
		`:15: rules[2].deny_servers[0]: invalid glob "a\\": trailing \ escapes nothing`,
		`:19: rules[3].arguments[0].path: invalid path "a..b": empty key`,
		`:20: rules[3].arguments[0].must_match: invalid regular expression: missing closing ): ` + "`(unclosed`",
		`:21: rules[3].arguments[0].max_length: must not be negative, got -1`,
		`:22: rules[3].arguments[1].tools: must list at least one tool`,
		`:24: rules[3].arguments[1].enum: must list at least one value`,
		`:25: rules[3].arguments[2]: checks nothing: give required, must_match, must_not_match, max_length or enum`,
		`:27: rules[4]: checks nothing: give servers, deny_servers, tools, deny_tools, forbid_tags, server_environments, same_environment or arguments`,
		`:30: rules[5].name: must not be empty`,
	}
	for i := range want {
		want[i] = path + want[i]
	}
	require.Equal(t, strings.Join(want, "\n"), err.Error())
}

func TestArgumentPaths(t *testing.T) {
	for path, want := range map[string]string{
		"a":      "",
		"$":      "",
		"$.a.b":  "",
		"a[0].b": "",
		"a[*]":   "",
		"[0]":    "",
		"":       "must not be empty (use $ for the whole arguments object)",
		".a":     `invalid path ".a": empty key`,
		"a.":     `invalid path "a.": empty key`,
		"a[":     `invalid path "a[": missing ]`,
		"a[-1]":  `invalid path "a[-1]": an index is a number or *, got [-1]`,
		"a[x]":   `invalid path "a[x]": an index is a number or *, got [x]`,
		"a[0]b":  `invalid path "a[0]b": a key must follow a dot`,
		"a]":     `invalid path "a]": unexpected ]`,
		"a..b":   `invalid path "a..b": empty key`,
	} {
		t.Run(path, func(t *testing.T) {
			src := "rules:\n  - name: r\n    arguments:\n      - tools: [t]\n        path: '" + path + "'\n        max_length: 1\n"
			_, err := policy.Parse([]byte(src), "p.yml")
			if want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, "p.yml:5: rules[0].arguments[0].path: "+want)
		})
	}
}

func TestEmptyPolicy(t *testing.T) {
	p, err := policy.Parse([]byte("# nothing yet\n"), "p.yml")
	require.NoError(t, err)
	require.Empty(t, p.Evaluate(&policy.Call{Event: toolCall("a", "s", "t")}).Violations)
}

// The example files do what docs/policy.md says they do.
func TestExamplePolicy(t *testing.T) {
	p, err := policy.Load("../../deploy/policy.example.yml")
	require.NoError(t, err)
	inv, err := inventory.Load("../../deploy/inventory.example.yml")
	require.NoError(t, err)
	support := "spiffe://corp.example/ns/support/sa/triage"
	for _, tc := range []struct {
		ev   *schemas.Event
		want []string // rule/tool, or rule for a violation about the server
	}{
		{toolCall("ci-4711", "github", "get_file"), nil},
		{toolCall("ci-4711", "github", "merge_pull_request"), []string{"ci-read-only/merge_pull_request", "dev-stays-in-dev/merge_pull_request"}},
		{call("ci-4711", "postgres-prod", "initialize", ""), []string{"ci-read-only", "dev-stays-in-dev"}},
		{func() *schemas.Event {
			ev := toolCall(support, "postgres-staging", "query")
			ev.AgentSource, ev.Content = "mtls", &schemas.Content{Arguments: `{"sql":"COPY customers TO '/tmp/x.csv'"}`}
			return ev
		}(), []string{"support-tools/query"}},
		{func() *schemas.Event {
			ev := toolCall(support, "postgres-staging", "query")
			ev.AgentSource, ev.Content = "mtls", &schemas.Content{Arguments: `{"sql":"select * from tickets"}`}
			return ev
		}(), nil},
		{toolCall("laptop-bob", "filesystem", "read_file"), nil},
		{toolCall("laptop-bob", "filesystem", "write_file"), []string{"unknown-agents-read-only/write_file"}},
	} {
		ev := tc.ev
		c := &policy.Call{Event: ev, Agent: inv.Agent(ev.AgentID), Server: inv.Server(ev.ServerID), ToolTags: p.ToolTags(ev.ServerID, ev.Target)}
		var got []string
		for _, v := range p.Evaluate(c).Violations {
			if v.Tool == "" {
				got = append(got, v.Rule.Name)
			} else {
				got = append(got, v.Rule.Name+"/"+v.Tool)
			}
		}
		require.Equal(t, tc.want, got, "%s %s %s on %s", ev.AgentID, ev.Method, ev.Target, ev.ServerID)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(testPolicy))
	f.Add([]byte("rules: [{name: a, arguments: [{tools: ['*'], path: 'a[*].b', must_match: '^x$'}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data, "fuzz.yml")
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "fuzz.yml"), "every error names the file: %v", err)
			return
		}
		for _, args := range []string{`{"a":[{"b":"x"}],"sql":"SELECT"}`, `{"a":`, "null", "[1,2]"} {
			ev := toolCall("ci-1", "github", "query")
			ev.Content = &schemas.Content{Arguments: args}
			p.Evaluate(&policy.Call{Event: ev, ToolTags: p.ToolTags("github", "query")})
		}
	})
}
