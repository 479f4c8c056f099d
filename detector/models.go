package detector

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Baseline model names of the statistical models' state in the store.
const (
	ModelRequestRate        = rate.ModelName     // one rate.Model per agent
	ModelToolSequence       = sequence.ModelName // one sequence.Baseline per agent
	ModelSequencePopulation = "tool_sequence_population"
	ModelAgent              = "agent" // warm-up (first seen, requests sent) and scan average
	populationKey           = "all"
)

// maxEvidence bounds the evidence event ids a merged anomaly keeps (the newest).
const maxEvidence = 10

// maxPriorAgents bounds the agents the population rate prior is summarised from.
const maxPriorAgents = 1000

// priorRefresh is how often, by event time, the population rate prior is rebuilt.
const priorRefresh = time.Hour

// agentState is one agent's statistical baselines and what the detector needs around them.
// The models are embedded, not pointed to: with many agents every touch of another object is
// a cache miss, and the hot path touches them all. Event ids are kept as 16-byte UUIDs:
// copying them costs no allocation on the hot path.
type agentState struct {
	name  string // the map key (owned)
	group string // its peer group (PeerGroupLabel), "" when the inventory names none
	// live are the agent's sessions in progress (an agent may hold several at once, one
	// per server say), at most maxLiveSessions, least recently used first to go.
	live   []*liveSession
	first  int64 // event time of the first event (Unix ns)
	last   int64 // event time of the latest request
	events int64 // requests seen
	// bucketFirst is the first request id of the open rate bucket (zero: the bucket has
	// none); the last is the latest of its live sessions' (lastRequest).
	bucketFirst uuid.UUID
	tools       *agentTools // first_seen_tool's baseline (Detector.toolsOf)
	// The models' baselines, each valid only when its model is enabled.
	rate  rate.Model
	seq   sequence.Baseline
	sizes size.Sizes
	// The session-shape model (shape.go): its feature baselines (nil until the agent's first
	// request), fan-out window, error ratio (errors and calls, decayed) and sessions ended.
	shape         *shapeBaseline
	fan           fanOut
	errs, calls   float32
	sessionsEnded uint32
	// The scan model: the agent's enumeration and probe calls per session, on average over
	// scanSessions sessions.
	scanMean     float32
	scanSessions uint32
	// dirty: the agent has changes to save (in Detector.dirtyAgents); toolsDirty: among
	// them, its first-seen tools. evicting: the sweep found it idle for EvictAfter (in
	// Detector.evictable); evicted: it left memory.
	dirty, toolsDirty, evicting, evicted bool
}

// lastRequest returns the id of the agent's latest request, the latest of its sessions in
// progress (zero when it has none: evidence then goes without it).
func (st *agentState) lastRequest() uuid.UUID {
	var id uuid.UUID
	latest := int64(math.MinInt64)
	for _, ls := range st.live {
		if ls.last >= latest {
			id, latest = ls.lastID, ls.last
		}
	}
	return id
}

// maxLiveSessions bounds the sessions in progress per agent.
const maxLiveSessions = 4

// maxPooledSessions bounds the ended sessions kept for reuse: past it, the sessions of agents
// gone idle are left to the garbage collector.
const maxPooledSessions = 4096

// liveSession is one session in progress.
type liveSession struct {
	sess   sequence.Session
	id     string
	server string
	max    float64 // the highest step score raised (its end is raised only when it says more)
	last   int64   // event time of its latest request
	// lastID is its latest request's id; enum and probes count its enumeration calls and
	// probes of unknown tools (the scan model).
	lastID       uuid.UUID
	enum, probes uint32
	// The session-shape model's counts: when it started and its failed calls (its distinct
	// tools are those of sess).
	start  int64
	errors uint32
	prev   sequence.Symbol // the previous call
}

// agentRecord is agentState's stored record: its warm-up and its scan average.
type agentRecord struct {
	First        time.Time `json:"first"`
	Events       int64     `json:"events"`
	ScanMean     float32   `json:"scan_mean"`
	ScanSessions uint32    `json:"scan_sessions"`
	Group        string    `json:"group,omitempty"`
	// The session-shape model's error ratio and sessions ended.
	Errors   float32 `json:"errors,omitempty"`
	Calls    float32 `json:"calls,omitempty"`
	Sessions uint32  `json:"sessions,omitempty"`
	// Last is the agent's latest request (event time): one idle for EvictAfter is not
	// restored at start, only when it comes back.
	Last time.Time `json:"last,omitzero"`
}

// openAnomaly is an anomaly that repeats update while it is open.
type openAnomaly struct {
	a      schemas.Anomaly
	window time.Duration
}

// sequenceSymbol interns the call an event makes: tools and prompts by name, every other
// method alone (resource URIs and the like would make every call a new symbol).
func (d *Detector) sequenceSymbol(ev *schemas.Event) sequence.Symbol {
	switch ev.Method {
	case "tools/call", "prompts/get":
		return d.seqModel.Symbols().Intern(ev.Method, ev.Target)
	}
	return d.seqModel.Symbols().Intern(ev.Method, "")
}

// isRequest reports whether ev is an operation the agent initiated: what the statistical
// models count.
func isRequest(ev *schemas.Event) bool {
	return ev.Kind == schemas.KindRequest && ev.Direction == schemas.ClientToServer && ev.Method != ""
}

// PeerGroupLabel is the event label the enricher puts the agent's peer group in (from the
// inventory): a cold agent's request rate starts from its peer group's baseline.
const PeerGroupLabel = "agent.peer_group"

// agent returns an agent's state, creating it when new, from its peer group's rate prior when
// there is one, else the population's.
func (d *Detector) agent(name, group string, t int64) *agentState {
	if st := d.agents[name]; st != nil {
		if group != "" && group != st.group {
			st.group = strings.Clone(group)
		}
		st.evicting = false
		return st
	}
	st := &agentState{name: strings.Clone(name), group: strings.Clone(group), first: t, last: t}
	name = st.name
	if !d.cfg.Rate.Disabled {
		prior := d.prior
		if p := d.groupPriors[group]; p != nil {
			prior = p
		}
		st.rate = *d.rateParams.NewModel(prior)
	}
	if !d.cfg.Sequence.Disabled {
		st.seq = *d.seqModel.NewBaseline()
	}
	if !d.cfg.Size.Disabled {
		st.sizes = *d.sizeParams.New()
	}
	d.agents[name] = st
	d.agentList = append(d.agentList, st)
	return st
}

// learning reports whether st is still warming up at event time t.
func (d *Detector) learning(st *agentState, t int64) bool {
	w := d.cfg.WarmUp
	return (w.Events > 0 && st.events < int64(w.Events)) || (w.Duration > 0 && t-st.first < int64(w.Duration))
}

func (d *Detector) markDirty(st *agentState) {
	if !st.dirty {
		st.dirty = true
		d.dirtyAgents = append(d.dirtyAgents, st)
	}
}

// observeStats feeds a request to the rate and sequence models and appends what they raise.
func (d *Detector) observeStats(out []schemas.Anomaly, ev *schemas.Event, t int64, now time.Time) ([]schemas.Anomaly, *agentState) {
	if !isRequest(ev) || (d.cfg.Rate.Disabled && d.cfg.Sequence.Disabled && d.cfg.Size.Disabled) {
		return out, nil
	}
	st := d.agent(ev.AgentID, ev.Labels[PeerGroupLabel], t)
	st.events++
	st.last = max(st.last, t)
	d.markDirty(st)
	id, _ := uuid.Parse(ev.ID) // zero when not a UUID: evidence is then left out
	if !d.cfg.Rate.Disabled {
		first := st.bucketFirst
		if res, ok := st.rate.Add(time.Unix(0, t), 1); ok {
			out = d.raiseRate(out, st, res, first, st.lastRequest(), t, now)
			st.bucketFirst = uuid.Nil
		}
		if st.bucketFirst == uuid.Nil {
			st.bucketFirst = id
		}
	}
	sym := sequence.Other // the call, when the sequence model interns it
	if !d.cfg.Sequence.Disabled {
		var ls *liveSession
		out, ls = d.liveSession(out, st, ev.SessionID, ev.ServerID, t, now)
		ls.last, ls.lastID = max(ls.last, t), id
		sym = d.sequenceSymbol(ev)
		step := st.seq.Step(&ls.sess, sym, d.peer(st))
		out = d.raiseStep(out, st, ls, ev, id, step, t, now)
		ls.prev = sym
		if !d.cfg.Scan.Disabled {
			out = d.observeScan(out, st, ls, ev, id, step.NewCall, t, now)
		}
		if !d.cfg.Shape.Disabled {
			out = d.noteShape(out, st, ls, ev, id, t, now)
		}
	}
	if !d.cfg.Size.Disabled {
		out = d.observeSizes(out, st, ev, d.symbolSizeKey(ev, sym), id, t, now)
	}
	return out, st
}

// peer is the population baseline an agent's sequence estimates are smoothed toward, once
// other agents make up at least a third of it: the population includes the agent itself, and
// an agent alone in it would count its own evidence twice (and find its unseen steps far less
// likely than its history warrants).
func (d *Detector) peer(st *agentState) *sequence.Baseline {
	own := st.seq.Sessions()
	if 2*(d.population.Sessions()-own) < own {
		return nil
	}
	return d.population
}

// liveSession returns the agent's session in progress with id, starting it when new. A new
// session ends the agent's earlier ones with the same server (the client reconnected), and
// beyond maxLiveSessions the least recently used one; sessions with other servers go on.
func (d *Detector) liveSession(out []schemas.Anomaly, st *agentState, id, server string, t int64, now time.Time) ([]schemas.Anomaly, *liveSession) {
	for _, ls := range st.live {
		if ls.id == id {
			return out, ls
		}
	}
	for i := 0; i < len(st.live); {
		if ls := st.live[i]; ls.server == server {
			out = d.endSession(out, st, ls, t, now) // removes it from st.live
			continue
		}
		i++
	}
	if len(st.live) >= maxLiveSessions {
		lru := st.live[0]
		for _, ls := range st.live[1:] {
			if ls.last < lru.last {
				lru = ls
			}
		}
		out = d.endSession(out, st, lru, t, now)
	}
	// Decoded JSON strings are their own allocations: keeping id keeps nothing large alive.
	ls := d.newSession()
	ls.id, ls.server, ls.last, ls.start = id, server, t, t
	st.live = append(st.live, ls)
	return out, ls
}

// endSessions ends every session of st in progress.
func (d *Detector) endSessions(out []schemas.Anomaly, st *agentState, t int64, now time.Time) []schemas.Anomaly {
	for len(st.live) > 0 {
		out = d.endSession(out, st, st.live[0], t, now)
	}
	return out
}

func (d *Detector) newSession() *liveSession {
	if n := len(d.sessionPool); n > 0 {
		ls := d.sessionPool[n-1]
		d.sessionPool = d.sessionPool[:n-1]
		ls.sess.Reset()
		*ls = liveSession{sess: ls.sess, prev: sequence.Boundary}
		return ls
	}
	return &liveSession{sess: *d.seqModel.NewSession(), prev: sequence.Boundary}
}

// poolSession keeps an ended session for reuse, up to maxPooledSessions.
func (d *Detector) poolSession(ls *liveSession) {
	if len(d.sessionPool) < maxPooledSessions {
		d.sessionPool = append(d.sessionPool, ls)
	}
}

// endSession scores one of st's sessions as a whole, learns it into the agent's and the
// population's baselines and returns it to the pool.
func (d *Detector) endSession(out []schemas.Anomaly, st *agentState, ls *liveSession, t int64, now time.Time) []schemas.Anomaly {
	s := &ls.sess
	if s.Steps() > 0 {
		v := st.seq.End(s, d.peer(st))
		if score := v.Score(); score >= d.cfg.Sequence.MinScore && score > ls.max && beyondRange(v.Finding) {
			e := d.seqModel.Explain(v.Finding)
			e.Summary = fmt.Sprintf("Session of %d calls (%d new calls, %d new transitions, %d counts out of range); least likely: %s.",
				v.Steps, v.NewCalls, v.NewTransitions, v.OutOfRange, e.Summary)
			out = d.raise(out, schemas.Anomaly{
				AgentID:     st.name,
				SessionID:   ls.id,
				Kind:        KindUnusualSession,
				Subject:     ls.id,
				Score:       score,
				Title:       fmt.Sprintf("Agent %s had an unusual session (%s)", st.name, v.Finding.Name()),
				Explanation: e,
				FirstSeen:   time.Unix(0, t).UTC(),
				Learning:    d.learning(st, t),
			}, evidence(ls.lastID), now, d.cfg.MergeWindow)
		}
		if k := int(ls.enum + ls.probes); !d.cfg.Scan.Disabled && k >= d.cfg.Scan.MinCalls && !isDoubling(k, d.cfg.Scan.MinCalls) {
			out = d.raiseScan(out, st, ls, "", ls.lastID, t, now, true)
		}
		if !d.cfg.Shape.Disabled {
			out = d.endShape(out, st, ls, s.Steps(), t, now)
		}
		st.seq.Learn(s)
		d.population.Learn(s)
		st.learnScan(ls)
		d.populationDirty = true
	}
	st.live = slices.DeleteFunc(st.live, func(x *liveSession) bool { return x == ls })
	d.poolSession(ls)
	d.markDirty(st)
	return out
}

// shapeFactor is how far outside its learnt range a count or a session length must fall to
// be raised: the range of past sessions is a sample's, and one call beyond the most ever seen
// is the long tail of a random mix of calls, not an enumeration burst.
const shapeFactor = 2

// beyondRange reports whether a count or length finding is far enough outside its range;
// other findings pass.
func beyondRange(f sequence.Finding) bool {
	switch f.Kind {
	case sequence.KindCountAbove, sequence.KindLengthAbove:
		return f.Observed >= shapeFactor*max(f.Max, 1)
	case sequence.KindCountBelow, sequence.KindLengthBelow:
		// A call a session usually makes once or twice is often missing by chance.
		return f.Min >= 2*shapeFactor && f.Observed*shapeFactor <= f.Min
	}
	return true
}

func (d *Detector) raiseStep(out []schemas.Anomaly, st *agentState, ls *liveSession, ev *schemas.Event, id uuid.UUID, step sequence.Step, t int64, now time.Time) []schemas.Anomaly {
	f := step.Finding
	score := f.Score()
	if score < d.cfg.Sequence.MinScore {
		return out
	}
	if f.Kind == sequence.KindCall && f.Seen == 0 && ev.Method == "tools/call" {
		// first_seen_tool raises the call; the step into it is a first-seen transition too,
		// at least as unlikely (the model reports the first of equally unlikely findings).
		if !step.NewTransition {
			return out
		}
		f.Kind, f.From = sequence.KindTransition, ls.prev
	}
	if !beyondRange(f) {
		return out
	}
	syms := d.seqModel.Symbols()
	name := func(s sequence.Symbol, boundary string) string {
		if s == sequence.Boundary {
			return boundary
		}
		return syms.Name(s)
	}
	kind, subject := KindUnlikelyStep, f.Name()+" "+name(f.To, "session end")
	if f.Kind == sequence.KindTransition {
		subject = f.Name() + " " + name(f.From, "session start") + " → " + name(f.To, "session end")
		if f.Seen == 0 {
			kind, subject = KindNewTransition, name(f.From, "session start")+" → "+name(f.To, "session end")
		}
	}
	ls.max = max(ls.max, score)
	e := d.seqModel.Explain(f)
	return d.raise(out, schemas.Anomaly{
		AgentID:     st.name,
		SessionID:   ls.id,
		ServerID:    ev.ServerID,
		Kind:        kind,
		Subject:     subject,
		Score:       score,
		Title:       fmt.Sprintf("Agent %s: %s", st.name, e.Summary),
		Explanation: e,
		FirstSeen:   time.Unix(0, t).UTC(),
		Learning:    d.learning(st, t),
	}, evidence(id), now, d.cfg.MergeWindow)
}

// raiseRate turns a finished bucket's result into a rate_spike or rate_drop when it scores
// high enough. first and last are the bucket's first and last request ids.
func (d *Detector) raiseRate(out []schemas.Anomaly, st *agentState, res rate.Result, first, last uuid.UUID, t int64, now time.Time) []schemas.Anomaly {
	if res.Learning || res.Score < d.cfg.Rate.MinScore || res.Direction == rate.DirectionNone {
		return out
	}
	kind, title := KindRateSpike, "request rate spiked"
	if res.Direction == rate.DirectionDrop {
		kind, title = KindRateDrop, "request rate dropped"
		if res.Observed == 0 {
			title = "fell silent"
		}
	}
	ev := evidence(last) // a silence: the last request before it
	if res.Observed > 0 && first != uuid.Nil && first != last {
		ev = evidence(first, last)
	}
	e := d.rateParams.Explain(res)
	window := max(d.cfg.MergeWindow, d.cfg.Rate.Model.EpisodeGap)
	return d.raise(out, schemas.Anomaly{
		AgentID:     st.name,
		Kind:        kind,
		Score:       res.Score,
		Title:       fmt.Sprintf("Agent %s %s: %s; typical %s", st.name, title, e.Observed, e.Typical),
		Explanation: e,
		FirstSeen:   res.Time,
		Learning:    d.learning(st, t),
	}, ev, now, window)
}

func evidence(ids ...uuid.UUID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != uuid.Nil {
			out = append(out, id.String())
		}
	}
	return out
}

// suppressed reports whether config drops anomalies of kind for agent.
func (d *Detector) suppressed(agent, kind string) bool {
	for _, s := range d.cfg.Suppress {
		if (s.Agent == "" || s.Agent == agent) && (s.Kind == "" || s.Kind == kind) {
			return true
		}
	}
	return false
}

// raise completes a, then merges it into the open anomaly with the same agent, kind and
// subject when there is one within window: the repeat updates its count, last seen and
// evidence, and a new version is produced only when the score escalates, the anomaly stops
// being a learning one, or the count reaches a power of two (so a long episode yields a few
// updates, not one per repeat). Otherwise a is opened and produced; its id is stable for
// (agent, kind, subject, first seen), so a redelivery updates rather than duplicates it.
func (d *Detector) raise(out []schemas.Anomaly, a schemas.Anomaly, ev []string, now time.Time, window time.Duration) []schemas.Anomaly {
	return d.raiseOrUpdate(out, a, ev, now, window, false)
}

// raiseOrUpdate is raise; force produces the merged version whatever its count, for a final
// tally (a scan's count when its session ends).
func (d *Detector) raiseOrUpdate(out []schemas.Anomaly, a schemas.Anomaly, ev []string, now time.Time, window time.Duration, force bool) []schemas.Anomaly {
	if d.suppressed(a.AgentID, a.Kind) {
		return out
	}
	key := a.AgentID + "\x00" + a.Kind + "\x00" + a.Subject
	if o := d.open[key]; o != nil && !a.FirstSeen.After(o.a.LastSeen.Add(o.window)) {
		o.a.Count++
		if a.FirstSeen.After(o.a.LastSeen) {
			o.a.LastSeen = a.FirstSeen
		}
		o.a.EvidenceEventIDs = appendEvidence(o.a.EvidenceEventIDs, ev)
		o.a.Time = now
		emit := force || o.a.Count&(o.a.Count-1) == 0
		if a.Score >= o.a.Score {
			// At the same score, the newer explanation is the more current one.
			emit = emit || a.Score > o.a.Score
			o.a.Score, o.a.Severity, o.a.Title, o.a.Explanation = a.Score, schemas.SeverityForScore(a.Score), a.Title, a.Explanation
		}
		if o.a.Learning && !a.Learning {
			o.a.Learning = false
			emit = true
		}
		if !emit {
			return out
		}
		c := o.a
		c.EvidenceEventIDs = append([]string(nil), o.a.EvidenceEventIDs...)
		return append(out, c)
	}
	a.ID = AnomalyID(a.AgentID, a.Kind, a.Subject+"\x00"+a.FirstSeen.UTC().Format(time.RFC3339Nano))
	a.SchemaVersion = schemas.AnomalySchemaVersion
	a.Time = now
	a.Severity = schemas.SeverityForScore(a.Score)
	a.LastSeen = a.FirstSeen
	a.Count = 1
	a.EvidenceEventIDs = appendEvidence(nil, ev)
	d.open[key] = &openAnomaly{a: a, window: window}
	c := a
	c.EvidenceEventIDs = append([]string(nil), a.EvidenceEventIDs...)
	out = append(out, c)
	return d.noteCampaign(out, &a, ev, now)
}

func appendEvidence(have, add []string) []string {
	have = append(have, add...)
	if n := len(have); n > maxEvidence {
		have = append(have[:0], have[n-maxEvidence:]...)
	}
	return have
}

// advance moves the detector's event-time clock to t. On every new rate bucket it sweeps the
// agents: buckets of agents without requests are finished (silences are noticed), idle
// sessions are ended, closed anomalies are forgotten and the population prior is refreshed.
// A sweep costs O(agents), once per bucket of event time.
func (d *Detector) advance(out []schemas.Anomaly, t int64, now time.Time) []schemas.Anomaly {
	if t <= d.clock {
		return out
	}
	d.clock = t
	b := t / int64(d.cfg.Rate.Model.Bucket)
	if b <= d.sweptBucket {
		return out
	}
	first := d.sweptBucket == 0
	d.sweptBucket = b
	if first {
		return out
	}
	clock := time.Unix(0, t)
	idle := int64(d.cfg.Sequence.SessionIdle)
	evictAfter := int64(d.cfg.EvictAfter)
	for _, st := range d.agentList { // a slice: ranging over the map costs more than the models
		if !d.cfg.Rate.Disabled {
			// Not marked changed: the buckets a sweep finishes are the agent's silence, which
			// restoring its last snapshot replays (finishing the open bucket catches up the
			// empty ones since, up to a week). An agent is saved when it makes requests, not
			// every snapshot interval while it is quiet.
			if res, ok := st.rate.Advance(clock); ok {
				out = d.raiseRate(out, st, res, st.bucketFirst, st.lastRequest(), t, now)
				st.bucketFirst = uuid.Nil
			}
		}
		for i := 0; i < len(st.live); {
			if ls := st.live[i]; t-ls.last > idle {
				out = d.endSession(out, st, ls, t, now) // removes it from st.live
				continue
			}
			i++
		}
		if evictAfter > 0 && !st.evicting && len(st.live) == 0 && t-st.last > evictAfter && d.st != nil {
			st.evicting = true
			d.evictable = append(d.evictable, st)
			d.endFanOut(st) // its window is not saved: learn it before the snapshot
		}
	}
	for k, o := range d.open {
		if clock.Sub(o.a.LastSeen) > o.window {
			delete(d.open, k)
		}
	}
	d.expireCampaigns(clock)
	if !d.cfg.Rate.Disabled && t-d.priorAt >= int64(priorRefresh) {
		d.priorAt = t
		models := make([]*rate.Model, 0, min(len(d.agents), maxPriorAgents))
		groups := map[string][]*rate.Model{}
		for _, st := range d.agentList {
			if len(models) < maxPriorAgents {
				models = append(models, &st.rate)
			}
			if g := st.group; g != "" && len(groups[g]) < maxPriorAgents {
				groups[g] = append(groups[g], &st.rate)
			}
		}
		if p := d.rateParams.PriorFrom(models, d.cfg.Rate.PriorWeight); p != nil {
			d.prior = p
		}
		d.groupPriors = make(map[string]*rate.Prior, len(groups))
		for g, ms := range groups {
			if p := d.rateParams.PriorFrom(ms, d.cfg.Rate.PriorWeight); p != nil {
				d.groupPriors[g] = p
			}
		}
	}
	return out
}

// encodeAgent stores an agent's record.
func encodeAgent(st *agentState) []byte {
	b, err := json.Marshal(agentRecord{First: time.Unix(0, st.first).UTC(), Last: time.Unix(0, st.last).UTC(), Events: st.events,
		ScanMean: st.scanMean, ScanSessions: st.scanSessions, Group: st.group, Errors: st.errs, Calls: st.calls, Sessions: st.sessionsEnded})
	if err != nil {
		panic("BUG: cannot marshal warm-up state: " + err.Error())
	}
	return b
}

// statSnapshots returns the stored state of the agents whose statistical baselines changed,
// and of the population when it did. Callers hold d.mu.
func (d *Detector) statSnapshots(now time.Time) []store.Baseline {
	snaps := make([]store.Baseline, 0, len(d.dirty)+5*len(d.dirtyAgents)+1)
	for _, st := range d.dirtyAgents {
		if !d.cfg.Rate.Disabled {
			b, err := st.rate.MarshalBinary()
			if err != nil {
				panic("BUG: cannot marshal rate baseline: " + err.Error())
			}
			snaps = append(snaps, store.Baseline{Model: ModelRequestRate, Key: st.name, UpdatedAt: now, State: b})
		}
		if !d.cfg.Sequence.Disabled {
			b, err := st.seq.MarshalBinary()
			if err != nil {
				panic("BUG: cannot marshal sequence baseline: " + err.Error())
			}
			snaps = append(snaps, store.Baseline{Model: ModelToolSequence, Key: st.name, UpdatedAt: now, State: b})
		}
		if !d.cfg.Size.Disabled {
			b, err := st.sizes.MarshalBinary()
			if err != nil {
				panic("BUG: cannot marshal size baseline: " + err.Error())
			}
			snaps = append(snaps, store.Baseline{Model: ModelContextSize, Key: st.name, UpdatedAt: now, State: b})
		}
		if st.shape != nil {
			b := size.MarshalStats(shapeKeys[:], st.shape[:])
			snaps = append(snaps, store.Baseline{Model: ModelSessionShapeBaseline, Key: st.name, UpdatedAt: now, State: b})
		}
		snaps = append(snaps, store.Baseline{Model: ModelAgent, Key: st.name, UpdatedAt: now, State: encodeAgent(st)})
	}
	if d.populationDirty {
		b, err := d.population.MarshalBinary()
		if err != nil {
			panic("BUG: cannot marshal population baseline: " + err.Error())
		}
		snaps = append(snaps, store.Baseline{Model: ModelSequencePopulation, Key: populationKey, UpdatedAt: now, State: b})
	}
	return snaps
}

// restoreStats loads the statistical baselines from the store with loadAll (every agent's
// snapshots of a model, or a few agents'), those of agents whose record fresh accepts;
// unreadable ones are logged and learnt afresh (a snapshot taken under other model
// parameters, say). It returns the number of agents restored. Callers hold d.mu.
//
// With skipIdle, agents whose records show no request for EvictAfter before the latest
// record's request are left in the store, as the detector would have evicted them by then
// (event time: a replay of old traffic restores as a live stream does).
func (d *Detector) restoreStats(loadAll func(model string) ([]store.Baseline, error), fresh func(store.Baseline) bool, skipIdle bool) (int, error) {
	// Which agents to restore is decided once, on their agent records: the other models'
	// snapshots were saved in the same batch.
	restored := map[string]bool{}
	load := func(model string) ([]store.Baseline, error) {
		snaps, err := loadAll(model)
		if err != nil {
			return nil, fmt.Errorf("cannot restore detector baselines: %w", err)
		}
		if model == ModelAgent {
			return snaps, nil
		}
		return slices.DeleteFunc(snaps, func(s store.Baseline) bool { return !restored[s.Key] }), nil
	}
	warm, err := load(ModelAgent)
	if err != nil {
		return 0, err
	}
	records := make([]agentRecord, len(warm))
	var latest time.Time
	for i, s := range warm {
		if err := json.Unmarshal(s.State, &records[i]); err != nil {
			d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
			warm[i].Key = "" // skipped below
			continue
		}
		if records[i].Last.After(latest) {
			latest = records[i].Last
		}
	}
	n := 0
	for i, s := range warm {
		w := records[i]
		if s.Key == "" || !fresh(s) {
			continue
		}
		if skipIdle && d.cfg.EvictAfter > 0 && d.agents[s.Key] == nil && !w.Last.IsZero() && latest.Sub(w.Last) > d.cfg.EvictAfter {
			continue // restored when it comes back
		}
		restored[s.Key], n = true, n+1
		st := d.agent(s.Key, w.Group, w.First.UnixNano())
		// An agent this instance tracked before another took it over: its sessions in
		// progress here are stale, and its history is the other instance's.
		for _, ls := range st.live {
			d.poolSession(ls)
		}
		clear(st.live)
		st.live = st.live[:0]
		st.first = w.First.UnixNano()
		st.events = w.Events
		if finite(w.Errors) && finite(w.Calls) && w.Errors >= 0 && w.Calls >= w.Errors {
			st.errs, st.calls, st.sessionsEnded = w.Errors, w.Calls, w.Sessions
		}
		if finite(w.ScanMean) && w.ScanMean >= 0 && w.ScanSessions <= maxScanMemory {
			st.scanMean, st.scanSessions = w.ScanMean, w.ScanSessions
		}
		st.last = max(st.last, w.First.UnixNano(), w.Last.UnixNano())
	}
	if !d.cfg.Rate.Disabled {
		snaps, err := load(ModelRequestRate)
		if err != nil {
			return 0, err
		}
		for _, s := range snaps {
			st := d.agents[s.Key]
			if st == nil {
				continue
			}
			if err := st.rate.UnmarshalBinary(s.State); err != nil {
				d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
			}
		}
	}
	if !d.cfg.Size.Disabled {
		snaps, err := load(ModelContextSize)
		if err != nil {
			return 0, err
		}
		for _, s := range snaps {
			if st := d.agents[s.Key]; st != nil {
				if err := st.sizes.UnmarshalBinary(s.State); err != nil {
					d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
				}
			}
		}
	}
	if !d.cfg.Shape.Disabled {
		snaps, err := load(ModelSessionShapeBaseline)
		if err != nil {
			return 0, err
		}
		for _, s := range snaps {
			if st := d.agents[s.Key]; st != nil {
				sh := &shapeBaseline{}
				if err := d.shapeParams.UnmarshalStats(s.State, shapeKeys[:], sh[:]); err != nil {
					d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
					continue
				}
				st.shape = sh
			}
		}
	}
	if !d.cfg.Sequence.Disabled {
		snaps, err := load(ModelToolSequence)
		if err != nil {
			return 0, err
		}
		for _, s := range snaps {
			st := d.agents[s.Key]
			if st == nil {
				continue
			}
			if err := st.seq.UnmarshalBinary(s.State); err != nil {
				d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
			}
		}
	}
	return n, nil
}

func finite(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
