package policy_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/enricher/policy"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log destination the watch goroutine and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	engine        *policy.Engine
	reg           *prometheus.Registry
	log           *syncBuffer
	files         policy.Files
	policy, inven string
}

// newFixture writes the policy and inventory (either may be "" for none) and starts an engine
// on them.
func newFixture(t *testing.T, policyText, inventoryText string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	if policyText != "" {
		f.policy = filepath.Join(dir, "policy.yml")
		require.NoError(t, os.WriteFile(f.policy, []byte(policyText), 0o600))
	}
	if inventoryText != "" {
		f.inven = filepath.Join(dir, "inventory.yml")
		require.NoError(t, os.WriteFile(f.inven, []byte(inventoryText), 0o600))
	}
	f.files = policy.Files{PolicyFile: f.policy, InventoryFile: f.inven}
	f.files.SetDefaults()
	var err error
	f.engine, err = policy.NewEngine(f.files, pipeline.Settings{Logger: slog.New(slog.NewTextHandler(f.log, nil)), Registry: f.reg})
	require.NoError(t, err)
	t.Cleanup(f.engine.Stop)
	return f
}

func (f *fixture) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var now = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(ev *schemas.Event, id string, t time.Time) *schemas.Event {
	ev.ID, ev.ObservedAt, ev.SessionID = id, t, "s-1"
	return ev
}

func TestEngineLabels(t *testing.T) {
	f := newFixture(t, testPolicy, testInventory)
	ev := at(toolCall("pay-1", "db-prod", "query"), "e1", now)
	ev.Labels = map[string]string{"agent.peer_group": "chosen-by-client", "server.team": "x", "tags": "x", "env": "kept"}
	f.engine.Apply(ev, now, nil)
	require.Equal(t, map[string]string{
		"agent.team":         "payments",
		"agent.environment":  "prod",
		"agent.peer_group":   "strict",
		"agent.tags":         "finance",
		"server.environment": "prod",
		"server.tags":        "prod",
		"tags":               "finance,pii,prod,sql", // agent, server and tool tags
		"env":                "kept",
	}, ev.Labels, "the inventory's labels replace what the event carried under them")

	unknown := at(toolCall("stranger", "nowhere", "read_file"), "e2", now)
	f.engine.Apply(unknown, now, nil)
	require.Nil(t, unknown.Labels, "nothing known, nothing added")

	// Without an inventory, events keep their agent. and server. labels; tool tags still apply.
	f2 := newFixture(t, testPolicy, "")
	ev2 := at(toolCall("pay-1", "db-prod", "delete_x"), "e3", now)
	ev2.Labels = map[string]string{"agent.team": "from-collector"}
	f2.engine.Apply(ev2, now, nil)
	require.Equal(t, map[string]string{"agent.team": "from-collector", "tags": "destructive"}, ev2.Labels)
}

func TestEngineNothingConfigured(t *testing.T) {
	f := newFixture(t, "", "")
	ev := at(toolCall("x", "y", "z"), "e1", now)
	ev.Labels = map[string]string{"agent.team": "kept"}
	require.Empty(t, f.engine.Apply(ev, now, nil))
	require.Equal(t, map[string]string{"agent.team": "kept"}, ev.Labels)
	f.engine.Start() // no files: nothing to watch
	f.engine.Stop()
}

func TestUnknownAgentOnce(t *testing.T) {
	f := newFixture(t, "", testInventory+"unknown_agent_severity: low\n")
	first := f.engine.Apply(at(call("stranger", "github", "initialize", ""), "e1", now), now, nil)
	require.Len(t, first, 1)
	a := first[0]
	require.Equal(t, policy.AnomalyID("stranger", policy.KindUnknownAgent), a.ID)
	require.Equal(t, policy.KindUnknownAgent, a.Kind)
	require.Equal(t, schemas.SeverityLow, a.Severity)
	require.Equal(t, schemas.SeverityLow, schemas.SeverityForScore(a.Score))
	require.Equal(t, "stranger", a.AgentID)
	require.Equal(t, "github", a.ServerID)
	require.Equal(t, []string{"e1"}, a.EvidenceEventIDs)
	require.Equal(t, 1, a.Count)
	require.Equal(t, now, a.FirstSeen)
	require.Equal(t, "Agent stranger is not in the inventory", a.Title)
	require.Contains(t, a.Explanation.Summary, "Agent stranger (attributed by header) used server github, and no inventory entry matches it")
	require.Equal(t, policy.ModelInventory, a.Explanation.Model)

	for i := range 3 {
		require.Empty(t, f.engine.Apply(at(toolCall("stranger", "github", "read"), "e", now.Add(time.Duration(i)*time.Hour)), now, nil), "raised once")
	}
	require.Empty(t, f.engine.Apply(at(toolCall("ci-1", "github", "read"), "e", now), now, nil), "a listed agent")
	other := f.engine.Apply(at(call("other", "", "ping", ""), "e9", now), now, nil)
	require.Len(t, other, 1, "each unknown agent once")
	require.Equal(t, 2.0, f.counter(t, "mcpwatch_enricher_unknown_agents_total"))

	// A restart raises it again, with the same id: the store updates the same anomaly.
	f2 := newFixture(t, "", testInventory)
	again := f2.engine.Apply(at(call("stranger", "github", "initialize", ""), "e1", now), now, nil)
	require.Len(t, again, 1)
	require.Equal(t, a.ID, again[0].ID)

	// Without an inventory nobody is unknown.
	f3 := newFixture(t, testPolicy, "")
	require.Empty(t, f3.engine.Apply(at(call("stranger", "github", "initialize", ""), "e1", now), now, nil))
}

func TestViolationAnomalies(t *testing.T) {
	f := newFixture(t, testPolicy, testInventory)
	var got []schemas.Anomaly
	for i, id := range []string{"e1", "e2", "e3"} {
		got = f.engine.Apply(at(toolCall("pay-1", "github", "drop_table"), id, now.Add(time.Duration(i)*time.Minute)), now, got)
	}
	// Every repeat is a new version of one anomaly (enricher.handle keeps a batch's latest).
	require.Len(t, got, 6, "same-env (server) and no-destruction (tool), three times")
	byID := map[string]schemas.Anomaly{}
	for _, a := range got {
		byID[a.ID] = a
	}
	require.Len(t, byID, 2)
	tool := byID[policy.AnomalyID("pay-1", policy.KindPolicyViolation, "no-destruction", "github", "drop_table", "2026-11-20T10:00:00Z")]
	require.Equal(t, 3, tool.Count)
	require.Equal(t, []string{"e1", "e2", "e3"}, tool.EvidenceEventIDs)
	require.Equal(t, now, tool.FirstSeen)
	require.Equal(t, now.Add(2*time.Minute), tool.LastSeen)
	require.Equal(t, policy.KindPolicyViolation, tool.Kind)
	require.Equal(t, "no-destruction/drop_table", tool.Subject)
	require.Equal(t, schemas.SeverityCritical, tool.Severity, "the rule's severity")
	require.Equal(t, "s-1", tool.SessionID)
	require.Equal(t, []string{"destructive", "finance"}, tool.Tags, "agent, server and tool tags")
	require.Equal(t, "Policy no-destruction: agent pay-1 called drop_table on github", tool.Title)
	require.Equal(t, schemas.Explanation{
		Summary:  `Agent pay-1 called tool drop_table on server github, which rule "no-destruction" does not allow: tool drop_table is tagged destructive (forbid_tags). Nothing was blocked.`,
		Observed: "tools/call drop_table on github",
		Typical:  "rule no-destruction allows nothing tagged destructive, prod",
		Model:    policy.ModelPolicy,
	}, tool.Explanation)

	server := byID[policy.AnomalyID("pay-1", policy.KindPolicyViolation, "same-env", "github", "", "2026-11-20T10:00:00Z")]
	require.Equal(t, 3, server.Count)
	require.Equal(t, "same-env", server.Subject)
	require.Equal(t, schemas.SeverityLow, server.Severity)
	require.Equal(t, []string{"finance"}, server.Tags, "a server-wide violation carries no tool tags")
	require.Equal(t, "Policy same-env: agent pay-1 used server github", server.Title)

	// The next hour is a new anomaly.
	next := f.engine.Apply(at(toolCall("pay-1", "github", "drop_table"), "e4", now.Add(time.Hour)), now, nil)
	require.Len(t, next, 2)
	for _, a := range next {
		require.Equal(t, 1, a.Count)
		require.NotContains(t, byID, a.ID)
	}
	// A late event of the previous hour still counts there.
	late := f.engine.Apply(at(toolCall("pay-1", "github", "drop_table"), "e5", now.Add(30*time.Minute)), now, nil)
	require.Equal(t, tool.ID, late[0].ID)
	require.Equal(t, 4, late[0].Count)
	require.Equal(t, 5.0, f.counter(t, "mcpwatch_enricher_policy_violations_total", "rule", "no-destruction"))
}

func TestUncheckedFlag(t *testing.T) {
	f := newFixture(t, testPolicy, "")
	ev := at(sqlCall(`{"sql":"SELECT * FROM t WHERE x = 'aaaa`, true), "e1", now)
	require.Empty(t, f.engine.Apply(ev, now, nil), "nothing raised on a guess")
	require.Contains(t, ev.Flags, schemas.Flag{
		Type: policy.FlagUnchecked, Severity: schemas.SeverityInfo, Path: "params.arguments.sql",
		Evidence: "rule sql: the arguments were cut at the inspection size cap; the constraint was not checked",
	})
	require.Len(t, ev.Flags, 3)
	require.Equal(t, 3.0, f.counter(t, "mcpwatch_enricher_policy_unchecked_total"))
}

const policyV1 = `
rules:
  - name: no-delete
    deny_tools: ["delete_*"]
`

const policyV2 = `
rules:
  - name: no-write
    deny_tools: ["write_*"]
`

// violatedRules returns the rules an event for tool violates, on a fresh event.
func violatedRules(f *fixture, tool string) []string {
	var rules []string
	for _, a := range f.engine.Apply(at(toolCall("a", "s", tool), "e", now), now, nil) {
		if a.Kind == policy.KindPolicyViolation {
			rules = append(rules, a.Subject)
		}
	}
	return rules
}

func TestReload(t *testing.T) {
	f := newFixture(t, policyV1, testInventory)
	require.Equal(t, []string{"no-delete/delete_x"}, violatedRules(f, "delete_x"))
	require.Equal(t, 1.0, f.counter(t, "mcpwatch_enricher_policy_last_reload_success", "file", "policy"))

	// Unchanged: nothing reloaded.
	require.NoError(t, f.engine.ReloadIfChanged())
	require.Equal(t, 0.0, f.counter(t, "mcpwatch_enricher_policy_reloads_total", "file", "policy"))

	// Changed: the new rules apply.
	require.NoError(t, os.WriteFile(f.policy, []byte(policyV2), 0o600))
	require.NoError(t, f.engine.ReloadIfChanged())
	require.Empty(t, violatedRules(f, "delete_x"))
	require.Equal(t, []string{"no-write/write_x"}, violatedRules(f, "write_x"))
	require.Equal(t, 1.0, f.counter(t, "mcpwatch_enricher_policy_reloads_total", "file", "policy"))
	require.Contains(t, f.log.String(), "reloaded policy")

	// Invalid: the last good policy stays, the error is logged (not the file's content) and counted.
	secret := "sk-live-0123456789abcdef0123456789abcdef"
	bad := "rules:\n  - name: no-write\n    description: \"rotate " + secret + "\"\n    deny_tools: [\"[\"]\n"
	require.NoError(t, os.WriteFile(f.policy, []byte(bad), 0o600))
	err := f.engine.ReloadIfChanged()
	require.EqualError(t, err, f.policy+`:4: rules[0].deny_tools[0]: invalid glob "[": missing closing ]`)
	require.Equal(t, []string{"no-write/write_x"}, violatedRules(f, "write_x"), "the last good policy stays")
	require.Equal(t, 1.0, f.counter(t, "mcpwatch_enricher_policy_reload_errors_total", "file", "policy"))
	require.Equal(t, 0.0, f.counter(t, "mcpwatch_enricher_policy_last_reload_success", "file", "policy"))
	require.Contains(t, f.log.String(), "cannot reload policy; keeping the last good version")
	require.Contains(t, f.log.String(), "rules[0].deny_tools[0]")
	require.NotContains(t, f.log.String(), secret)

	// The same invalid content is reported once, not at every check; a forced reload (SIGHUP)
	// reports it again.
	require.NoError(t, f.engine.ReloadIfChanged())
	require.Equal(t, 1.0, f.counter(t, "mcpwatch_enricher_policy_reload_errors_total", "file", "policy"))
	require.Error(t, f.engine.Reload())
	require.Equal(t, 2.0, f.counter(t, "mcpwatch_enricher_policy_reload_errors_total", "file", "policy"))

	// A missing file keeps the last good version too, and is reported once.
	require.NoError(t, os.Remove(f.policy))
	require.ErrorContains(t, f.engine.ReloadIfChanged(), "cannot read policy file")
	require.ErrorContains(t, f.engine.ReloadIfChanged(), "cannot read policy file")
	require.Equal(t, 3.0, f.counter(t, "mcpwatch_enricher_policy_reload_errors_total", "file", "policy"))
	require.Equal(t, []string{"no-write/write_x"}, violatedRules(f, "write_x"))

	// Fixed: back in business.
	require.NoError(t, os.WriteFile(f.policy, []byte(policyV1), 0o600))
	require.NoError(t, f.engine.ReloadIfChanged())
	require.Equal(t, []string{"no-delete/delete_x"}, violatedRules(f, "delete_x"))
	require.Equal(t, 1.0, f.counter(t, "mcpwatch_enricher_policy_last_reload_success", "file", "policy"))

	// A forced reload reloads unchanged files.
	require.NoError(t, f.engine.Reload())
	require.Equal(t, 3.0, f.counter(t, "mcpwatch_enricher_policy_reloads_total", "file", "policy"))
	require.Equal(t, 2.0, f.counter(t, "mcpwatch_enricher_policy_reloads_total", "file", "inventory"), "both forced reloads")
}

func TestReloadInventory(t *testing.T) {
	f := newFixture(t, "", testInventory)
	require.Len(t, f.engine.Apply(at(call("newcomer", "github", "initialize", ""), "e1", now), now, nil), 1)
	require.NoError(t, os.WriteFile(f.inven, []byte(testInventory+"  - id: newcomer\n    peer_group: batch\n"), 0o600))
	// The new entry is under servers: here it is a server, so the agent stays unknown.
	require.NoError(t, f.engine.ReloadIfChanged())
	ev := at(call("newcomer", "newcomer", "initialize", ""), "e2", now)
	require.Empty(t, f.engine.Apply(ev, now, nil), "unknown_agent is not raised twice, even after a reload")
	require.Equal(t, "batch", ev.Labels[inventory.LabelServerPeerGroup])

	require.NoError(t, os.WriteFile(f.inven, []byte("agents:\n  - id: newcomer\n    peer_group: batch\n"), 0o600))
	require.NoError(t, f.engine.ReloadIfChanged())
	ev = at(call("newcomer", "github", "initialize", ""), "e3", now)
	f.engine.Apply(ev, now, nil)
	require.Equal(t, "batch", ev.Labels[inventory.LabelAgentPeerGroup])
}

// The periodic check picks a changed file up by itself.
func TestWatch(t *testing.T) {
	f := newFixture(t, policyV1, "")
	files := f.files
	files.ReloadInterval = 10 * time.Millisecond
	g, err := policy.NewEngine(files, pipeline.Settings{Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	g.Start()
	g.Start() // a second Start is a no-op
	require.NoError(t, os.WriteFile(f.policy, []byte(policyV2), 0o600))
	require.Eventually(t, func() bool {
		return len(g.Apply(at(toolCall("a", "s", "write_x"), "e", now), now, nil)) > 0
	}, 10*time.Second, 5*time.Millisecond)
	g.Stop()
	g.Stop()
}

func TestNewEngineErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "policy.yml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - name: x\n    tools: [\"[\"]\n"), 0o600))
	_, err := policy.NewEngine(policy.Files{PolicyFile: bad, ReloadInterval: time.Second}, pipeline.Settings{})
	require.EqualError(t, err, bad+`:3: rules[0].tools[0]: invalid glob "[": missing closing ]`)
	_, err = policy.NewEngine(policy.Files{InventoryFile: filepath.Join(dir, "missing.yml"), ReloadInterval: time.Second}, pipeline.Settings{})
	require.ErrorContains(t, err, "cannot read inventory file")
}

func TestFilesCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "policy.yml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - name: x\n    tools: [\"[\"]\n"), 0o600))
	badInv := filepath.Join(dir, "inventory.yml")
	require.NoError(t, os.WriteFile(badInv, []byte("agents:\n  - id: a\n    criticality: huge\n"), 0o600))
	err := policy.Files{PolicyFile: bad, InventoryFile: badInv}.Check()
	require.EqualError(t, err, bad+`:3: rules[0].tools[0]: invalid glob "[": missing closing ]`+"\n"+
		badInv+`:3: agents[0].criticality: must be low, medium, high or critical, got "huge"`)
	require.NoError(t, policy.Files{PolicyFile: "../../deploy/policy.example.yml", InventoryFile: "../../deploy/inventory.example.yml"}.Check())
	require.NoError(t, policy.Files{}.Check(), "no files, nothing to check")

	var fs policy.Files
	fs.SetDefaults()
	require.Equal(t, policy.DefaultReloadInterval, fs.ReloadInterval)
	require.NoError(t, fs.Validate())
	require.EqualError(t, policy.Files{ReloadInterval: -time.Second}.Validate(), "reload_interval: must be positive, got -1s")
}
