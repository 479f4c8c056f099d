package alerting_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/alerting"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func readLines(t *testing.T, path string) []alerting.FileLine {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []alerting.FileLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l alerting.FileLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "every line is one JSON object")
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestFileSink writes JSON lines (Anomaly v1 and OCSF payloads) to files created 0600 and
// appended to across restarts; digests are lines of type digest.
func TestFileSink(t *testing.T) {
	brokers := startBroker(t)
	pending := lag(t, brokers)
	dir := t.TempDir()
	jsonPath, ocsfPath := filepath.Join(dir, "alerts.jsonl"), filepath.Join(dir, "ocsf.jsonl")
	require.NoError(t, os.WriteFile(jsonPath, []byte(`{"earlier":"line"}`+"\n"), 0o600))
	window, digest := time.Hour, time.Hour
	cfg := alerting.Config{
		Files: []alerting.FileConfig{{Name: "debug", Path: jsonPath}, {Name: "ocsf", Path: ocsfPath, Format: alerting.FormatOCSF}},
		Noise: alerting.NoiseConfig{ReAlertWindow: &window, DigestInterval: &digest},
		Retry: fastRetry,
	}
	a := newAlerting(t, cfg, openStore(t), brokers, nil)
	require.NoError(t, a.Start(context.Background()))
	first := anomaly("000000000001", schemas.SeverityHigh, 1)
	msgs := produceAnomalies(t, brokers, first, anomaly("000000000001", schemas.SeverityHigh, 2))
	require.Eventually(t, func() bool { return testutil.ToFloat64(pending) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Shutdown(context.Background()))

	fi, err := os.Stat(ocsfPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	lines := readLines(t, jsonPath)
	require.Len(t, lines, 3, "the earlier line, the alert, the digest of the held-back repeat")
	l := lines[1]
	require.Equal(t, "debug", l.Sink)
	require.Equal(t, "anomaly", l.Type)
	require.Equal(t, alerting.DeliveryID(first, "debug"), l.DeliveryID)
	require.JSONEq(t, string(msgs[0].Value), string(l.Payload))
	require.WithinDuration(t, time.Now(), l.Time, time.Minute)
	d := lines[2]
	require.Equal(t, "digest", d.Type)
	var doc struct {
		Type string `json:"type"`
		alerting.Digest
	}
	require.NoError(t, json.Unmarshal(d.Payload, &doc))
	require.Equal(t, "mcpwatch.digest", doc.Type)
	require.Equal(t, 1, doc.Suppressed)
	require.Equal(t, 2, doc.Entries[0].Count)

	olines := readLines(t, ocsfPath)
	require.Len(t, olines, 2)
	var f struct {
		ClassUID    int `json:"class_uid"`
		FindingInfo struct {
			Types []string `json:"types"`
		} `json:"finding_info"`
		Unmapped struct {
			Digest *alerting.Digest `json:"digest"`
		} `json:"unmapped"`
	}
	require.NoError(t, json.Unmarshal(olines[0].Payload, &f))
	require.Equal(t, 2004, f.ClassUID)
	require.Nil(t, f.Unmapped.Digest)
	require.NoError(t, json.Unmarshal(olines[1].Payload, &f))
	require.Equal(t, []string{alerting.KindDigest}, f.FindingInfo.Types, "a digest in OCSF is a finding of kind alert_digest")
	require.NotNil(t, f.Unmapped.Digest, "with the digest itself beside it")
	require.Equal(t, 1, f.Unmapped.Digest.Suppressed)
}
