package detector

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// shapeHistory is two days of an agent's ordinary sessions: 20 calls over about two minutes,
// three tools, one server, hardly any errors.
func shapeHistory(s *stream, agent string) time.Time {
	at := week0
	for i := range 200 {
		sid := fmt.Sprintf("%s-h%d", agent, i)
		for j := range 20 {
			at = at.Add(6 * time.Second)
			ev := s.req(at, agent, sid, "tools/call", []string{"read_file", "list_dir", "search"}[j%3])
			if i%10 == 0 && j == 5 {
				s.evs[len(s.evs)-1].Status = schemas.StatusToolError
			}
			_ = ev
		}
		at = at.Add(15 * time.Minute)
	}
	return at
}

func shapeAnomalies(as []schemas.Anomaly, agent string) map[string]schemas.Anomaly {
	out := map[string]schemas.Anomaly{}
	for _, a := range as {
		if a.AgentID == agent && (a.Kind == KindSessionShape || a.Kind == KindServerFanout) {
			out[a.Kind+"/"+a.Subject] = a
		}
	}
	return out
}

func TestSessionShape(t *testing.T) {
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}
	tests := []struct {
		name    string
		session func(s *stream, at time.Time)
		want    string // kind/subject raised, "" for nothing
	}{{
		name: "ordinary session",
		session: func(s *stream, at time.Time) {
			for j := range 20 {
				s.req(at.Add(time.Duration(j)*6*time.Second), "a", "x", "tools/call", "read_file")
			}
		},
	}, {
		name: "a session kept open for hours",
		session: func(s *stream, at time.Time) {
			for j := range 20 {
				s.req(at.Add(time.Duration(j)*20*time.Minute), "a", "x", "tools/call", "read_file")
			}
		},
		want: KindSessionShape + "/" + FeatureDuration,
	}, {
		name: "many distinct tools",
		session: func(s *stream, at time.Time) {
			for j := range 20 {
				s.req(at.Add(time.Duration(j)*6*time.Second), "a", "x", "tools/call", []string{"read_file", "list_dir", "search"}[j%3])
			}
			for j := range 20 {
				s.req(at.Add(3*time.Minute+time.Duration(j)*time.Second), "a", "x", "tools/call", fmt.Sprintf("tool_%d", j))
			}
		},
		want: KindSessionShape + "/" + FeatureDistinctTools,
	}, {
		name: "half the calls fail",
		session: func(s *stream, at time.Time) {
			for j := range 20 {
				s.req(at.Add(time.Duration(j)*6*time.Second), "a", "x", "tools/call", "read_file")
				if j%2 == 0 {
					s.evs[len(s.evs)-1].Status = schemas.StatusError
				}
			}
		},
		want: KindSessionShape + "/" + FeatureErrors,
	}, {
		name: "fan-out across servers",
		session: func(s *stream, at time.Time) {
			for j := range 8 {
				s.req(at.Add(time.Duration(j)*time.Minute), "a", fmt.Sprintf("f%d", j), "tools/call", "read_file")
				s.evs[len(s.evs)-1].ServerID = fmt.Sprintf("server-%d", j)
			}
		},
		want: KindServerFanout + "/1h",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s stream
			at := shapeHistory(&s, "a")
			tt.session(&s, at.Add(time.Hour))
			// A later session ends the one under test (same server) and lets time pass.
			s.req(at.Add(12*time.Hour), "a", "next", "tools/call", "read_file")
			got := shapeAnomalies(run(liveDetector(t, cfg), s.evs), "a")
			if tt.want == "" {
				require.Empty(t, got)
				return
			}
			require.Contains(t, got, tt.want)
			require.Len(t, got, 1, "only the feature that is unusual: %v", got)
			a := got[tt.want]
			require.GreaterOrEqual(t, a.Score, 60.0)
			require.Equal(t, ModelSessionShape, a.Explanation.Model)
			require.NotEmpty(t, a.Explanation.Observed)
			require.NotEmpty(t, a.Explanation.Typical)
			require.NotEmpty(t, a.EvidenceEventIDs)
		})
	}
}

// TestSessionShapeSurvivesRestart: the shape baseline and error ratio are snapshotted.
func TestSessionShapeSurvivesRestart(t *testing.T) {
	var s stream
	shapeHistory(&s, "a")
	d := liveDetector(t, Config{})
	run(d, s.evs)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.agents {
		d.endSessions(nil, st, d.clock, time.Now())
	}
	require.NoError(t, d.snapshot(t.Context()))
	want := d.agents["a"]

	d2 := newDetector(t, Config{}, d.st, []string{"127.0.0.1:1"}, nil)
	_, _, err := d2.restoreSince(t.Context(), time.Time{})
	require.NoError(t, err)
	got := d2.agents["a"]
	require.NotNil(t, got.shape)
	require.Equal(t, want.sessionsEnded, got.sessionsEnded)
	require.Equal(t, want.errs, got.errs)
	require.Equal(t, want.calls, got.calls)
	a := size.MarshalStats(shapeKeys[:], want.shape[:])
	b := size.MarshalStats(shapeKeys[:], got.shape[:])
	require.Equal(t, a, b)
}
