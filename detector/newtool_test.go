package detector

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// evID returns the UUID-shaped id of test event n.
func evID(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", n) }

func toolCall(n int, agent, server, tool string) schemas.Event {
	return schemas.Event{
		ID:            evID(n),
		SchemaVersion: schemas.EventSchemaVersion,
		ObservedAt:    time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC),
		AgentID:       agent,
		ServerID:      server,
		SessionID:     "sess-" + agent,
		Direction:     schemas.ClientToServer,
		Kind:          schemas.KindRequest,
		Method:        "tools/call",
		Target:        tool,
		Status:        schemas.StatusOK,
	}
}

func TestObserveTool(t *testing.T) {
	now := time.Date(2026, 11, 3, 2, 7, 12, 0, time.UTC)
	with := func(ev schemas.Event, f func(*schemas.Event)) schemas.Event { f(&ev); return ev }
	call := toolCall(1, "billing-bot", "filesystem", "read_file")
	for _, tc := range []struct {
		name        string
		known       []string
		ev          schemas.Event
		raised      bool
		wantTypical string
		wantSummary string
	}{
		{
			name: "first tool call of an agent", ev: call, raised: true,
			wantTypical: "no tool calls seen before",
			wantSummary: `Agent billing-bot called "read_file" on server filesystem, a tool it had never called before (it had called 0 other tools).`,
		},
		{
			name: "a new tool beside known ones", known: []string{"list_dir", "stat"}, ev: call, raised: true,
			wantTypical: "2 known tools: list_dir, stat",
			wantSummary: "(it had called 2 other tools)",
		},
		{
			name: "known tools are sampled", known: []string{"a", "b", "c", "d", "e", "f", "g"}, ev: call, raised: true,
			wantTypical: "7 known tools: a, b, c, d, e and 2 more",
		},
		{name: "a known tool raises nothing", known: []string{"read_file"}, ev: call},
		{name: "tools/list is not a tool call", ev: with(call, func(e *schemas.Event) { e.Method = "tools/list"; e.Target = "" })},
		{name: "resources/read is not a tool call", ev: with(call, func(e *schemas.Event) { e.Method = "resources/read"; e.Target = "file:///etc/passwd" })},
		{name: "server-to-client traffic is ignored", ev: with(call, func(e *schemas.Event) { e.Direction = schemas.ServerToClient })},
		{name: "notifications are ignored", ev: with(call, func(e *schemas.Event) { e.Kind = schemas.KindNotification })},
		{name: "unparsed traffic is ignored", ev: with(call, func(e *schemas.Event) { e.Kind = schemas.KindUnparsed })},
		{name: "a call without a tool name is ignored", ev: with(call, func(e *schemas.Event) { e.Target = "" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &agentTools{}
			for _, k := range tc.known {
				a.add(k)
			}
			before := len(a.Tools)
			an, ok := observeTool(a, &tc.ev, 55, now)
			require.Equal(t, tc.raised, ok)
			if !tc.raised {
				require.Zero(t, an)
				require.Len(t, a.Tools, before, "the baseline learns nothing")
				return
			}
			require.Contains(t, a.Tools, "read_file", "the tool is now known")
			require.Len(t, a.Tools, before+1)

			require.Equal(t, AnomalyID("billing-bot", KindNewTool, "filesystem/read_file"), an.ID)
			require.Equal(t, schemas.AnomalySchemaVersion, an.SchemaVersion)
			require.Equal(t, now, an.Time)
			require.Equal(t, "billing-bot", an.AgentID)
			require.Equal(t, "sess-billing-bot", an.SessionID)
			require.Equal(t, "filesystem", an.ServerID)
			require.Equal(t, KindNewTool, an.Kind)
			require.Equal(t, "read_file", an.Subject)
			require.Equal(t, 55.0, an.Score)
			require.Equal(t, schemas.SeverityMedium, an.Severity)
			require.Equal(t, `Agent billing-bot called tool "read_file" for the first time`, an.Title)
			require.Equal(t, ModelFirstSeenTool, an.Explanation.Model)
			require.Equal(t, "tools/call read_file", an.Explanation.Observed)
			require.Equal(t, tc.wantTypical, an.Explanation.Typical)
			require.Contains(t, an.Explanation.Summary, tc.wantSummary)
			require.Equal(t, []string{evID(1)}, an.EvidenceEventIDs)
			require.Equal(t, tc.ev.ObservedAt, an.FirstSeen)
			require.Equal(t, tc.ev.ObservedAt, an.LastSeen)
			require.Equal(t, 1, an.Count)
			require.False(t, an.Learning)

			b, err := json.Marshal(an)
			require.NoError(t, err)
			require.NoError(t, schemas.ValidateAnomalyJSON(b), "the anomaly is valid Anomaly v1")
		})
	}
}

func TestSeverityFollowsScore(t *testing.T) {
	for score, want := range map[float64]schemas.Severity{
		0: schemas.SeverityInfo, 20: schemas.SeverityLow, 50: schemas.SeverityMedium, 70: schemas.SeverityHigh, 95: schemas.SeverityCritical,
	} {
		ev := toolCall(1, "a", "s", "t")
		an, ok := observeTool(&agentTools{}, &ev, score, time.Now())
		require.True(t, ok)
		require.Equal(t, want, an.Severity, "score %g", score)
	}
}

func TestAnomalyID(t *testing.T) {
	id := AnomalyID("billing-bot", KindNewTool, "filesystem/read_file")
	require.Equal(t, id, AnomalyID("billing-bot", KindNewTool, "filesystem/read_file"), "stable")
	u, err := uuid.Parse(id)
	require.NoError(t, err)
	require.Equal(t, id, u.String(), "canonical lower-case UUID text")
	require.Equal(t, uuid.Version(8), u.Version())
	require.Equal(t, uuid.RFC4122, u.Variant())

	seen := map[string]string{id: "base"}
	for name, other := range map[string]string{
		"other agent":   AnomalyID("support-bot", KindNewTool, "filesystem/read_file"),
		"other kind":    AnomalyID("billing-bot", "rate_surge", "filesystem/read_file"),
		"other tool":    AnomalyID("billing-bot", KindNewTool, "filesystem/write_file"),
		"other server":  AnomalyID("billing-bot", KindNewTool, "github/read_file"),
		"shifted parts": AnomalyID("billing-bot"+KindNewTool, "", "filesystem/read_file"),
	} {
		_, dup := seen[other]
		require.False(t, dup, "%s collides with %s", name, seen[other])
		seen[other] = name
	}
}

func TestBaselineJSONRoundTrip(t *testing.T) {
	a := &agentTools{}
	for _, tool := range []string{"write_file", "echo", "read_file", "echo"} {
		a.add(tool)
	}
	require.Equal(t, []string{"echo", "read_file", "write_file"}, a.Tools, "sorted, each once")
	b, err := json.Marshal(a)
	require.NoError(t, err)
	require.JSONEq(t, `{"tools":["echo","read_file","write_file"]}`, string(b), "sorted, so snapshots are deterministic")
	var back agentTools
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, a.Tools, back.Tools)
	require.Error(t, json.Unmarshal([]byte(`{"tools":"echo"}`), &back))
	b, err = json.Marshal(&agentTools{})
	require.NoError(t, err)
	require.JSONEq(t, `{"tools":[]}`, string(b))
}

func TestAnomaliesCarryTheEventsTags(t *testing.T) {
	d := liveDetector(t, Config{})
	ev := toolCall(1, "billing-bot", "fs", "delete_file")
	ev.Labels = map[string]string{schemas.LabelTags: "prod, destructive,prod,"}
	as := d.Observe(&ev, ev.ObservedAt)
	require.NotEmpty(t, as)
	for _, a := range as {
		require.Equal(t, []string{"destructive", "prod"}, a.Tags, a.Kind)
	}
	untagged := toolCall(2, "other-bot", "fs", "delete_file")
	for _, a := range d.Observe(&untagged, untagged.ObservedAt) {
		require.Nil(t, a.Tags, a.Kind)
	}
}
