package detector

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// stream builds request events with increasing ids.
type stream struct {
	n   int
	evs []schemas.Event
}

func (s *stream) req(at time.Time, agent, session, method, tool string) schemas.Event {
	s.n++
	ev := schemas.Event{
		ID:            evID(s.n),
		SchemaVersion: schemas.EventSchemaVersion,
		ObservedAt:    at,
		AgentID:       agent,
		ServerID:      "fs",
		SessionID:     session,
		Direction:     schemas.ClientToServer,
		Kind:          schemas.KindRequest,
		Method:        method,
		Target:        tool,
		Status:        schemas.StatusOK,
	}
	s.evs = append(s.evs, ev)
	return ev
}

var week0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

// normalAgent appends from..to of a steady agent: about perMin requests a minute, in sessions
// of 20 (tools/list, then reads and searches).
func normalAgent(s *stream, agent string, from, to time.Time, perMin float64, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	tools := []string{"read_file", "list_dir", "search"}
	calls, session := 0, 0
	for t := from; t.Before(to); {
		t = t.Add(time.Duration(r.ExpFloat64() / perMin * float64(time.Minute)))
		sid := agent + "-s" + itoa(session)
		if calls%20 == 0 {
			s.req(t, agent, sid, "tools/list", "")
		} else {
			s.req(t, agent, sid, "tools/call", tools[r.IntN(len(tools))])
		}
		calls++
		if calls%20 == 0 {
			session++
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// run observes every event in time order and returns the anomalies raised.
func run(d *Detector, evs []schemas.Event) []schemas.Anomaly {
	var out []schemas.Anomaly
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range evs {
		out = append(out, d.Observe(&evs[i], now)...)
	}
	return out
}

func kinds(as []schemas.Anomaly) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[a.Kind]++
	}
	return m
}

func alertable(as []schemas.Anomaly, minScore float64) []schemas.Anomaly {
	var out []schemas.Anomaly
	for _, a := range as {
		if !a.Learning && a.Score >= minScore && a.Kind != KindNewTool {
			out = append(out, a)
		}
	}
	return out
}

func liveDetector(t *testing.T, cfg Config) *Detector {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	t.Cleanup(func() { st.Close() })
	return newDetector(t, cfg, st, []string{"127.0.0.1:1"}, nil)
}

func TestRateSpikeAndSilence(t *testing.T) {
	var s stream
	normalAgent(&s, "a", week0, week0.Add(3*24*time.Hour), 20, 1)
	normal := len(s.evs)
	// A burst: 300 reads within one minute.
	burst := week0.Add(3*24*time.Hour + 10*time.Second)
	for i := range 300 {
		s.req(burst.Add(time.Duration(i)*100*time.Millisecond), "a", "a-burst", "tools/call", "read_file")
	}
	// Then silence for a (at 20 a minute, a silent minute has p ≈ 10⁻⁸), while b's requests
	// move the clock on.
	normalAgent(&s, "b", burst.Add(2*time.Minute), burst.Add(2*time.Hour), 5, 2)

	d := liveDetector(t, Config{})
	got := run(d, s.evs[:normal])
	require.Empty(t, alertable(got, 70), "three normal days raise nothing high once warm")

	got = run(d, s.evs[normal:])
	var spike, drop *schemas.Anomaly
	for i, a := range got {
		switch {
		case a.Kind == KindRateSpike && a.AgentID == "a":
			spike = &got[i] // the latest version
		case a.Kind == KindRateDrop && a.AgentID == "a" && drop == nil:
			drop = &got[i]
		}
	}
	require.NotNil(t, spike, "the burst is a spike: %v", kinds(got))
	require.False(t, spike.Learning)
	require.GreaterOrEqual(t, spike.Score, 70.0)
	require.Regexp(t, `^30\d calls/min$`, spike.Explanation.Observed, "the burst and a's requests of that minute")
	require.Equal(t, "request_rate", spike.Explanation.Model)
	require.Contains(t, spike.Explanation.Summary, "Request rate spiked")
	require.Equal(t, evID(normal+300), spike.EvidenceEventIDs[len(spike.EvidenceEventIDs)-1], "the bucket's first and last request")
	require.Equal(t, burst.Truncate(time.Minute), spike.LastSeen)

	require.NotNil(t, drop, "a steady agent falling silent is noticed by event time: %v", kinds(got))
	require.Equal(t, "0 calls/min", drop.Explanation.Observed)
	require.Equal(t, []string{evID(normal + 300)}, drop.EvidenceEventIDs, "the last request before the silence")
	require.Equal(t, 1, kinds(got)[KindRateDrop]-countRepeats(got, KindRateDrop), "the silence is one anomaly, updated")
}

// countRepeats counts the anomalies of kind that update an earlier one (same id).
func countRepeats(as []schemas.Anomaly, kind string) int {
	seen := map[string]bool{}
	n := 0
	for _, a := range as {
		if a.Kind != kind {
			continue
		}
		if seen[a.ID] {
			n++
		}
		seen[a.ID] = true
	}
	return n
}

func TestWarmUpMarksLearning(t *testing.T) {
	var s stream
	normalAgent(&s, "a", week0, week0.Add(3*time.Hour), 5, 3)
	// A burst two hours in: the model has a baseline, the agent is still warming up.
	for i := range 200 {
		s.req(week0.Add(3*time.Hour+time.Duration(i)*200*time.Millisecond), "a", "a-x", "tools/call", "read_file")
	}
	s.req(week0.Add(3*time.Hour+2*time.Minute), "a", "a-x", "tools/call", "read_file")
	got := run(liveDetector(t, Config{}), s.evs)
	require.Positive(t, kinds(got)[KindRateSpike])
	for _, a := range got {
		if a.Kind == KindRateSpike {
			require.True(t, a.Learning, "within the first day an agent's anomalies are learning")
		}
	}
	got = run(liveDetector(t, Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}), s.evs)
	for _, a := range got {
		if a.Kind == KindRateSpike {
			require.False(t, a.Learning, "without warm-up")
		}
	}
}

func TestSequenceAnomalies(t *testing.T) {
	var s stream
	at := week0
	// 60 sessions of list → read → read → write, each ended by the next session's id.
	for i := range 60 {
		sid := "s" + itoa(i)
		for _, c := range [][2]string{{"tools/list", ""}, {"tools/call", "read_file"}, {"tools/call", "read_file"}, {"tools/call", "write_file"}} {
			at = at.Add(time.Minute)
			s.req(at, "a", sid, c[0], c[1])
		}
		at = at.Add(10 * time.Minute)
	}
	trained := len(s.evs)
	// A session that starts by writing, reads 30 times and reads a resource.
	at = at.Add(time.Minute)
	s.req(at, "a", "odd", "tools/call", "write_file")
	for range 30 {
		at = at.Add(time.Second)
		s.req(at, "a", "odd", "tools/call", "read_file")
	}
	s.req(at, "a", "odd", "resources/read", "file:///etc/passwd")
	// A session that stops after listing the tools: it ends idle.
	at = at.Add(time.Minute)
	short := s.req(at, "a", "short", "tools/list", "")
	// b's requests move the clock past the idle gap.
	s.req(at.Add(time.Hour), "b", "b1", "tools/list", "")
	s.req(at.Add(time.Hour+time.Minute), "b", "b2", "tools/list", "")

	// The count above range has p = 0.5/61: below the default threshold after 60 sessions.
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}, Rate: RateConfig{Disabled: true}, Sequence: SequenceConfig{MinScore: 40}}
	d := liveDetector(t, cfg)
	require.Empty(t, alertable(run(d, s.evs[:trained]), 0), "a regular agent raises nothing")
	got := run(d, s.evs[trained:])
	byKind := map[string]schemas.Anomaly{}
	for _, a := range got {
		if _, ok := byKind[a.Kind]; !ok {
			byKind[a.Kind] = a
		}
	}
	nt, ok := byKind[KindNewTransition]
	require.True(t, ok, "a first-seen transition: %v", kinds(got))
	require.Equal(t, "session start → tools/call write_file", nt.Subject)
	require.Equal(t, "odd", nt.SessionID)
	require.Equal(t, []string{evID(trained + 1)}, nt.EvidenceEventIDs)
	require.Contains(t, nt.Explanation.Summary, "seen in 0 of 60 sessions")
	require.InDelta(t, -20*math.Log10(0.5/61), nt.Score, 1e-9, "p = 0.5/61: unseen in 60 sessions, no other agents")

	us, ok := byKind[KindUnlikelyStep]
	require.True(t, ok, "a method the agent never used: %v", kinds(got))
	require.Equal(t, "new_call resources/read", us.Subject, "resources are one symbol, whatever the URI")
	require.Contains(t, us.Explanation.Summary, "resources/read seen in 0 of 60 sessions")

	sess, ok := byKind[KindUnusualSession]
	require.True(t, ok, "the session, ended by the idle gap, is unusual as a whole: %v", kinds(got))
	require.Equal(t, "short", sess.Subject, "odd's steps said it all; short's end is what is new")
	require.Equal(t, []string{short.ID}, sess.EvidenceEventIDs)
	require.Contains(t, sess.Explanation.Summary, "Session of 1 calls")
	require.Contains(t, sess.Explanation.Summary, "tools/list → session end seen in 0 of 61 sessions")
	require.Equal(t, 1, kinds(got)[KindUnusualSession])
	require.NotContains(t, kinds(got), KindNewTool, "write_file was known")
	for _, a := range got {
		require.NotEqual(t, "b", a.AgentID, "b is cold and has no unusual history")
	}
}

func TestPopulationIsThePeerPrior(t *testing.T) {
	var s stream
	at := week0
	for i := range 300 {
		for _, agent := range []string{"a", "b"} {
			sid := agent + itoa(i)
			for _, c := range []string{"read_file", "write_file"} {
				at = at.Add(time.Second)
				s.req(at, agent, sid, "tools/call", c)
			}
		}
	}
	// A new agent starts with a transition no peer ever made.
	s.req(at.Add(time.Second), "c", "c1", "tools/call", "write_file")
	s.req(at.Add(2*time.Second), "c", "c1", "tools/call", "read_file")
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}, Rate: RateConfig{Disabled: true}}
	got := run(liveDetector(t, cfg), s.evs)
	var c []schemas.Anomaly
	for _, a := range got {
		if a.AgentID == "c" && a.Kind == KindNewTransition {
			c = append(c, a)
		}
	}
	require.NotEmpty(t, c, "rarity among peers: %v", kinds(got))
	require.Equal(t, "session start → tools/call write_file", c[0].Subject)
	require.Contains(t, c[0].Explanation.Summary, "peer sessions")
}

func TestRaiseMergesRepeats(t *testing.T) {
	d := liveDetector(t, Config{})
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := week0
	an := func(score float64, learning bool) schemas.Anomaly {
		at = at.Add(time.Minute)
		return schemas.Anomaly{AgentID: "a", Kind: KindUnlikelyStep, Subject: "x", Score: score, FirstSeen: at, Learning: learning}
	}
	var out []schemas.Anomaly
	out = d.raise(out, an(50, true), []string{evID(1)}, now, time.Hour)
	require.Len(t, out, 1)
	id := out[0].ID
	for i := 2; i <= 16; i++ {
		out = d.raise(out, an(50, true), []string{evID(i)}, now, time.Hour)
	}
	require.Len(t, out, 5, "raised, then updated at counts 2, 4, 8 and 16 only")
	last := out[4]
	require.Equal(t, id, last.ID)
	require.Equal(t, 16, last.Count)
	require.Equal(t, week0.Add(time.Minute), last.FirstSeen)
	require.Equal(t, week0.Add(16*time.Minute), last.LastSeen)
	require.Len(t, last.EvidenceEventIDs, maxEvidence)
	require.Equal(t, evID(16), last.EvidenceEventIDs[maxEvidence-1], "the newest evidence is kept")

	out = d.raise(out[:0], an(80, true), []string{evID(17)}, now, time.Hour)
	require.Len(t, out, 1, "an escalation is produced")
	require.Equal(t, 80.0, out[0].Score)
	require.Equal(t, schemas.SeverityHigh, out[0].Severity)
	out = d.raise(out[:0], an(50, false), []string{evID(18)}, now, time.Hour)
	require.Len(t, out, 1, "the end of learning is produced")
	require.False(t, out[0].Learning)
	require.Equal(t, 80.0, out[0].Score, "the score is the episode's highest")

	at = at.Add(2 * time.Hour)
	out = d.raise(out[:0], an(50, false), []string{evID(19)}, now, time.Hour)
	require.Len(t, out, 1)
	require.NotEqual(t, id, out[0].ID, "after the window it is a new anomaly")
	require.Equal(t, 1, out[0].Count)
}

func TestSuppression(t *testing.T) {
	var s stream
	s.req(week0, "a", "s", "tools/call", "read_file")
	s.req(week0, "b", "s", "tools/call", "read_file")
	s.req(week0, "c", "s", "tools/call", "read_file")
	cfg := Config{Suppress: []Suppression{{Agent: "a"}, {Agent: "b", Kind: KindNewTool}, {Kind: KindRateDrop}}}
	d := liveDetector(t, cfg)
	got := run(d, s.evs)
	require.Len(t, got, 1)
	require.Equal(t, "c", got[0].AgentID)
	require.True(t, d.suppressed("x", KindRateDrop))
	require.False(t, d.suppressed("b", KindRateSpike))
	require.Contains(t, d.toolsOf("a", nil, false).Tools, "read_file", "suppressed agents still learn")
}

func TestModelsConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "rate min score", cfg: Config{Rate: RateConfig{MinScore: 101}}, want: []string{"detector.rate.min_score: must be between 0 and 100, got 101"}},
		{name: "rate model", cfg: Config{Rate: RateConfig{Model: rateBucket(time.Millisecond)}}, want: []string{"detector.rate.bucket: must be at least 1s"}},
		{name: "sequence", cfg: Config{Sequence: SequenceConfig{SessionIdle: -1, MinScore: -1}}, want: []string{"detector.sequence.session_idle: must be positive", "detector.sequence.min_score"}},
		{name: "sequence model", cfg: Config{Sequence: SequenceConfig{Model: seqSmoothing(-1)}}, want: []string{"detector.sequence.smoothing"}},
		{name: "merge window", cfg: Config{MergeWindow: -1}, want: []string{"detector.merge_window: must be positive"}},
		{name: "size", cfg: Config{Size: SizeConfig{MinBytes: -1, Model: size.Config{MaxKeys: -1}}}, want: []string{"detector.size.min_bytes: must not be negative, got -1", "detector.size.max_keys"}},
		{name: "campaign", cfg: Config{Campaign: CampaignConfig{MinAgents: 1, Window: -1}}, want: []string{"detector.campaign.min_agents: must be from 2 to 64, got 1", "detector.campaign.window: must be positive"}},
		{name: "scan", cfg: Config{Scan: ScanConfig{MinCalls: 1, MinScore: 200}}, want: []string{"detector.scan.min_calls: must be at least 2, got 1", "detector.scan.min_score"}},
		{name: "empty suppression", cfg: Config{Suppress: []Suppression{{Kind: KindRateDrop}, {}}}, want: []string{"detector.suppress[1]: must name an agent, a kind or both"}},
		{name: "unknown kind", cfg: Config{Suppress: []Suppression{{Kind: "nope"}}}, want: []string{`detector.suppress[0].kind: unknown anomaly kind "nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			err := cfg.Validate()
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	var c Config
	c.SetDefaults()
	require.NoError(t, c.Validate())
	require.Equal(t, 40.0, c.Rate.MinScore)
	require.Equal(t, 60.0, c.Sequence.MinScore)
	require.Equal(t, 30*time.Minute, c.Sequence.SessionIdle)
	require.Equal(t, time.Minute, c.Rate.Model.Bucket)
	require.Equal(t, WarmUpConfig{Duration: 24 * time.Hour, Events: 100}, c.WarmUp)
	require.Equal(t, time.Hour, c.MergeWindow)
}

// TestSameScoresAcrossRestart runs one stream through a detector, and through another that
// is snapshotted, replaced by a detector restored from the store, between sessions: both raise
// the same anomalies afterwards.
func TestSameScoresAcrossRestart(t *testing.T) {
	var s stream
	normalAgent(&s, "a", week0, week0.Add(2*24*time.Hour), 4, 5)
	cut := len(s.evs)
	// After the cut: a burst, an unseen transition, then normal again.
	at := s.evs[cut-1].ObservedAt.Add(2 * time.Hour)
	for i := range 100 {
		s.req(at.Add(time.Duration(i)*100*time.Millisecond), "a", "after", "tools/call", "search")
	}
	normalAgent(&s, "a", at.Add(time.Hour), at.Add(5*time.Hour), 4, 6)

	ctx := context.Background()
	// Open anomalies are not snapshotted: short windows keep those before the cut from
	// absorbing those after it in the detector that never stopped.
	cfg := Config{MergeWindow: time.Hour, Rate: RateConfig{Model: rate.Config{EpisodeGap: time.Hour}}}
	straight := run(liveDetector(t, cfg), s.evs)

	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	d1 := newDetector(t, cfg, st, []string{"127.0.0.1:1"}, nil)
	first := run(d1, s.evs[:cut])
	// The session in progress at the cut is not part of the baselines; end it as the idle
	// gap would before snapshotting.
	d1.mu.Lock()
	for _, a := range d1.agents {
		d1.endSessions(nil, a, d1.clock, time.Now())
	}
	require.NoError(t, d1.snapshot(ctx))
	d1.mu.Unlock()
	require.NoError(t, d1.Shutdown(ctx))

	d2 := newDetector(t, cfg, st, []string{"127.0.0.1:1"}, nil)
	require.NoError(t, d2.restore(ctx))
	second := run(d2, s.evs[cut:])
	require.NoError(t, d2.Shutdown(ctx))

	type verdict struct {
		Kind, Subject string
		Score         float64
		Count         int
		Learning      bool
	}
	summarise := func(as []schemas.Anomaly) []verdict {
		var out []verdict
		for _, a := range as {
			if !a.LastSeen.Before(at.Truncate(time.Minute)) {
				out = append(out, verdict{a.Kind, a.Subject, a.Score, a.Count, a.Learning})
			}
		}
		return out
	}
	require.NotEmpty(t, summarise(straight), "the stream after the cut raises something")
	require.Equal(t, summarise(straight), summarise(append(first, second...)))
}

func rateBucket(d time.Duration) (c rate.Config) { c.Bucket = d; return c }
func seqSmoothing(x float64) (c sequence.Config) { c.Smoothing = x; return c }

// TestFailedProduceKeepsModelAnomalies checks that anomalies whose produce failed go out with
// the next batch when that is another one (after a rebalance, the failed batch may never be
// offered again).
func TestFailedProduceKeepsModelAnomalies(t *testing.T) {
	ctx := context.Background()
	port := freePort(t)
	brokers := []string{"127.0.0.1:" + strconv.Itoa(port)}
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}, Rate: RateConfig{Disabled: true}, Sequence: SequenceConfig{MinScore: 40}}
	d := newDetector(t, cfg, st, brokers, nil)
	defer func() { require.NoError(t, d.Shutdown(ctx)) }()
	var s stream
	at := week0
	for i := range 60 {
		at = at.Add(time.Minute)
		s.req(at, "a", "s"+itoa(i), "tools/call", "read_file")
	}
	d.mu.Lock()
	run(d, s.evs)
	d.mu.Unlock()
	odd := s.req(at.Add(time.Minute), "a", "odd", "resources/read", "file:///x")
	batch := eventMessages(t, odd)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	require.Error(t, d.handle(short, batch), "the broker is down")
	require.Len(t, d.unsent.raised, 1)
	require.Equal(t, KindUnlikelyStep, d.unsent.raised[0].Kind)

	startBroker(t, port)
	next := eventMessages(t, s.req(at.Add(2*time.Minute), "a", "odd", "resources/read", "file:///x"))
	require.Eventually(t, func() bool { return d.handle(ctx, next) == nil }, 20*time.Second, 100*time.Millisecond)
	got := readAnomalies(t, brokers, 1)
	require.Equal(t, "new_call resources/read", got[0].Subject)
	require.Equal(t, []string{odd.ID}, got[0].EvidenceEventIDs)
	require.Nil(t, d.unsent)
}

func TestScan(t *testing.T) {
	var s stream
	at := week0
	// 30 sessions that list the tools once, then read.
	for i := range 30 {
		for _, m := range []string{"tools/list", "tools/call"} {
			at = at.Add(time.Minute)
			s.req(at, "a", "s"+itoa(i), m, "read_file")
		}
	}
	trained := len(s.evs)
	// A session listing tools 9 times, then probing 3 unknown tools (one twice) and failing a
	// known one: 9 + 3 probes = 12 ≥ 10, scored at 10.
	for range 9 {
		at = at.Add(time.Second)
		s.req(at, "a", "scan", "tools/list", "")
	}
	for _, tool := range []string{"x1", "x2", "x2", "read_file", "x3"} {
		at = at.Add(time.Second)
		s.req(at, "a", "scan", "tools/call", tool)
		s.evs[len(s.evs)-1].Status = schemas.StatusError
	}
	// The next session ends it: the final tally is produced.
	s.req(at.Add(time.Minute), "a", "next", "tools/list", "")

	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}, Rate: RateConfig{Disabled: true}}
	d := liveDetector(t, cfg)
	require.Empty(t, alertable(run(d, s.evs[:trained]), 0))
	require.InDelta(t, 1.0, d.agents["a"].scanMean, 1e-6, "one enumeration per session")
	require.EqualValues(t, 29, d.agents["a"].scanSessions, "the last session is still open")

	var scans []schemas.Anomaly
	for _, a := range run(d, s.evs[trained:]) {
		if a.Kind == KindScan {
			scans = append(scans, a)
		}
	}
	require.Len(t, scans, 2, "raised at 10 calls, updated with the final tally")
	first, final := scans[0], scans[1]
	require.Equal(t, "scan", first.Subject)
	require.Equal(t, "9 enumeration calls and 1 probes of unknown tools", first.Explanation.Observed)
	lambda := (1.0*30 + scanPrior) / 31
	p := scanProbability(10, lambda)
	require.InDelta(t, -10*math.Log10(p), first.Score, 1e-9)
	require.Equal(t, "session_shape", first.Explanation.Model)
	require.Equal(t, first.ID, final.ID)
	require.Equal(t, "9 enumeration calls and 3 probes of unknown tools", final.Explanation.Observed, "x2 twice and the known read_file are not probes")
	require.Equal(t, 2, final.Count)
	require.Greater(t, final.Score, first.Score)
	require.InDelta(t, (1.0*30+12)/31, d.agents["a"].scanMean, 1e-5, "the session is learnt")

	require.True(t, isDoubling(10, 10))
	require.True(t, isDoubling(40, 10))
	require.False(t, isDoubling(30, 10))
	require.False(t, isDoubling(5, 10))
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[float64]string{0: "0 B", 812: "812 B", 4100: "4.1 KB", 41943040: "42 MB", 2e12: "2.0 TB"} {
		require.Equal(t, want, formatBytes(in))
	}
}

func TestFutureEventsAreClamped(t *testing.T) {
	d := liveDetector(t, Config{})
	now := week0.Add(time.Hour)
	var s stream
	s.req(week0, "a", "s", "tools/list", "")
	s.req(week0.Add(100*365*24*time.Hour), "b", "s", "tools/list", "")
	for i := range s.evs {
		d.Observe(&s.evs[i], now)
	}
	require.Equal(t, now.Add(maxClockSkew).UnixNano(), d.clock, "the watermark stops at the clock plus the allowed skew")
}

// TestParallelSessions checks that an agent's interleaved sessions with two servers are kept
// apart: each is its own sequence, and a new session id ends only the one with its server.
func TestParallelSessions(t *testing.T) {
	var s stream
	at := week0
	for i := range 60 {
		for _, c := range []struct{ server, method, tool string }{
			{"fs", "tools/list", ""}, {"gh", "tools/list", ""}, {"fs", "tools/call", "read_file"},
			{"gh", "tools/call", "create_issue"}, {"fs", "tools/call", "read_file"},
		} {
			at = at.Add(time.Second)
			s.req(at, "a", c.server+"-"+itoa(i), c.method, c.tool)
			s.evs[len(s.evs)-1].ServerID = c.server
		}
		at = at.Add(5 * time.Minute)
	}
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}, Rate: RateConfig{Disabled: true}, Sequence: SequenceConfig{MinScore: 30}}
	d := liveDetector(t, cfg)
	got := run(d, s.evs)
	require.Empty(t, alertable(got, 30), "interleaving is not surprising: each server's session is learnt on its own")
	st := d.agents["a"]
	require.Equal(t, 118, st.seq.Sessions(), "two sessions per round, the last two still open")
	require.Len(t, st.live, 2)
	fs := d.seqModel.Symbols()
	read, _ := fs.Lookup("tools/call", "read_file")
	issue, _ := fs.Lookup("tools/call", "create_issue")
	require.True(t, st.seq.Knows(read))
	require.True(t, st.seq.Knows(issue))
	// A session on a third and fourth server, then a fifth: the least recently used goes.
	for i, server := range []string{"x", "y", "z"} {
		ev := s.req(at.Add(time.Duration(i)*time.Second), "a", server+"-1", "tools/list", "")
		ev.ServerID = server
		d.Observe(&ev, at)
	}
	require.Len(t, st.live, maxLiveSessions)
	for _, ls := range st.live {
		require.NotEqual(t, "gh-59", ls.id, "the least recently used session (gh-59: fs-59 made the last call) was ended")
	}
}

func TestCampaignWindow(t *testing.T) {
	d := liveDetector(t, Config{})
	now := week0
	an := func(agent string, at time.Duration) schemas.Anomaly {
		return schemas.Anomaly{AgentID: agent, Kind: KindNewTransition, ServerID: "fs", Subject: "a → b", Score: 60, FirstSeen: week0.Add(at)}
	}
	var out []schemas.Anomaly
	out = d.raise(out, an("x", 0), nil, now, time.Hour)
	out = d.raise(out, an("y", 10*time.Minute), nil, now, time.Hour)
	out = d.raise(out, an("x", 20*time.Minute), nil, now, time.Hour) // a repeat: merged, not a new agent
	require.Empty(t, kinds(out)[KindCampaign])
	// z comes after x's first sighting left the window, but x was seen again at 20m.
	out = d.raise(out[:0], an("z", 65*time.Minute), nil, now, time.Hour)
	require.Equal(t, 0, kinds(out)[KindCampaign], "x's repeat was merged, so x counts from 0m: out of the window")
	out = d.raise(out[:0], an("w", 68*time.Minute), nil, now, time.Hour)
	require.Equal(t, 1, kinds(out)[KindCampaign], "y, z and w within the hour")
	c := out[len(out)-1]
	require.Equal(t, "new_transition a → b on fs", c.Subject)
	require.Equal(t, "3 agents within 1h: y, z, w", c.Explanation.Observed)
	require.Equal(t, "y", c.AgentID)
	require.Equal(t, 60.0, c.Score)
	d.expireCampaigns(week0.Add(3 * time.Hour))
	require.Empty(t, d.campaigns)
}

// TestBaselinesFollowRebalance moves an agent's partition from one detector to another and
// back, as consumer-group rebalances do: each instance, on (re)acquiring the partition,
// continues from the baselines the other saved, and raises what one detector that never lost
// the agent raises.
func TestBaselinesFollowRebalance(t *testing.T) {
	var s stream
	normalAgent(&s, "a", week0, week0.Add(2*24*time.Hour), 4, 5)
	half, cut := len(s.evs)/2, len(s.evs)
	at := s.evs[cut-1].ObservedAt.Add(2 * time.Hour)
	for i := range 100 {
		s.req(at.Add(time.Duration(i)*100*time.Millisecond), "a", "after", "tools/call", "search")
	}
	normalAgent(&s, "a", at.Add(time.Hour), at.Add(5*time.Hour), 4, 6)

	ctx := context.Background()
	cfg := Config{MergeWindow: time.Hour, Rate: RateConfig{Model: rate.Config{EpisodeGap: time.Hour}}}
	// The instances hand the agent over between sessions, as in TestSameScoresAcrossRestart.
	var straight []schemas.Anomaly
	{
		d := liveDetector(t, cfg)
		straight = append(straight, run(d, s.evs[:half])...)
		d.mu.Lock()
		for _, a := range d.agents {
			straight = d.endSessions(straight, a, d.clock, time.Now())
		}
		d.mu.Unlock()
		straight = append(straight, run(d, s.evs[half:])...)
	}

	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	wall := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := func(d *Detector, at *time.Time) { d.now = func() time.Time { return *at } }
	partition0 := []kafka.Message{{Partition: 0}}
	var got []schemas.Anomaly

	// Instance 1 owns the partition first; instance 2 starts beside it with nothing.
	t1, t2 := wall, wall
	d1 := newDetector(t, cfg, st, []string{"127.0.0.1:1"}, nil)
	d2 := newDetector(t, cfg, st, []string{"127.0.0.1:1"}, nil)
	clock(d1, &t1)
	clock(d2, &t2)
	require.NoError(t, d1.restore(ctx))
	require.NoError(t, d2.restore(ctx))
	d1.mu.Lock()
	require.NoError(t, d1.followRebalance(ctx, partition0))
	d1.mu.Unlock()
	got = append(got, run(d1, s.evs[:half])...)
	d1.mu.Lock()
	for _, a := range d1.agents {
		got = d1.endSessions(got, a, d1.clock, t1)
	}
	t1 = t1.Add(time.Second)
	require.NoError(t, d1.snapshot(ctx))
	d1.mu.Unlock()

	// The partition moves to instance 2, well after it started.
	t2 = t2.Add(time.Hour)
	d2.mu.Lock()
	require.NoError(t, d2.followRebalance(ctx, partition0))
	require.NotNil(t, d2.agents["a"], "instance 2 restored the agent it took over")
	d2.mu.Unlock()
	got = append(got, run(d2, s.evs[half:cut])...)
	d2.mu.Lock()
	for _, a := range d2.agents {
		got = d2.endSessions(got, a, d2.clock, t2)
	}
	t2 = t2.Add(time.Second)
	require.NoError(t, d2.snapshot(ctx))
	d2.mu.Unlock()

	// And back to instance 1, whose copy of the agent is now stale.
	t1 = t2.Add(time.Hour)
	d1.mu.Lock()
	require.NoError(t, d1.followRebalance(ctx, partition0))
	d1.mu.Unlock()
	got = append(got, run(d1, s.evs[cut:])...)
	require.NoError(t, d1.Shutdown(ctx))
	require.NoError(t, d2.Shutdown(ctx))

	type verdict struct {
		Kind, Subject string
		Score         float64
		Count         int
	}
	summarise := func(as []schemas.Anomaly) []verdict {
		var out []verdict
		for _, a := range as {
			if !a.LastSeen.Before(at.Truncate(time.Minute)) {
				out = append(out, verdict{a.Kind, a.Subject, a.Score, a.Count})
			}
		}
		return out
	}
	require.NotEmpty(t, summarise(straight), "the stream after the hand-overs raises something")
	require.Equal(t, summarise(straight), summarise(got))
}

// TestIdlePartitionRestoresNothing: a partition that was only quiet, not moved, keeps the
// instance's own (newer, unsaved) state.
func TestIdlePartitionRestoresNothing(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "mcpwatch.db"))
	defer st.Close()
	wall := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	d := newDetector(t, Config{}, st, []string{"127.0.0.1:1"}, nil)
	d.now = func() time.Time { return wall }
	require.NoError(t, d.restore(ctx))
	var s stream
	normalAgent(&s, "a", week0, week0.Add(time.Hour), 4, 5)
	run(d, s.evs)
	d.mu.Lock()
	defer d.mu.Unlock()
	require.NoError(t, d.snapshot(ctx))
	events := d.agents["a"].events
	// More events after the snapshot, then a long silence on the partition.
	d.agents["a"].events += 7
	d.markDirty(d.agents["a"])
	wall = wall.Add(time.Hour)
	require.NoError(t, d.followRebalance(ctx, []kafka.Message{{Partition: 3}}))
	require.Equal(t, events+7, d.agents["a"].events, "unsaved changes are kept")
	require.NoError(t, d.snapshot(ctx))
	d.agents["a"].events = 1
	wall = wall.Add(time.Hour)
	require.NoError(t, d.followRebalance(ctx, []kafka.Message{{Partition: 3}}))
	require.Equal(t, int64(1), d.agents["a"].events, "nothing newer than its own snapshot was restored")
}

// TestPeerGroupPrior starts a new agent from its peer group's rate baseline: busy batch agents
// and quiet interactive ones learn for two days, then a newcomer works at the batch pace. As a
// batch agent that is normal; put in the interactive group, the same pace is a spike.
func TestPeerGroupPrior(t *testing.T) {
	label := func(evs []schemas.Event, agent, group string) {
		for i := range evs {
			if evs[i].AgentID == agent {
				evs[i].Labels = map[string]string{PeerGroupLabel: group}
			}
		}
	}
	var s stream
	from, to := week0, week0.Add(2*24*time.Hour)
	for i, a := range []string{"batch-1", "batch-2", "batch-3"} {
		normalAgent(&s, a, from, to, 60, uint64(10+i))
	}
	for i, a := range []string{"chat-1", "chat-2", "chat-3"} {
		normalAgent(&s, a, from, to, 1, uint64(20+i))
	}
	for _, a := range []string{"batch-1", "batch-2", "batch-3"} {
		label(s.evs, a, "batch")
	}
	for _, a := range []string{"chat-1", "chat-2", "chat-3"} {
		label(s.evs, a, "interactive")
	}
	history := s.evs
	slices.SortStableFunc(history, func(a, b schemas.Event) int { return a.ObservedAt.Compare(b.ObservedAt) })

	spikes := func(group string) int {
		var n stream
		n.n = 1 << 20
		normalAgent(&n, "newcomer", to, to.Add(20*time.Minute), 60, 99)
		label(n.evs, "newcomer", group)
		cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}, Sequence: SequenceConfig{Disabled: true}}
		got := run(liveDetector(t, cfg), append(slices.Clone(history), n.evs...))
		count := 0
		for _, a := range got {
			if a.AgentID == "newcomer" && a.Kind == KindRateSpike {
				count++
			}
		}
		return count
	}
	require.Zero(t, spikes("batch"), "a newcomer at its peer group's pace is normal")
	require.NotZero(t, spikes("interactive"), "the same pace in a quiet group is a spike")
}

// TestWatermarkWaitsForSlowPartitions replays two agents on two partitions, one read two hours
// ahead of the other (a backlog drained at different paces): the lagging agent is not swept
// into silence ahead of its own events, and raises what it raises when read in step.
func TestWatermarkWaitsForSlowPartitions(t *testing.T) {
	var s stream
	normalAgent(&s, "a", week0, week0.Add(3*24*time.Hour), 4, 1)
	normalAgent(&s, "b", week0, week0.Add(3*24*time.Hour), 4, 2)
	var a, b []kafka.Message
	for _, ev := range s.evs {
		v, err := json.Marshal(ev)
		require.NoError(t, err)
		if ev.AgentID == "a" {
			a = append(a, kafka.Message{Partition: 0, Value: v})
		} else {
			b = append(b, kafka.Message{Partition: 1, Value: v})
		}
	}
	rateAnomalies := func(as []schemas.Anomaly, agent string) (n int) {
		for _, x := range as {
			if x.AgentID == agent && (x.Kind == KindRateDrop || x.Kind == KindRateSpike) && !x.Learning {
				n++
			}
		}
		return n
	}
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	cfg := Config{WarmUp: WarmUpConfig{Duration: -1, Events: -1}}
	// In step: batches of both partitions, in event time.
	inStep := liveDetector(t, cfg)
	var want []schemas.Anomaly
	ia, ib := 0, 0
	for ia < len(a) || ib < len(b) {
		var batch []kafka.Message
		for k := 0; k < 20 && ia < len(a); k, ia = k+1, ia+1 {
			batch = append(batch, a[ia])
		}
		for k := 0; k < 20 && ib < len(b); k, ib = k+1, ib+1 {
			batch = append(batch, b[ib])
		}
		want = append(want, inStep.observeBatch(batch, now)...)
	}
	// Skewed: after a day in step, partition 1 stalls for two hours of partition 0's events
	// (about 480), then catches up five batches at a time.
	skewed := liveDetector(t, cfg)
	var got []schemas.Anomaly
	ia, ib = 0, 0
	day := len(a) / 3
	for ia < len(a) || ib < len(b) {
		var batch []kafka.Message
		for k := 0; k < 20 && ia < len(a); k, ia = k+1, ia+1 {
			batch = append(batch, a[ia])
		}
		n := 20
		switch {
		case ia > day && ia <= day+480:
			n = 0
		case ia > day+480:
			n = 100
		}
		for k := 0; k < n && ib < len(b); k, ib = k+1, ib+1 {
			batch = append(batch, b[ib])
		}
		got = append(got, skewed.observeBatch(batch, now)...)
	}
	require.Equal(t, rateAnomalies(want, "b"), rateAnomalies(got, "b"), "the lagging agent raises what it raises in step")
	require.Equal(t, rateAnomalies(want, "a"), rateAnomalies(got, "a"))
}

// observeBatch decodes and observes a batch, as the handler does (without restoring agents
// from the store). Callers hold d.mu.
func (d *Detector) observeBatch(msgs []kafka.Message, now time.Time) []schemas.Anomaly {
	evs, parts := d.decodeBatch(msgs, now)
	return d.observeEvents(evs, parts, now)
}
