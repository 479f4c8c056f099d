package detector

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// A golden scenario is testdata/scenarios/NAME.jsonl, an event stream written as one step per
// line, and NAME.want.json, the anomalies it must and must not raise. Steps:
//
//   - {"event": {...}}: one request (Event v1 fields; direction, kind and id are filled in);
//   - {"gen": {...}}: a steady agent from..to, per_min requests a minute on weekdays 08–18 UTC
//     and off_hours_per_min otherwise (default per_min), in sessions of session_calls (the
//     first a tools/list, the rest tools/call of random tools), Poisson-timed from seed, with
//     request_bytes and response_bytes about their typical sizes when given;
//   - {"burst": {...}}: count requests every "every" from at;
//   - {"comment": "..."}.
//
// The steps' events are merged in time order and observed by a detector with the default
// configuration.
type scenarioStep struct {
	Comment string         `json:"comment"`
	Event   *schemas.Event `json:"event"`
	Gen     *struct {
		Agent        string    `json:"agent"`
		From         time.Time `json:"from"`
		To           time.Time `json:"to"`
		PerMin       float64   `json:"per_min"`
		OffHours     float64   `json:"off_hours_per_min"`
		Tools        []string  `json:"tools"`
		SessionCalls int       `json:"session_calls"`
		Seed         uint64    `json:"seed"`
		// RequestBytes and ResponseBytes are typical sizes (0: none), varied log-normally
		// by about a factor of 1.5.
		RequestBytes  float64 `json:"request_bytes"`
		ResponseBytes float64 `json:"response_bytes"`
	} `json:"gen"`
	Burst *struct {
		Agent   string    `json:"agent"`
		At      time.Time `json:"at"`
		Count   int       `json:"count"`
		Every   string    `json:"every"`
		Method  string    `json:"method"`
		Tool    string    `json:"tool"`
		Session string    `json:"session"`
	} `json:"burst"`
}

// anomalyMatch selects anomalies: every set field must match.
type anomalyMatch struct {
	Comment  string    `json:"comment"`
	Agent    string    `json:"agent"`
	Kind     string    `json:"kind"`
	Kinds    []string  `json:"kinds"`
	Subject  string    `json:"subject"`
	MinScore float64   `json:"min_score"`
	Learning *bool     `json:"learning"`
	Observed string    `json:"observed"`
	Before   time.Time `json:"before"`
	After    time.Time `json:"after"`
}

func (m anomalyMatch) matches(a schemas.Anomaly) bool {
	return (m.Agent == "" || m.Agent == a.AgentID) &&
		(m.Kind == "" || m.Kind == a.Kind) &&
		(len(m.Kinds) == 0 || slices.Contains(m.Kinds, a.Kind)) &&
		(m.Subject == "" || m.Subject == a.Subject) &&
		a.Score >= m.MinScore &&
		(m.Learning == nil || *m.Learning == a.Learning) &&
		(m.Observed == "" || m.Observed == a.Explanation.Observed) &&
		(m.Before.IsZero() || a.LastSeen.Before(m.Before)) &&
		(m.After.IsZero() || a.LastSeen.After(m.After))
}

func loadScenario(t *testing.T, path string) []schemas.Event {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var s stream
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var st scenarioStep
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&st), "%s:%d", path, line)
		switch {
		case st.Event != nil:
			e := st.Event
			ev := s.req(e.ObservedAt, e.AgentID, e.SessionID, e.Method, e.Target)
			last := &s.evs[len(s.evs)-1]
			if e.Status != "" {
				last.Status = e.Status
				ev.Status = e.Status
			}
			last.RequestBytes, last.ResponseBytes = e.RequestBytes, e.ResponseBytes
		case st.Gen != nil:
			g := st.Gen
			off := g.OffHours
			if off == 0 {
				off = g.PerMin
			}
			r := rand.New(rand.NewPCG(g.Seed, 2))
			calls := 0
			for at := g.From; ; calls++ {
				rate := off
				if wd := at.Weekday(); wd != time.Saturday && wd != time.Sunday && at.Hour() >= 8 && at.Hour() < 18 {
					rate = g.PerMin
				}
				at = at.Add(time.Duration(r.ExpFloat64() / rate * float64(time.Minute)))
				if !at.Before(g.To) {
					break
				}
				sid := g.Agent + "-" + g.From.Format("0102") + "-" + itoa(calls/g.SessionCalls)
				if calls%g.SessionCalls == 0 {
					s.req(at, g.Agent, sid, "tools/list", "")
				} else {
					s.req(at, g.Agent, sid, "tools/call", g.Tools[r.IntN(len(g.Tools))])
				}
				last := &s.evs[len(s.evs)-1]
				last.RequestBytes = int(g.RequestBytes * math.Exp2(r.NormFloat64()*0.6))
				last.ResponseBytes = int(g.ResponseBytes * math.Exp2(r.NormFloat64()*0.6))
			}
		case st.Burst != nil:
			b := st.Burst
			every, err := time.ParseDuration(b.Every)
			require.NoError(t, err, "%s:%d", path, line)
			for i := range b.Count {
				s.req(b.At.Add(time.Duration(i)*every), b.Agent, b.Session, b.Method, b.Tool)
			}
		case st.Comment != "":
		default:
			t.Fatalf("%s:%d: an empty step", path, line)
		}
	}
	require.NoError(t, sc.Err())
	slices.SortStableFunc(s.evs, func(a, b schemas.Event) int { return a.ObservedAt.Compare(b.ObservedAt) })
	return s.evs
}

func TestGoldenScenarios(t *testing.T) {
	paths, err := filepath.Glob("testdata/scenarios/*.jsonl")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".jsonl")
		t.Run(name, func(t *testing.T) {
			evs := loadScenario(t, path)
			raw, err := os.ReadFile(strings.TrimSuffix(path, ".jsonl") + ".want.json")
			require.NoError(t, err)
			var want struct {
				Must    []anomalyMatch `json:"must"`
				MustNot []anomalyMatch `json:"must_not"`
			}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&want))
			require.NotEmpty(t, want.Must, "a scenario must expect something")

			got := run(liveDetector(t, Config{}), evs)
			describe := func(as []schemas.Anomaly) string {
				var b strings.Builder
				for _, a := range as {
					b.WriteString("\n  " + a.AgentID + " " + a.Kind + " " + a.Subject + " " + strings.TrimSpace(string(a.Severity)) + " " + a.Explanation.Summary)
					if a.Learning {
						b.WriteString(" (learning)")
					}
				}
				return b.String()
			}
			for _, m := range want.Must {
				require.True(t, slices.ContainsFunc(got, m.matches), "must raise %+v; raised:%s", m, describe(got))
			}
			for _, m := range want.MustNot {
				var bad []schemas.Anomaly
				for _, a := range got {
					if m.matches(a) {
						bad = append(bad, a)
					}
				}
				require.Empty(t, bad, "must not raise %+v:%s", m, describe(bad))
			}
		})
	}
}
