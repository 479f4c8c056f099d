package enricher_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/enricher"
	"github.com/mcpwatch/mcpwatch/enricher/policy"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const stagePolicy = `
tool_tags:
  - tools: ["delete_*"]
    tags: [destructive]
rules:
  - name: ci-read-only
    severity: critical
    match:
      peer_groups: [ci]
    deny_tools: ["delete_*"]
`

const stageInventory = `
agents:
  - id: ci-*
    team: platform
    peer_group: ci
    tags: [automation]
servers:
  - id: github
    environment: prod
    tags: [source-code]
`

// The enricher on a real (embedded) broker joins the inventory into events and produces
// policy_violation and unknown_agent anomalies to mcp.anomalies; the policy reloads.
func TestEnricherStagePolicyAndInventory(t *testing.T) {
	brokers, busCfg := broker(t)
	dir := t.TempDir()
	policyFile, inventoryFile := filepath.Join(dir, "policy.yml"), filepath.Join(dir, "inventory.yml")
	require.NoError(t, os.WriteFile(policyFile, []byte(stagePolicy), 0o600))
	require.NoError(t, os.WriteFile(inventoryFile, []byte(stageInventory), 0o600))

	// The keys as an operator writes them, under enricher:.
	var cfg enricher.Config
	require.NoError(t, config.Decode(strings.NewReader("policy_file: "+policyFile+"\ninventory_file: "+inventoryFile+"\nreload_interval: 1h\n"), "enricher.yml", &cfg))
	require.Equal(t, time.Hour, cfg.ReloadInterval)
	reg := prometheus.NewRegistry()
	e, err := enricher.New(cfg, nil, brokers, busCfg, pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	ctx := context.Background()

	t0 := time.Date(2026, 11, 20, 10, 15, 0, 0, time.UTC)
	ev := func(id, agent, tool string, minute int) kafka.Message {
		return eventMessage(t, schemas.Event{ID: eventID(id), AgentID: agent, AgentSource: "mtls", ServerID: "github", SessionID: "s1",
			Direction: schemas.ClientToServer, Kind: schemas.KindRequest, Method: "tools/call", Target: tool,
			ObservedAt: t0.Add(time.Duration(minute) * time.Minute)})
	}
	// Produced before Start, so the enricher reads them as one batch.
	produce(t, brokers, busCfg, bus.TopicEvents,
		ev("e1", "ci-7", "get_file", 0),
		ev("e2", "ci-7", "delete_repo", 1),
		ev("e3", "laptop-bob", "get_file", 2),
		ev("e4", "laptop-bob", "delete_repo", 3),
		ev("e5", "ci-7", "delete_repo", 4),
	)
	require.NoError(t, e.Start(ctx))
	defer func() { require.NoError(t, e.Shutdown(ctx)) }()

	events := map[string]schemas.Event{}
	for _, m := range readTopic(t, brokers, bus.TopicEventsEnriched, 5) {
		var got schemas.Event
		require.NoError(t, json.Unmarshal(m.Value, &got))
		events[got.ID] = got
	}
	require.Equal(t, map[string]string{
		"agent.team": "platform", "agent.peer_group": "ci", "agent.tags": "automation",
		"server.environment": "prod", "server.tags": "source-code", "tags": "automation,source-code",
	}, events[eventID("e1")].Labels)
	require.Equal(t, "automation,destructive,source-code", events[eventID("e2")].Labels["tags"])
	require.Equal(t, map[string]string{"server.environment": "prod", "server.tags": "source-code", "tags": "source-code"}, events[eventID("e3")].Labels)

	// One batch: the violation's latest version (count 2) and the unknown agent, once.
	out := readTopic(t, brokers, bus.TopicAnomalies, 2)
	byKind := map[string]schemas.Anomaly{}
	for _, m := range out {
		var a schemas.Anomaly
		require.NoError(t, json.Unmarshal(m.Value, &a))
		require.Equal(t, a.AgentID, string(m.Key), "keyed by agent")
		require.NoError(t, schemas.ValidateAnomalyJSON(m.Value), "a valid Anomaly v1")
		byKind[a.Kind] = a
	}
	v := byKind[policy.KindPolicyViolation]
	require.Equal(t, "ci-7", v.AgentID)
	require.Equal(t, "ci-read-only/delete_repo", v.Subject)
	require.Equal(t, 2, v.Count)
	require.Equal(t, []string{eventID("e2"), eventID("e5")}, v.EvidenceEventIDs)
	require.Equal(t, schemas.SeverityCritical, v.Severity)
	require.Equal(t, []string{"automation", "destructive", "source-code"}, v.Tags)
	require.Contains(t, v.Explanation.Summary, `rule "ci-read-only" does not allow: tool delete_repo is denied (deny_tools delete_*)`)
	u := byKind[policy.KindUnknownAgent]
	require.Equal(t, "laptop-bob", u.AgentID)
	require.Equal(t, policy.AnomalyID("laptop-bob", policy.KindUnknownAgent), u.ID)
	require.Equal(t, []string{eventID("e3")}, u.EvidenceEventIDs)
	require.Equal(t, 1.0, metric(t, reg, "mcpwatch_enricher_unknown_agents_total"))

	// SIGHUP's Reload: the new policy applies to the next events.
	require.NoError(t, os.WriteFile(policyFile, []byte(strings.ReplaceAll(stagePolicy, "delete_*", "get_*")), 0o600))
	require.NoError(t, e.Reload())
	produce(t, brokers, busCfg, bus.TopicEvents, ev("e6", "ci-7", "get_file", 5))
	next := readTopic(t, brokers, bus.TopicAnomalies, 3)[2]
	var a schemas.Anomaly
	require.NoError(t, json.Unmarshal(next.Value, &a))
	require.Equal(t, "ci-read-only/get_file", a.Subject)

	// An invalid policy is refused and counted; the last good one stays.
	require.NoError(t, os.WriteFile(policyFile, []byte("rules: [{name: x, tools: ['[']}]\n"), 0o600))
	require.ErrorContains(t, e.Reload(), policyFile+`:1: rules[0].tools[0]: invalid glob "["`)
	require.Equal(t, 1.0, metric(t, reg, "mcpwatch_enricher_policy_reload_errors_total"))
	produce(t, brokers, busCfg, bus.TopicEvents, ev("e7", "ci-7", "get_file", 6))
	require.NoError(t, json.Unmarshal(readTopic(t, brokers, bus.TopicAnomalies, 4)[3].Value, &a))
	require.Equal(t, "ci-read-only/get_file", a.Subject)
	require.Equal(t, 2, a.Count)
}

func TestConfigPolicyFiles(t *testing.T) {
	var cfg enricher.Config
	cfg.SetDefaults()
	require.Equal(t, policy.DefaultReloadInterval, cfg.ReloadInterval)
	cfg.ReloadInterval = -time.Second
	require.EqualError(t, cfg.Validate(), "enricher.reload_interval: must be positive, got -1s")

	bad := filepath.Join(t.TempDir(), "policy.yml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - name: r\n    tools: ['[']\n"), 0o600))
	cfg = enricher.Config{Files: policy.Files{PolicyFile: bad}}
	cfg.SetDefaults()
	_, err := enricher.New(cfg, nil, nil, bus.Config{}, pipeline.Settings{})
	require.EqualError(t, err, bad+`:3: rules[0].tools[0]: invalid glob "[": missing closing ]`, "an invalid policy at start is an error")
}
