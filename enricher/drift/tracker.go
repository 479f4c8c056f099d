package drift

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Change is what happened to a definition.
type Change string

const (
	Added   Change = "added"
	Removed Change = "removed"
	Changed Change = "changed"
)

// Finding is a drift or shadowing finding of one list result.
type Finding struct {
	// Shadowing is true for a tool offered by two servers the agent uses; the other fields
	// then describe the tool (Name) and Servers.
	Shadowing bool
	// The event that showed it.
	AgentID, SessionID, EventID string
	At                          time.Time
	ServerID                    string
	// DefKind is tool, prompt, resource or resource_template; Name the definition's name.
	DefKind, Name string
	Change        Change
	// Announced says the server sent a list_changed notification for this kind since its
	// previous complete list.
	Announced bool
	Severity  schemas.Severity
	// Diff says what changed, one change per line (Changed only).
	Diff []string
	// Flags are inspection findings (severity high or above) in the new version's descriptions
	// and titles that the old version did not have.
	Flags []schemas.Flag
	// Old and New are the versions' fingerprints ("" for none) and when each was first seen.
	OldFingerprint, NewFingerprint string
	OldFirstSeen                   time.Time
	// Servers are the servers offering the tool, sorted (Shadowing only).
	Servers []string
}

// Inspector finds flags in the text s found at path (the content inspector's Text method).
type Inspector func(path, s string, dst []schemas.Flag) []schemas.Flag

// Store is the part of the store the tracker needs.
type Store interface {
	SaveDefinitions(ctx context.Context, defs []store.Definition) error
	Definitions(ctx context.Context, q store.DefinitionQuery) ([]store.Definition, error)
}

const (
	// touchInterval: an unchanged definition's LastSeen is saved again at most this often.
	touchInterval = time.Minute
	// chainTTL: a paginated listing whose next page does not come within this time is
	// abandoned (its pages still count, it just cannot show removals).
	chainTTL = 10 * time.Minute
	// maxChains bounds the paginated listings followed at once.
	maxChains = 10000
)

// Tracker keeps every server's current definitions and turns list results into findings.
// It is safe for concurrent use.
type Tracker struct {
	inspect Inspector
	logger  *slog.Logger
	lists   *prometheus.CounterVec

	mu      sync.Mutex
	servers map[string]*server
	agents  map[string]*agentState
	chains  map[chainKey]*chain
	parsed  map[[2]string]parsedList // the last list result per server and method
	pending []store.Definition
}

type parsedList struct {
	sum  [sha256.Size]byte
	list List // read only: shared by every result with the same text
}

type server struct {
	kinds map[string]*kindState
}

type kindState struct {
	defs map[string]*version
	// complete: a complete listing (or restored history) has been seen, so a name not known
	// is an addition rather than a baseline item of a listing seen page by page.
	complete bool
	// announced: a list_changed notification arrived since the last complete listing.
	announced bool
	// last is the time of the latest list result applied; older ones are stale.
	last time.Time
}

type version struct {
	fingerprint, canonical string
	firstSeen, saved       time.Time // saved: the LastSeen last written to the store
}

type agentState struct {
	servers []string        // servers whose tools the agent listed
	raised  map[string]bool // shadowing findings made: tool + servers
}

type chainKey struct{ server, kind, agent, session string }

type chain struct {
	next  string
	names []string
	at    time.Time
}

// New returns an empty tracker logging and counting with set (the enricher's). inspect may be
// nil (no description flags then).
func New(inspect Inspector, set pipeline.Settings) *Tracker {
	logger, reg := set.Logger, set.Registry
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Tracker{
		inspect: inspect,
		logger:  logger,
		lists: pipeline.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpwatch_enricher_definition_lists_total",
			Help: "List results (tools/list, prompts/list, resources/list, resources/templates/list) by outcome: applied; truncated (cut at collector.definitions_max_bytes, not compared); no_content; invalid; stale (older than one applied).",
		}, []string{"outcome"})),
		servers: make(map[string]*server),
		agents:  make(map[string]*agentState),
		chains:  make(map[chainKey]*chain),
		parsed:  make(map[[2]string]parsedList),
	}
}

// Observe applies one event: a list result is compared with the server's current
// definitions, a list_changed notification is remembered. It returns the findings, in a
// stable order.
func (t *Tracker) Observe(ev *schemas.Event) []Finding {
	if ev.Kind == schemas.KindNotification {
		if kinds, ok := changedKinds[ev.Method]; ok && ev.Direction == schemas.ServerToClient {
			t.announce(ev.ServerID, kinds)
		}
		return nil
	}
	if ev.Kind != schemas.KindRequest || ev.Status != schemas.StatusOK || ev.Direction != schemas.ClientToServer || !IsListMethod(ev.Method) {
		return nil
	}
	switch {
	case ev.Content == nil || ev.Content.Result == "":
		t.lists.WithLabelValues("no_content").Inc()
		return nil
	case ev.Content.Truncated:
		// A cut list cannot be compared: never guess.
		t.lists.WithLabelValues("truncated").Inc()
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l, err := t.parse(ev.ServerID, ev.Method, ev.Content.Result)
	if err != nil {
		t.lists.WithLabelValues("invalid").Inc()
		t.logger.Debug("skipping list result", "server", ev.ServerID, "method", ev.Method, "err", err)
		return nil
	}
	findings, ok := t.apply(ev, l, cursorOf(ev.Content.Arguments))
	if !ok {
		t.lists.WithLabelValues("stale").Inc()
		return nil
	}
	t.lists.WithLabelValues("applied").Inc()
	return findings
}

// parse parses a list result, or returns the server's previous result of the same method
// when the text is the same (agents list the same tools again and again; parsing and
// canonicalising them each time would be the tracker's main cost). Call with mu held.
func (t *Tracker) parse(serverID, method, result string) (List, error) {
	sum := sha256.Sum256([]byte(result))
	key := [2]string{serverID, method}
	if c, ok := t.parsed[key]; ok && c.sum == sum {
		return c.list, nil
	}
	l, err := ParseList(method, []byte(result))
	if err != nil {
		return List{}, err
	}
	t.parsed[key] = parsedList{sum: sum, list: l}
	return l, nil
}

func (t *Tracker) announce(serverID string, kinds []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.server(serverID)
	for _, k := range kinds {
		ks := s.kinds[k]
		if ks == nil {
			ks = &kindState{defs: make(map[string]*version)}
			s.kinds[k] = ks
		}
		ks.announced = true
	}
}

func (t *Tracker) server(id string) *server {
	s := t.servers[id]
	if s == nil {
		s = &server{kinds: make(map[string]*kindState)}
		t.servers[id] = s
	}
	return s
}

// apply compares list result l (a page when cursor or l.NextCursor is set) with the current
// definitions. It returns false for a stale result. Call with mu held.
func (t *Tracker) apply(ev *schemas.Event, l List, cursor string) ([]Finding, bool) {
	at := ev.ObservedAt.UTC().Truncate(time.Microsecond)
	s := t.server(ev.ServerID)
	ks := s.kinds[l.Kind]
	baseline := ks == nil || len(ks.defs) == 0 && !ks.complete
	if ks == nil {
		ks = &kindState{defs: make(map[string]*version)}
		s.kinds[l.Kind] = ks
	}
	if at.Before(ks.last) {
		return nil, false
	}
	ks.last = at

	names := make([]string, len(l.Items))
	for i, it := range l.Items {
		names[i] = it.Name
	}
	complete, listed := t.follow(chainKey{ev.ServerID, l.Kind, ev.AgentID, ev.SessionID}, cursor, l.NextCursor, names, at)

	base := Finding{AgentID: ev.AgentID, SessionID: ev.SessionID, EventID: ev.ID, At: at, ServerID: ev.ServerID, DefKind: l.Kind, Announced: ks.announced}
	var findings []Finding
	for _, it := range l.Items {
		v := ks.defs[it.Name]
		switch {
		case v == nil:
			ks.defs[it.Name] = &version{fingerprint: it.Fingerprint, canonical: it.Canonical, firstSeen: at, saved: at}
			t.save(ev.ServerID, l.Kind, it.Name, it.Fingerprint, it.Canonical, at, at)
			if baseline || !ks.complete {
				continue // first sighting: the baseline
			}
			f := base
			f.Name, f.Change, f.NewFingerprint = it.Name, Added, it.Fingerprint
			f.Flags = t.newFlags("", it.Canonical)
			findings = append(findings, f)
		case v.fingerprint == it.Fingerprint:
			if at.Sub(v.saved) >= touchInterval {
				v.saved = at
				t.save(ev.ServerID, l.Kind, it.Name, it.Fingerprint, it.Canonical, v.firstSeen, at)
			}
		default:
			f := base
			f.Name, f.Change = it.Name, Changed
			f.OldFingerprint, f.NewFingerprint, f.OldFirstSeen = v.fingerprint, it.Fingerprint, v.firstSeen
			f.Diff = Diff(v.canonical, it.Canonical)
			f.Flags = t.newFlags(v.canonical, it.Canonical)
			findings = append(findings, f)
			ks.defs[it.Name] = &version{fingerprint: it.Fingerprint, canonical: it.Canonical, firstSeen: at, saved: at}
			t.save(ev.ServerID, l.Kind, it.Name, it.Fingerprint, it.Canonical, at, at)
		}
	}
	if complete {
		// Only a complete listing shows what is gone.
		var gone []string
		for name := range ks.defs {
			if !slices.Contains(listed, name) {
				gone = append(gone, name)
			}
		}
		sort.Strings(gone)
		for _, name := range gone {
			v := ks.defs[name]
			delete(ks.defs, name)
			t.save(ev.ServerID, l.Kind, name, "", "", at, at)
			f := base
			f.Name, f.Change = name, Removed
			f.OldFingerprint, f.OldFirstSeen = v.fingerprint, v.firstSeen
			findings = append(findings, f)
		}
		ks.complete = true
		ks.announced = false
	}
	for i := range findings {
		findings[i].Severity = severity(findings[i])
	}
	if l.Kind == KindTool {
		findings = append(findings, t.shadowing(ev, at)...)
	}
	return findings, true
}

// follow tracks paginated listings per agent session. It returns whether this result
// completes a listing, and then every name the listing showed.
func (t *Tracker) follow(key chainKey, cursor, next string, names []string, at time.Time) (bool, []string) {
	if cursor == "" && next == "" {
		delete(t.chains, key)
		return true, names
	}
	c := t.chains[key]
	switch {
	case cursor == "":
		c = &chain{names: slices.Clone(names)}
		if len(t.chains) >= maxChains {
			t.expireChains(at)
		}
		if len(t.chains) >= maxChains {
			return false, nil // too many listings in flight: this one cannot show removals
		}
		t.chains[key] = c
	case c != nil && c.next == cursor && at.Sub(c.at) <= chainTTL:
		c.names = append(c.names, names...)
	default:
		delete(t.chains, key) // a page of a listing we did not follow from its start
		return false, nil
	}
	if next == "" {
		delete(t.chains, key)
		return true, c.names
	}
	c.next, c.at = next, at
	return false, nil
}

func (t *Tracker) expireChains(now time.Time) {
	for k, c := range t.chains {
		if now.Sub(c.at) > chainTTL {
			delete(t.chains, k)
		}
	}
}

// newFlags inspects the descriptions and titles of newCanon and returns the flags of
// severity high or above that oldCanon's did not raise (same type at the same path).
func (t *Tracker) newFlags(oldCanon, newCanon string) []schemas.Flag {
	if t.inspect == nil {
		return nil
	}
	had := make(map[string]bool)
	if oldCanon != "" {
		for _, f := range t.inspectAll(oldCanon) {
			had[f.Type+"\x00"+f.Path] = true
		}
	}
	var out []schemas.Flag
	for _, f := range t.inspectAll(newCanon) {
		if !had[f.Type+"\x00"+f.Path] {
			out = append(out, f)
		}
	}
	return out
}

func (t *Tracker) inspectAll(canon string) []schemas.Flag {
	texts := textFields(canon)
	paths := make([]string, 0, len(texts))
	for p := range texts {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var flags []schemas.Flag
	for _, p := range paths {
		flags = t.inspect(p, texts[p], flags)
	}
	out := flags[:0]
	for _, f := range flags {
		if f.Severity.Rank() >= schemas.SeverityHigh.Rank() {
			out = append(out, f)
		}
	}
	return out
}

// severity weighs a change: new injection flags in its descriptions make it critical; an
// unannounced change to an existing definition is high (a server swapping a tool under its
// clients without telling them), an announced one medium; additions and removals low.
func severity(f Finding) schemas.Severity {
	switch {
	case len(f.Flags) > 0:
		return schemas.SeverityCritical
	case f.Change == Changed && !f.Announced:
		return schemas.SeverityHigh
	case f.Change == Changed:
		return schemas.SeverityMedium
	}
	return schemas.SeverityLow
}

// shadowing records that ev's agent uses ev's server's tools and returns a finding for each
// tool name another server the agent uses also offers, once per tool and set of servers.
func (t *Tracker) shadowing(ev *schemas.Event, at time.Time) []Finding {
	a := t.agents[ev.AgentID]
	if a == nil {
		a = &agentState{raised: make(map[string]bool)}
		t.agents[ev.AgentID] = a
	}
	if !slices.Contains(a.servers, ev.ServerID) {
		a.servers = append(a.servers, ev.ServerID)
		sort.Strings(a.servers)
	}
	if len(a.servers) < 2 {
		return nil
	}
	mine := t.servers[ev.ServerID].kinds[KindTool]
	names := make([]string, 0, len(mine.defs))
	for n := range mine.defs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Finding
	for _, name := range names {
		offering := []string{ev.ServerID}
		for _, other := range a.servers {
			if other == ev.ServerID {
				continue
			}
			if ks := t.servers[other].kinds[KindTool]; ks != nil && ks.defs[name] != nil {
				offering = append(offering, other)
			}
		}
		if len(offering) < 2 {
			continue
		}
		sort.Strings(offering)
		key := name + "\x00" + strings.Join(offering, "\x00")
		if a.raised[key] {
			continue
		}
		a.raised[key] = true
		out = append(out, Finding{
			Shadowing: true, AgentID: ev.AgentID, SessionID: ev.SessionID, EventID: ev.ID, At: at,
			ServerID: ev.ServerID, DefKind: KindTool, Name: name, Servers: offering,
			NewFingerprint: mine.defs[name].fingerprint,
			Severity:       schemas.SeverityMedium,
		})
	}
	return out
}

// save queues a definition version for the store. Call with mu held.
func (t *Tracker) save(serverID, kind, name, fp, canon string, first, last time.Time) {
	t.pending = append(t.pending, store.Definition{
		ServerID: serverID, Kind: kind, Name: name, Fingerprint: fp, Definition: canon, FirstSeen: first, LastSeen: last,
	})
}

// TakeDefinitions returns the definition versions observed since the last call, to save.
func (t *Tracker) TakeDefinitions() []store.Definition {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending
	t.pending = nil
	return p
}

// Load rebuilds the current definitions from the store's history: the latest version of each
// server's tool, prompt and resource (a removal leaves it out). A kind with any history counts
// as baselined and complete, so a restart neither re-baselines nor re-alerts.
func (t *Tracker) Load(ctx context.Context, st Store) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[[3]string]bool)
	var rows int
	restore := func(defs []store.Definition) {
		for _, d := range defs {
			key := [3]string{d.ServerID, d.Kind, d.Name}
			if seen[key] {
				continue // an older version
			}
			seen[key] = true
			rows++
			ks := t.server(d.ServerID).kinds[d.Kind]
			if ks == nil {
				ks = &kindState{defs: make(map[string]*version)}
				t.servers[d.ServerID].kinds[d.Kind] = ks
			}
			ks.complete = true
			if d.LastSeen.After(ks.last) {
				ks.last = d.LastSeen
			}
			if d.Fingerprint != "" {
				ks.defs[d.Name] = &version{fingerprint: d.Fingerprint, canonical: d.Definition, firstSeen: d.FirstSeen, saved: d.LastSeen}
			}
		}
	}
	// Newest first, a page at a time: each page ends at its oldest FirstSeen, whose versions
	// (which may not all have fitted) are read on their own before moving on.
	q := store.DefinitionQuery{Limit: store.MaxLimit}
	for {
		defs, err := st.Definitions(ctx, q)
		if err != nil {
			return fmt.Errorf("cannot load definitions: %w", err)
		}
		restore(defs)
		if len(defs) < store.MaxLimit {
			break
		}
		oldest := defs[len(defs)-1].FirstSeen
		same, err := st.Definitions(ctx, store.DefinitionQuery{Since: oldest, Until: oldest.Add(time.Microsecond), Limit: store.MaxLimit})
		if err != nil {
			return fmt.Errorf("cannot load definitions: %w", err)
		}
		if len(same) == store.MaxLimit {
			t.logger.Warn("more definition versions share one first-seen time than one query returns; some may be baselined again", "first_seen", oldest)
		}
		restore(same)
		q.Until = oldest
	}
	t.logger.Info("definitions restored", "servers", len(t.servers), "definitions", rows)
	return nil
}
