package alerting_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), string(got))
}

func indent(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, b, "", "  "))
	return append(out.Bytes(), '\n')
}

func ocsfAlerts() map[string]alerting.Alert {
	first := schemas.Anomaly{
		ID: "7d2f1c7e-0b1a-4c3e-9f00-1b2c3d4e5f60", SchemaVersion: 1,
		Time:      time.Date(2026, 11, 3, 2, 7, 11, 250_000_000, time.UTC),
		AgentID:   "billing-bot",
		SessionID: "c0ffee00-0000-4000-8000-000000000001",
		ServerID:  "ledger",
		Kind:      "new_tool", Subject: "delete_all", Score: 92.4, Severity: schemas.SeverityCritical,
		Title: `Agent billing-bot called tool "delete_all" for the first time`,
		Explanation: schemas.Explanation{
			Summary:  "billing-bot called delete_all on ledger; in 41 days it called 6 other tools, never this one.",
			Observed: "delete_all", Typical: "6 tools: get_invoice, list_invoices, …", Model: "first_seen_tool",
		},
		EvidenceEventIDs: []string{"01a19f29-127a-72b5-be27-78218b5a2e0c"},
		FirstSeen:        time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC),
		LastSeen:         time.Date(2026, 11, 3, 2, 7, 11, 0, time.UTC),
		Count:            1,
		Tags:             []string{"finance", "pii"},
	}
	repeat := schemas.Anomaly{
		ID: "9a1e0c33-2b7f-4d7e-8c11-5e6f7a8b9c0d", SchemaVersion: 1,
		Time:    time.Date(2026, 11, 3, 2, 40, 0, 0, time.UTC),
		AgentID: "report-agent", Kind: "rate_spike", Score: 71, Severity: schemas.SeverityHigh,
		Title: "report-agent made 212 requests/min",
		Explanation: schemas.Explanation{
			Summary: "212 requests in a minute against 10–35 at this hour", Observed: "212 requests/min", Typical: "10–35 requests/min at this hour",
			Model: "request_rate", Probability: 1.2e-7,
		},
		EvidenceEventIDs: []string{},
		FirstSeen:        time.Date(2026, 11, 3, 2, 31, 0, 0, time.UTC),
		LastSeen:         time.Date(2026, 11, 3, 2, 39, 0, 0, time.UTC),
		Count:            3,
	}
	unknown := schemas.Anomaly{
		ID: "0b0e5d0a-1111-4222-8333-444455556666", SchemaVersion: 1,
		Time: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), AgentID: "a", Kind: "future_model_kind",
		Score: 10, Severity: schemas.SeverityInfo, Title: "something new",
		Explanation: schemas.Explanation{Summary: "s", Model: "m"}, EvidenceEventIDs: []string{},
		FirstSeen: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), Count: 1,
	}
	alert := func(an schemas.Anomaly) alerting.Alert {
		b, _ := json.Marshal(an)
		return alerting.Alert{Anomaly: an, JSON: b, DeliveryID: alerting.DeliveryID(an, "soc"), Time: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)}
	}
	return map[string]alerting.Alert{
		"new_tool_first":    alert(first),
		"rate_spike_repeat": alert(repeat),
		"unknown_kind":      alert(unknown),
	}
}

// TestOCSFGolden pins the Detection Finding each kind of alert becomes.
func TestOCSFGolden(t *testing.T) {
	for name, a := range ocsfAlerts() {
		t.Run(name, func(t *testing.T) {
			b, err := alerting.OCSF(a)
			require.NoError(t, err)
			golden(t, "ocsf/"+name+".json", indent(t, b))
		})
	}
}

// TestOCSFDetectionFinding checks the class's fixed attributes and the mappings that a SIEM's
// OCSF parser relies on, independently of the golden files.
func TestOCSFDetectionFinding(t *testing.T) {
	sevs := map[schemas.Severity]struct {
		id      int
		caption string
	}{
		schemas.SeverityInfo: {1, "Informational"}, schemas.SeverityLow: {2, "Low"}, schemas.SeverityMedium: {3, "Medium"},
		schemas.SeverityHigh: {4, "High"}, schemas.SeverityCritical: {5, "Critical"},
	}
	base := ocsfAlerts()["new_tool_first"]
	for sev, want := range sevs {
		for _, count := range []int{1, 2} {
			a := base
			a.Anomaly.Severity, a.Anomaly.Count = sev, count
			b, err := alerting.OCSF(a)
			require.NoError(t, err)
			var f map[string]any
			require.NoError(t, json.Unmarshal(b, &f))
			require.EqualValues(t, 2004, f["class_uid"])
			require.EqualValues(t, 2, f["category_uid"])
			require.EqualValues(t, want.id, f["severity_id"])
			require.Equal(t, want.caption, f["severity"])
			activity := 1
			if count > 1 {
				activity = 2 // later versions of an anomaly update its finding
			}
			require.EqualValues(t, activity, f["activity_id"])
			require.EqualValues(t, 2004*100+activity, f["type_uid"])
			require.EqualValues(t, a.Anomaly.Time.UnixMilli(), f["time"], "OCSF timestamps are epoch milliseconds")
			fi := f["finding_info"].(map[string]any)
			require.Equal(t, a.Anomaly.ID, fi["uid"])
			require.Equal(t, a.Anomaly.Title, fi["title"])
			require.Equal(t, []any{"new_tool"}, fi["types"])
			require.EqualValues(t, a.Anomaly.FirstSeen.UnixMilli(), fi["first_seen_time"])
			md := f["metadata"].(map[string]any)
			require.Equal(t, alerting.OCSFVersion, md["version"])
			require.Equal(t, a.DeliveryID, md["uid"])
			require.Equal(t, "mcpwatch", md["product"].(map[string]any)["name"])
			aa := f["anomaly_analyses"].([]any)[0].(map[string]any)
			an := aa["anomalies"].([]any)[0].(map[string]any)
			require.Equal(t, "Frequency Analysis", an["observation_type"])
			require.Equal(t, "UNSEEN", an["observed_pattern"])
		}
	}
}

func TestOCSFKindMapping(t *testing.T) {
	for kind, want := range map[string][2]string{
		"new_tool":           {"Frequency Analysis", "UNSEEN"},
		"rate_spike":         {"Volume Analysis", "SURGE"},
		"rate_drop":          {"Volume Analysis", "LOW_VOLUME"},
		"large_response":     {"Volume Analysis", "HIGH_VOLUME"},
		"large_request":      {"Volume Analysis", "HIGH_VOLUME"},
		"new_transition":     {"Sequence Analysis", "UNSEEN"},
		"unlikely_step":      {"Sequence Analysis", "RARE"},
		"unusual_session":    {"Sequence Analysis", "RARE"},
		"scan":               {"Frequency Analysis", "FREQUENT"},
		"campaign":           {"Association Analysis", "CORRELATED"},
		"suspicious_content": {"Content Analysis", "SUSPICIOUS"},
		"tool_drift":         {"Deviation Analysis", "CHANGED"},
		"tool_shadowing":     {"Association Analysis", "CONFLICT"},
		"not_yet_invented":   {"Deviation Analysis", "ANOMALOUS"},
	} {
		t.Run(kind, func(t *testing.T) {
			a := ocsfAlerts()["new_tool_first"]
			a.Anomaly.Kind = kind
			b, err := alerting.OCSF(a)
			require.NoError(t, err)
			var f struct {
				AnomalyAnalyses []struct {
					Anomalies []struct {
						ObservationType string `json:"observation_type"`
						ObservedPattern string `json:"observed_pattern"`
					} `json:"anomalies"`
				} `json:"anomaly_analyses"`
			}
			require.NoError(t, json.Unmarshal(b, &f))
			got := f.AnomalyAnalyses[0].Anomalies[0]
			require.Equal(t, want, [2]string{got.ObservationType, got.ObservedPattern})
		})
	}
}

// TestWebhookOCSF: a webhook with format ocsf posts the finding, whose metadata.uid is the
// delivery id header, signed like any body.
func TestWebhookOCSF(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	rec := newReceiver(t, nil)
	h := hook("soc", rec.srv.URL)
	h.Format = alerting.FormatOCSF
	h.Secret = "k"
	startAlerting(t, noNoise(alerting.Config{Webhooks: []alerting.WebhookConfig{h}, Retry: fastRetry}), brokers, nil)
	an := anomaly("000000000001", schemas.SeverityHigh, 1)
	produceAnomalies(t, brokers, an)
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)

	req := rec.requests()[0]
	var f struct {
		ClassUID int `json:"class_uid"`
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
		FindingInfo struct {
			UID string `json:"uid"`
		} `json:"finding_info"`
	}
	require.NoError(t, json.Unmarshal(req.body, &f))
	require.Equal(t, 2004, f.ClassUID)
	require.Equal(t, an.ID, f.FindingInfo.UID)
	require.Equal(t, req.header.Get(alerting.HeaderDelivery), f.Metadata.UID)
	require.Equal(t, alerting.Sign("k", req.header.Get(alerting.HeaderTimestamp), req.body), req.header.Get(alerting.HeaderSignature))
}
