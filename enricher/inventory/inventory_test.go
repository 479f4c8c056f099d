package inventory_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/enricher/inventory"
	"github.com/mcpwatch/mcpwatch/schemas"
)

const good = `
agents:
  - id: billing
    owner: alice@example.com
    team: payments
    environment: prod
    criticality: high
    peer_group: batch
    tags: [pii, finance, pii]
  - id: ci-*
    team: platform
    environment: dev
  - id: c*
    team: never-reached-for-ci
  - id: ci-special
    team: special
servers:
  - id: github
    environment: prod
    tags: [source-code]
`

func TestLookup(t *testing.T) {
	inv, err := inventory.Parse([]byte(good), "inventory.yml")
	require.NoError(t, err)
	require.Equal(t, schemas.SeverityMedium, inv.UnknownAgentSeverity(), "the default")
	agents, servers := inv.Size()
	require.Equal(t, [2]int{4, 1}, [2]int{agents, servers})

	for _, tc := range []struct {
		id, team string // team "" = not listed
	}{
		{"billing", "payments"},
		{"ci-42", "platform"},
		{"ci-special", "special"}, // an exact id wins over an earlier pattern
		{"cx", "never-reached-for-ci"},
		{"ci", "never-reached-for-ci"}, // ci-* needs the dash; c* is next in order
		{"unknown-bot", ""},
		{"", ""},
	} {
		a := inv.Agent(tc.id)
		if tc.team == "" {
			require.Nil(t, a, tc.id)
			continue
		}
		require.NotNil(t, a, tc.id)
		require.Equal(t, tc.team, a.Team, tc.id)
	}

	b := inv.Agent("billing")
	require.Equal(t, []string{"finance", "pii"}, b.Tags, "sorted, without duplicates")
	require.Equal(t, [][2]string{
		{inventory.LabelAgentOwner, "alice@example.com"},
		{inventory.LabelAgentTeam, "payments"},
		{inventory.LabelAgentEnvironment, "prod"},
		{inventory.LabelAgentCriticality, "high"},
		{inventory.LabelAgentPeerGroup, "batch"},
		{inventory.LabelAgentTags, "finance,pii"},
	}, b.Labels)
	require.Equal(t, [][2]string{
		{inventory.LabelAgentTeam, "platform"},
		{inventory.LabelAgentEnvironment, "dev"},
	}, inv.Agent("ci-1").Labels, "empty attributes set no label")
	require.Equal(t, [][2]string{
		{inventory.LabelServerEnvironment, "prod"},
		{inventory.LabelServerTags, "source-code"},
	}, inv.Server("github").Labels)
	require.Nil(t, inv.Server("gitlab"))
}

func TestEmptyFile(t *testing.T) {
	inv, err := inventory.Parse(nil, "inventory.yml")
	require.NoError(t, err)
	require.Nil(t, inv.Agent("a"), "an empty inventory knows no agent")
}

// Every problem is reported at once, each at its line.
func TestParseErrors(t *testing.T) {
	path := filepath.Join("testdata", "bad.yml")
	_, err := inventory.Load(path)
	require.Error(t, err)
	require.Equal(t, strings.Join([]string{
		path + `:1: unknown_agent_severity: must be info, low, medium, high or critical, got "severe"`,
		path + `:5: agents[1].id: duplicate id "billing" (also agents[0])`,
		path + `:7: agents[2].id: invalid glob "ci-[": missing closing ]`,
		path + `:8: agents[3].id: must not be empty`,
		path + `:10: agents[4].criticality: must be low, medium, high or critical, got "extreme"`,
		path + `:11: agents[4].tags[1]: must not contain commas or spaces, got "has space"`,
		path + `:11: agents[4].tags[2]: must not be empty`,
		path + `:14: servers[0].environment: must not start or end with spaces, got " prod"`,
	}, "\n"), err.Error())
}

func TestParseYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown key", "agents:\n  - id: a\n    tema: x\n", "inv.yml:3: field tema not found in type inventory.Entry"},
		{"wrong type", "agents:\n  - id: a\n    tags: pii\n", "inv.yml:3: cannot unmarshal !!str `pii` into []string"},
		// yaml reports a flow error at the line where the enclosing block starts.
		{"syntax", "agents:\n  - id: [a\n", "inv.yml:1: did not find expected ',' or ']'"},
		{"two documents", "agents: []\n---\nservers: []\n", "inv.yml:2: only one YAML document is allowed (another one starts here)"},
		{"not a mapping", "- a\n", "inv.yml:1: cannot unmarshal !!seq into inventory.File"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inventory.Parse([]byte(tc.in), "inv.yml")
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := inventory.Load(filepath.Join(t.TempDir(), "nope.yml"))
	require.ErrorContains(t, err, "cannot read")
}

func TestExampleInventory(t *testing.T) {
	inv, err := inventory.Load("../../deploy/inventory.example.yml")
	require.NoError(t, err)
	require.Equal(t, "batch", inv.Agent("ci-1234").PeerGroup)
	require.Equal(t, "support", inv.Agent("spiffe://corp.example/ns/support/sa/triage").Team)
	require.Equal(t, "prod", inv.Server("postgres-prod").Environment, "the exact id wins over postgres-*")
	require.Equal(t, "dev", inv.Server("postgres-staging").Environment)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("agents: [{id: '[', tags: [a, b]}]\nservers: &x [{id: a}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := inventory.Parse(data, "fuzz.yml")
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "fuzz.yml"), "every error names the file: %v", err)
			return
		}
		inv.Agent("ci-1")
		inv.Server("github")
	})
}
