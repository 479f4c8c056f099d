package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/mcpwatch/mcpwatch/detector/rate"
	"github.com/mcpwatch/mcpwatch/detector/sequence"
	"github.com/mcpwatch/mcpwatch/detector/size"
	"github.com/mcpwatch/mcpwatch/internal/bus"
	"github.com/mcpwatch/mcpwatch/internal/config"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Config configures the detector.
type Config struct {
	// NewTool configures the first_seen_tool model.
	NewTool NewToolConfig `yaml:"new_tool"`
	// Rate configures the request_rate model (rate_spike, rate_drop).
	Rate RateConfig `yaml:"rate"`
	// Sequence configures the tool_sequence model (new_transition, unlikely_step,
	// unusual_session).
	Sequence SequenceConfig `yaml:"sequence"`
	// Size configures the context_size model (large_response, large_request).
	Size SizeConfig `yaml:"size"`
	// Campaign configures the correlation of anomalies across agents (campaign).
	Campaign CampaignConfig `yaml:"campaign"`
	// Scan configures the scan model (session shape: enumeration bursts, probing).
	Scan ScanConfig `yaml:"scan"`
	// Shape configures the rest of the session shape: duration, distinct tools, error ratio
	// (session_shape) and servers reached per window (server_fanout).
	Shape ShapeConfig `yaml:"shape"`
	// WarmUp is how long a new agent's statistical anomalies are marked learning.
	WarmUp WarmUpConfig `yaml:"warm_up"`
	// MergeWindow is how long, by event time, a repeat of an anomaly (same agent, kind and
	// subject) updates the open one instead of raising a new one (default 1h).
	MergeWindow time.Duration `yaml:"merge_window"`
	// Suppress drops matching anomalies, by agent and/or kind.
	Suppress []Suppression `yaml:"suppress"`
	// SnapshotInterval is how often changed baselines are saved to the store (default 30s);
	// they are also saved at shutdown.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// EvictAfter is how long, by event time, an agent may make no request before its
	// baselines leave memory (saved to the store first; default 168h, a week). They are
	// restored when it comes back, before its events are observed, so the detector's memory
	// follows the agents active lately, not every agent ever seen. Negative: never.
	EvictAfter time.Duration `yaml:"evict_after"`
}

// NewToolConfig configures the first_seen_tool model.
type NewToolConfig struct {
	// Disabled turns the model off.
	Disabled bool `yaml:"disabled"`
	// Score given to a first-seen tool, 0–100 (default 50: medium).
	Score float64 `yaml:"score"`
}

// SetDefaults fills zero values.
func (c *Config) SetDefaults() {
	if c.NewTool.Score == 0 {
		c.NewTool.Score = 50
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.EvictAfter == 0 {
		c.EvictAfter = 7 * 24 * time.Hour
	}
	c.Rate.setDefaults()
	c.Sequence.setDefaults()
	c.Scan.setDefaults()
	c.Shape.setDefaults()
	c.Size.setDefaults()
	c.Campaign.setDefaults()
	if c.WarmUp.Duration == 0 {
		c.WarmUp.Duration = 24 * time.Hour
	}
	if c.WarmUp.Events == 0 {
		c.WarmUp.Events = 100
	}
	if c.MergeWindow == 0 {
		c.MergeWindow = time.Hour
	}
}

// Validate names every invalid field.
func (c Config) Validate() error {
	var errs config.Errors
	if c.NewTool.Score < 0 || c.NewTool.Score > 100 {
		errs.Addf("detector.new_tool.score", "must be between 0 and 100, got %g", c.NewTool.Score)
	}
	if c.SnapshotInterval <= 0 {
		errs.Add("detector.snapshot_interval", "must be positive")
	}
	if c.EvictAfter > 0 && c.EvictAfter < c.Sequence.SessionIdle {
		errs.Addf("detector.evict_after", "must be negative (never) or at least detector.sequence.session_idle (%s), got %s", c.Sequence.SessionIdle, c.EvictAfter)
	}
	c.validateModels(&errs)
	return errs.Err()
}

// Group is the detector's consumer group.
const Group = "mcpwatch-detector"

// Detector is the detector role: mcp.events.enriched → models → mcp.anomalies.
type Detector struct {
	cfg      Config
	st       store.Store
	consumer *bus.Consumer
	producer *bus.Producer
	// stopSaver ends the goroutine that saves baselines while no batch arrives; saverDone
	// closes when it has.
	stopSaver, saverDone chan struct{}
	logger               *slog.Logger

	raised  *prometheus.CounterVec
	skipped prometheus.Counter
	// Agents evicted, and restored when they came back (EvictAfter).
	evictedAgents, restoredAgents prometheus.Counter
	// evictable are agents the sweep found idle for EvictAfter, evicted after the next
	// snapshot.
	evictable []*agentState

	// State is touched by the consumer's single handler goroutine and, after the consumer has
	// stopped, by Shutdown; mu makes that hand-over explicit.
	mu           sync.Mutex
	tools        map[string]*agentTools
	dirty        map[string]struct{}
	lastSnapshot time.Time
	now          func() time.Time
	// started is when the baselines were restored; partitions are when each partition of
	// mcp.events.enriched last brought a message (wall clock, recorded by observeBatch), to
	// notice a rebalance and partitions gone idle.
	started    time.Time
	partitions map[int]time.Time
	// partLatest is each partition's latest event time; watermarkCap is the watermark's limit
	// for the event in progress (0: none), from it.
	partLatest   map[int]int64
	watermarkCap int64
	capPartition int // the partition watermarkCap comes from (-1: none)

	// The statistical models (models.go).
	rateParams      *rate.Params
	sizeParams      *size.Params
	shapeParams     *size.Params // the session-shape model's
	seqModel        *sequence.Model
	population      *sequence.Baseline // every agent's sessions: the peer prior
	populationDirty bool
	prior           *rate.Prior            // the population's rate baseline, for cold agents
	groupPriors     map[string]*rate.Prior // each peer group's, preferred when there is one
	priorAt         int64                  // event time the prior was built
	agents          map[string]*agentState
	agentList       []*agentState // the same agents, in a slice for the sweeps
	dirtyAgents     []*agentState
	sessionPool     []*liveSession // ended sessions, reused: starting a session allocates nothing
	symbolKeys      []size.Key     // each sequence symbol's context-size key (0: not hashed yet)
	open            map[string]*openAnomaly
	campaigns       map[string]*campaign
	clock           int64 // event-time watermark (Unix ns)
	sweptBucket     int64
	// unsent is the last batch observed whose anomalies could not be produced: its retry
	// sends them without observing it again; another batch takes them along.
	unsent *unsentBatch
}

// New returns a detector reading and writing the bus at brokers and keeping baselines in st.
func New(cfg Config, st store.Store, brokers []string, busCfg bus.Config, set pipeline.Settings) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithComponent("detector")
	rp, err := rate.NewParams(cfg.Rate.Model)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector: %w", err)
	}
	sm, err := sequence.New(cfg.Sequence.Model, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector: %w", err)
	}
	zp, err := size.NewParams(cfg.Size.Model)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector: %w", err)
	}
	hp, err := shapeParams(cfg.Shape)
	if err != nil {
		return nil, fmt.Errorf("cannot create detector: %w", err)
	}
	d := &Detector{
		sizeParams:  zp,
		shapeParams: hp,
		rateParams:  rp,
		seqModel:    sm,
		population:  sm.NewPeerBaseline(),
		agents:      map[string]*agentState{},
		open:        map[string]*openAnomaly{},
		campaigns:   map[string]*campaign{},
		cfg:         cfg,
		st:          st,
		producer:    bus.NewProducer(brokers, bus.TopicAnomalies, busCfg),
		logger:      set.Logger,
		raised: pipeline.Register(set.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_detector_anomalies_total", Help: "Anomalies raised, by kind.",
		}, []string{"kind"})),
		skipped: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_detector_undecodable_total", Help: "Messages the detector could not decode and skipped.",
		})),
		evictedAgents: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_detector_agents_evicted_total", Help: "Agents whose baselines left memory after detector.evict_after without a request.",
		})),
		restoredAgents: pipeline.Register(set.Registry, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpwatch_detector_agents_restored_total", Help: "Agents whose baselines were loaded from the store when they came back.",
		})),
		tools:      map[string]*agentTools{},
		dirty:      map[string]struct{}{},
		partitions: map[int]time.Time{},
		partLatest: map[int]int64{},
		now:        time.Now,
	}
	d.consumer = bus.NewConsumer(brokers, busCfg, bus.ConsumerConfig{Group: Group, Topics: []string{bus.TopicEventsEnriched}}, d.handle, set)
	return d, nil
}

// Start restores baselines from the store and begins consuming.
func (d *Detector) Start(ctx context.Context) error {
	if err := d.restore(ctx); err != nil {
		return err
	}
	if err := d.consumer.Start(ctx); err != nil {
		return err
	}
	d.stopSaver, d.saverDone = make(chan struct{}), make(chan struct{})
	go d.saveWhileIdle(d.stopSaver, d.saverDone)
	return nil
}

// saveWhileIdle saves changed baselines every snapshot interval even when no batch arrives
// (the handler saves them otherwise), so what a burst taught is in the store — for the API's
// profiles and another instance taking the partition over — without waiting for more traffic.
func (d *Detector) saveWhileIdle(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(d.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		if d.now().Sub(d.lastSnapshot) >= d.cfg.SnapshotInterval {
			ctx, cancel := context.WithTimeout(context.Background(), d.cfg.SnapshotInterval)
			if err := d.snapshot(ctx); err != nil {
				d.logger.Warn("cannot save baselines; will retry", "err", err)
			}
			cancel()
		}
		d.mu.Unlock()
	}
}

// restore loads every model's baselines from the store.
func (d *Detector) restore(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, m, err := d.restoreSince(ctx, time.Time{})
	if err != nil {
		return err
	}
	d.lastSnapshot = d.now()
	d.started = d.lastSnapshot
	d.logger.Info("baselines restored", "agents", n, "statistical_agents", m)
	return nil
}

// restoreSince loads the baselines saved after since, except those of agents with changes
// not saved yet here (what this instance learnt last wins). It returns how many agents'
// first-seen tools and statistical baselines it restored. Callers hold d.mu.
//
// Agents idle for EvictAfter by their records are left in the store: they are restored when
// they come back (restoreReturning).
func (d *Detector) restoreSince(ctx context.Context, since time.Time) (int, int, error) {
	fresh := func(s store.Baseline) bool {
		if !s.UpdatedAt.After(since) {
			return false
		}
		_, unsaved := d.dirty[s.Key]
		st := d.agents[s.Key]
		return !unsaved && (st == nil || !st.dirty)
	}
	load := func(model string) ([]store.Baseline, error) { return d.st.LoadBaselines(ctx, model) }
	m, err := d.restoreStats(load, fresh, true)
	if err != nil {
		return 0, m, err
	}
	if !d.cfg.Sequence.Disabled {
		pop, err := d.st.LoadBaselinesOf(ctx, ModelSequencePopulation, []string{populationKey})
		if err != nil {
			return 0, m, fmt.Errorf("cannot restore detector baselines: %w", err)
		}
		for _, s := range pop {
			if fresh(s) {
				if err := d.population.UnmarshalBinary(s.State); err != nil {
					d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "err", err)
				}
			}
		}
	}
	// First-seen tools: every agent's when no statistical model keeps agents (nothing is
	// evicted then), else those of the agents in memory.
	keepAll := d.cfg.Rate.Disabled && d.cfg.Sequence.Disabled && d.cfg.Size.Disabled
	n, err := d.restoreTools(load, func(s store.Baseline) bool { return fresh(s) && (keepAll || d.agents[s.Key] != nil) })
	return n, m, err
}

// restoreTools restores the first-seen tools loadAll brings that keep accepts, and returns
// how many agents' it restored. Callers hold d.mu.
func (d *Detector) restoreTools(loadAll func(model string) ([]store.Baseline, error), keep func(store.Baseline) bool) (int, error) {
	snaps, err := loadAll(ModelFirstSeenTool)
	if err != nil {
		return 0, fmt.Errorf("cannot restore detector baselines: %w", err)
	}
	n := 0
	for _, s := range snaps {
		if !keep(s) {
			continue
		}
		a := &agentTools{}
		if err := json.Unmarshal(s.State, a); err != nil {
			d.logger.Warn("ignoring unreadable baseline", "model", s.Model, "agent", s.Key, "err", err)
			continue
		}
		if st := d.agents[s.Key]; st != nil {
			st.tools = a
		} else {
			d.tools[s.Key] = a
		}
		n++
	}
	return n, nil
}

// restoreReturning restores, before evs are observed, the baselines of the agents among their
// requests' that are not in memory: evicted ones coming back, or ones another instance
// tracked. A new agent costs one lookup per model, once. Callers hold d.mu.
func (d *Detector) restoreReturning(ctx context.Context, evs []schemas.Event) error {
	if d.st == nil || d.cfg.EvictAfter < 0 || (d.cfg.Rate.Disabled && d.cfg.Sequence.Disabled && d.cfg.Size.Disabled) {
		return nil
	}
	var names []string
	for i := range evs {
		if ev := &evs[i]; isRequest(ev) && d.agents[ev.AgentID] == nil && !slices.Contains(names, ev.AgentID) {
			names = append(names, ev.AgentID)
		}
	}
	for len(names) > 0 {
		chunk := names[:min(len(names), store.MaxBaselineKeys)]
		names = names[len(chunk):]
		load := func(model string) ([]store.Baseline, error) { return d.st.LoadBaselinesOf(ctx, model, chunk) }
		m, err := d.restoreStats(load, func(store.Baseline) bool { return true }, false)
		if err != nil {
			return err
		}
		if _, err := d.restoreTools(load, func(s store.Baseline) bool { return d.toolsOf(s.Key, nil, false) == nil }); err != nil {
			return err
		}
		d.restoredAgents.Add(float64(m))
	}
	return nil
}

// followRebalance restores, before msgs are observed, the baselines another instance saved
// while it owned the agents of a partition this instance now reads again. kafka-go hides the
// group's assignments, so a partition counts as (re)acquired when it brings a message after
// a silence longer than the snapshot interval (or first does, that long after start); its
// previous owner saved the agents' baselines at least that often. Only snapshots newer than
// this instance's own last one are restored, so an idle partition that never moved costs one
// read of the baselines and changes nothing. Callers hold d.mu.
func (d *Detector) followRebalance(ctx context.Context, msgs []kafka.Message) error {
	wall := d.now()
	acquired := false
	for _, m := range msgs {
		last, ok := d.partitions[m.Partition]
		if ok {
			acquired = acquired || wall.Sub(last) > d.cfg.SnapshotInterval
		} else {
			acquired = acquired || wall.Sub(d.started) > d.cfg.SnapshotInterval
		}
	}
	if !acquired {
		return nil
	}
	n, m, err := d.restoreSince(ctx, d.lastSnapshot)
	if err != nil {
		return err
	}
	if n+m > 0 {
		d.logger.Info("baselines restored after a partition was (re)assigned", "agents", n, "statistical_agents", m)
	}
	return nil
}

// Shutdown stops consuming and saves the baselines.
func (d *Detector) Shutdown(ctx context.Context) error {
	err := d.consumer.Shutdown(ctx)
	if d.stopSaver != nil {
		close(d.stopSaver)
		<-d.saverDone
		d.stopSaver = nil
	}
	d.mu.Lock()
	serr := d.snapshot(ctx)
	d.mu.Unlock()
	if err == nil {
		err = serr
	}
	if perr := d.producer.Close(); err == nil {
		err = perr
	}
	return err
}

func (d *Detector) handle(ctx context.Context, msgs []kafka.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var (
		out    []kafka.Message
		raised []schemas.Anomaly
		u      = d.unsent
	)
	if u != nil {
		out, raised = u.out, u.raised
	}
	now := d.now().UTC()
	if u == nil || !u.sameBatch(msgs) {
		// A new batch (with, after a rebalance, another batch's unsent anomalies).
		as, err := d.observeMessages(ctx, msgs, now)
		if err != nil {
			return err
		}
		for _, a := range as {
			out = append(out, anomalyMessage(a))
			raised = append(raised, a)
		}
	}
	if err := d.producer.Produce(ctx, out...); err != nil {
		// The consumer offers the batch again: its retry sends what this one raised,
		// without observing it a second time (the models would count it twice).
		d.unsent = &unsentBatch{n: len(msgs), out: out, raised: raised}
		if len(msgs) > 0 {
			d.unsent.first, d.unsent.last = msgs[0], msgs[len(msgs)-1]
		}
		return err
	}
	d.unsent = nil
	for _, a := range raised {
		d.raised.WithLabelValues(a.Kind).Inc()
	}
	if now.Sub(d.lastSnapshot) >= d.cfg.SnapshotInterval || d.evictionDue() {
		if err := d.snapshot(ctx); err != nil {
			d.logger.Warn("cannot save baselines; will retry", "err", err)
		} else {
			d.evict()
		}
	}
	return nil
}

// observeMessages observes a batch from the bus: it first restores the baselines of agents
// that come back (from another instance after a rebalance, or from eviction). Callers hold
// d.mu.
func (d *Detector) observeMessages(ctx context.Context, msgs []kafka.Message, now time.Time) ([]schemas.Anomaly, error) {
	if err := d.followRebalance(ctx, msgs); err != nil {
		return nil, err
	}
	evs, parts := d.decodeBatch(msgs, now)
	if err := d.restoreReturning(ctx, evs); err != nil {
		return nil, err
	}
	return d.observeEvents(evs, parts, now), nil
}

// evictionDue reports whether an agent awaits eviction (and so a snapshot, first).
func (d *Detector) evictionDue() bool {
	for _, st := range d.evictable {
		if st.evicting {
			return true
		}
	}
	d.evictable = d.evictable[:0] // they all came back
	return false
}

// evict drops from memory the agents the sweep found idle for EvictAfter, their baselines
// just saved (snapshot), unless they came back since. Callers hold d.mu.
func (d *Detector) evict() {
	if len(d.evictable) == 0 {
		return
	}
	n, waiting := 0, d.evictable[:0]
	for _, st := range d.evictable {
		switch {
		case !st.evicting: // it came back
			continue
		case st.dirty: // changed since the snapshot: after the next one
			waiting = append(waiting, st)
			continue
		}
		st.evicted = true
		delete(d.agents, st.name)
		for _, ls := range st.live {
			d.poolSession(ls)
		}
		st.rate.Release()
		n++
	}
	d.evictable = waiting
	if n > 0 {
		d.agentList = slices.DeleteFunc(d.agentList, func(st *agentState) bool { return st.evicted })
		d.evictedAgents.Add(float64(n))
	}
}

// unsentBatch is a batch the detector observed but whose anomalies it could not produce.
type unsentBatch struct {
	first, last kafka.Message
	n           int
	out         []kafka.Message   // the anomalies, as messages
	raised      []schemas.Anomaly // the same, for the metrics
}

// sameBatch reports whether msgs is the batch again (the consumer's retry).
func (u *unsentBatch) sameBatch(msgs []kafka.Message) bool {
	same := func(a, b kafka.Message) bool {
		return a.Topic == b.Topic && a.Partition == b.Partition && a.Offset == b.Offset && bytes.Equal(a.Value, b.Value)
	}
	return len(msgs) == u.n && len(msgs) > 0 && same(msgs[0], u.first) && same(msgs[len(msgs)-1], u.last)
}

// maxClockSkew is how far ahead of the detector's clock an event's time may be.
const maxClockSkew = 10 * time.Minute

func anomalyMessage(a schemas.Anomaly) kafka.Message {
	v, err := json.Marshal(a)
	if err != nil {
		panic("BUG: cannot marshal anomaly: " + err.Error())
	}
	return kafka.Message{Key: []byte(a.AgentID), Value: v}
}

// partitionIdle is how long (wall clock) a partition may bring nothing before the watermark
// stops waiting for it: its agents are then silent, not late.
const partitionIdle = 30 * time.Second

// decodeBatch decodes a batch's events (skipping what it cannot) and notes which partition
// each came from. Callers hold d.mu.
func (d *Detector) decodeBatch(msgs []kafka.Message, now time.Time) (evs []schemas.Event, parts []int) {
	evs = make([]schemas.Event, 0, len(msgs))
	parts = make([]int, 0, len(msgs))
	for _, m := range msgs {
		var ev schemas.Event
		if err := schemas.DecodeEvent(m.Value, &ev); err != nil {
			d.skipped.Inc()
			d.logger.Warn("skipping undecodable event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		if _, ok := d.partLatest[m.Partition]; !ok || now.Sub(d.partitions[m.Partition]) > partitionIdle {
			// A partition (re)joining holds the watermark from its first event on.
			d.partLatest[m.Partition] = eventTime(&ev, now)
		}
		d.partitions[m.Partition] = now
		evs = append(evs, ev)
		parts = append(parts, m.Partition)
	}
	return evs, parts
}

// observeEvents observes decoded events and returns the anomalies they raise. The event-time
// watermark may not pass the latest event of any partition still delivering: after a backlog
// (a restart, an outage), partitions are read at different paces, and a watermark set by the
// fastest would sweep the other partitions' agents into silence and lump their late events
// into one bucket — a drop, then a spike, that never happened. Callers hold d.mu.
func (d *Detector) observeEvents(evs []schemas.Event, parts []int, now time.Time) []schemas.Anomaly {
	d.capWatermark(now)
	var out []schemas.Anomaly
	for i := range evs {
		p := parts[i]
		if t := eventTime(&evs[i], now); t > d.partLatest[p] {
			d.partLatest[p] = t
			if p == d.capPartition {
				d.capWatermark(now) // the slowest partition moved on
			}
		}
		out = append(out, d.Observe(&evs[i], now)...)
	}
	return out
}

// capWatermark sets watermarkCap to the latest event time of the slowest partition still
// delivering, and capPartition to that partition.
func (d *Detector) capWatermark(now time.Time) {
	d.watermarkCap, d.capPartition = 0, -1
	for p, t := range d.partLatest {
		if now.Sub(d.partitions[p]) > partitionIdle {
			continue
		}
		if d.capPartition < 0 || t < d.watermarkCap {
			d.watermarkCap, d.capPartition = t, p
		}
	}
}

// eventTime is the event's time (ObservedAt; now when unset), clamped to maxClockSkew ahead
// of now: an event stamped in the future (a collector's clock gone wrong) would move the
// watermark there and make every agent fall silent at once.
func eventTime(ev *schemas.Event, now time.Time) int64 {
	if ev.ObservedAt.IsZero() {
		return now.UnixNano()
	}
	return min(ev.ObservedAt.UnixNano(), now.Add(maxClockSkew).UnixNano())
}

// Observe updates the agent's baselines with ev and returns the anomalies it raises. Time is
// the event's (ObservedAt; now when unset), so a replay scores as the live stream did; now
// stamps the anomalies. Callers hold d.mu (the handler does).
func (d *Detector) Observe(ev *schemas.Event, now time.Time) []schemas.Anomaly {
	t := eventTime(ev, now)
	var out []schemas.Anomaly
	if w := d.watermarkCap; w != 0 && w < t {
		out = d.advance(out, w, now)
	} else {
		out = d.advance(out, t, now)
	}
	var st *agentState
	out, st = d.observeStats(out, ev, t, now)
	if an, ok := d.observeNewTool(ev, st, now); ok {
		out = append(out, an)
		// A new tool counts toward a campaign once the agent is past its warm-up: agents
		// starting out all call tools new to them.
		if st != nil && !d.learning(st, t) {
			out = d.noteCampaign(out, &an, an.EvidenceEventIDs, now)
		}
	}
	tagAnomalies(out, ev)
	return out
}

// tagAnomalies gives the anomalies raised for ev's agent without tags the event's tags.
// Anomalies raised later by the sweeps (silences) carry none.
func tagAnomalies(out []schemas.Anomaly, ev *schemas.Event) {
	var tags []string
	for i := range out {
		if a := &out[i]; a.AgentID == ev.AgentID && a.Tags == nil {
			if tags == nil {
				if tags = schemas.TagsOf(ev); tags == nil {
					return
				}
			}
			a.Tags = tags
		}
	}
}

// observeNewTool runs first_seen_tool; st is the agent's state when the statistical models
// saw the event (nil otherwise), which caches the agent's tools.
func (d *Detector) observeNewTool(ev *schemas.Event, st *agentState, now time.Time) (schemas.Anomaly, bool) {
	if d.cfg.NewTool.Disabled {
		return schemas.Anomaly{}, false
	}
	a := d.toolsOf(ev.AgentID, st, true)
	an, ok := observeTool(a, ev, d.cfg.NewTool.Score, now)
	if !ok {
		return an, false
	}
	if st != nil {
		st.toolsDirty = true
		d.markDirty(st)
	} else {
		d.dirty[ev.AgentID] = struct{}{}
	}
	return an, !d.suppressed(an.AgentID, an.Kind)
}

// toolsOf returns an agent's first_seen_tool baseline, made empty when it has none and create
// is set (else nil). An agent with statistical state (st, or found by name when st is nil)
// keeps it there; d.tools and d.dirty keep those of agents without (the statistical models
// off, or restored before the agent's first request here).
func (d *Detector) toolsOf(name string, st *agentState, create bool) *agentTools {
	if st == nil {
		st = d.agents[name]
	}
	if st == nil {
		a := d.tools[name]
		if a == nil && create {
			a = &agentTools{}
			d.tools[name] = a
		}
		return a
	}
	if st.tools == nil {
		if a := d.tools[name]; a != nil {
			st.tools = a
			delete(d.tools, name)
			if _, unsaved := d.dirty[name]; unsaved {
				delete(d.dirty, name)
				st.toolsDirty = true
				d.markDirty(st)
			}
		} else if create {
			st.tools = &agentTools{}
		}
	}
	return st.tools
}

// snapshot saves the baselines of agents that changed. Callers hold d.mu.
func (d *Detector) snapshot(ctx context.Context) error {
	if len(d.dirty) == 0 && len(d.dirtyAgents) == 0 && !d.populationDirty {
		return nil
	}
	now := d.now().UTC()
	snaps := d.statSnapshots(now)
	toolsSnapshot := func(agent string, a *agentTools) {
		state, err := json.Marshal(a)
		if err != nil {
			panic("BUG: cannot marshal baseline: " + err.Error())
		}
		snaps = append(snaps, store.Baseline{Model: ModelFirstSeenTool, Key: agent, UpdatedAt: now, State: state})
	}
	for agent := range d.dirty {
		toolsSnapshot(agent, d.tools[agent])
	}
	for _, st := range d.dirtyAgents {
		if st.toolsDirty {
			toolsSnapshot(st.name, st.tools)
		}
	}
	if err := d.st.SaveBaselines(ctx, snaps); err != nil {
		return fmt.Errorf("cannot save %d baselines: %w", len(snaps), err)
	}
	clear(d.dirty)
	for _, st := range d.dirtyAgents {
		st.dirty, st.toolsDirty = false, false
	}
	d.dirtyAgents = d.dirtyAgents[:0]
	d.populationDirty = false
	d.lastSnapshot = now
	return nil
}
