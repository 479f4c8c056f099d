package stdiotap

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Agent attribution sources (Event.AgentSource). --agent is recorded like an agent-id header:
// an identity the operator declared for the client.
const (
	agentDeclared   = "header"
	agentClientInfo = "client_info"
	agentUnknown    = "unknown"
)

// cancelledByPeer is the error code of a request its sender cancelled (as the HTTP tap records it).
const cancelledByPeer = -32800

// chunk is bytes relayed in one direction, copied for the observer.
type chunk struct {
	dir  schemas.Direction
	data []byte
	at   time.Time
	// lost is how many bytes of this direction before data the observer never got.
	lost int64
}

// chunkQueue bounds the chunks waiting for the observer; beyond it bytes go unparsed.
const chunkQueue = 256

// observer parses both directions of one run in a single goroutine: a request is always
// queued before the response it caused, so pairing needs no lock.
type observer struct {
	t         *Tap
	serverID  string
	sessionID string
	chunks    chan chunk
	stopc     chan struct{}
	stopOnce  sync.Once
	dropped   [2]atomic.Int64 // per direction; each has a single feeding goroutine

	lines   [2]lineReader
	pending [2]map[string]*call // requests sent in a direction, awaiting the other's answer
	client  struct{ name, version, protocolVersion string }
}

// call is a request waiting for its answer.
type call struct {
	ev         schemas.Event
	start      time.Time
	initialize bool
	// progressToken is a request's params._meta.progressToken, a progress notification's token.
	progressToken string
	// idReused is set when a request with the same id came while this one was unanswered.
	idReused bool
	// unread is the first line from the answering side the tap could not parse (too long, not
	// JSON-RPC) since the request was sent: it may have been the answer, so a request left
	// unanswered is malformed rather than a timeout, timed at that line.
	unread *unreadLine
}

type unreadLine struct {
	at   time.Time
	size int
}

func newObserver(t *Tap, serverID string) *observer {
	o := &observer{
		t:         t,
		serverID:  serverID,
		sessionID: newSessionID(),
		chunks:    make(chan chunk, chunkQueue),
		stopc:     make(chan struct{}),
	}
	for i := range o.pending {
		o.pending[i] = map[string]*call{}
		o.lines[i].max = t.cfg.MaxLineBytes
	}
	return o
}

func idx(d schemas.Direction) int {
	if d == schemas.ClientToServer {
		return 0
	}
	return 1
}

func other(d schemas.Direction) schemas.Direction {
	if d == schemas.ClientToServer {
		return schemas.ServerToClient
	}
	return schemas.ClientToServer
}

// feed hands a copy of relayed bytes to the observer without ever waiting for it.
func (o *observer) feed(dir schemas.Direction, b []byte, at time.Time) {
	lost := &o.dropped[idx(dir)]
	c := chunk{dir: dir, data: bytes.Clone(b), at: at, lost: lost.Swap(0)}
	select {
	case o.chunks <- c:
	default:
		lost.Add(c.lost + int64(len(b)))
	}
}

func (o *observer) stop() { o.stopOnce.Do(func() { close(o.stopc) }) }

func (o *observer) run() {
	every := min(o.t.cfg.RequestTimeout/4, time.Second)
	ticker := time.NewTicker(max(every, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case c := <-o.chunks:
			o.handle(c)
		case now := <-ticker.C:
			o.sweep(now)
		case <-o.stopc:
			for {
				select {
				case c := <-o.chunks:
					o.handle(c)
				default:
					o.finish()
					return
				}
			}
		}
	}
}

func (o *observer) handle(c chunk) {
	lr := &o.lines[idx(c.dir)]
	if c.lost > 0 {
		o.t.addUnobserved(int64(c.lost))
		lr.lose(c.lost)
	}
	lr.push(c.data,
		func(line []byte) { o.line(c.dir, line, c.at) },
		func(size int) { o.unparsed(c.dir, size, c.at) })
}

// finish parses a last line without its newline and times out what was never answered.
func (o *observer) finish() {
	now := time.Now()
	for _, d := range []schemas.Direction{schemas.ClientToServer, schemas.ServerToClient} {
		lr := &o.lines[idx(d)]
		if lost := o.dropped[idx(d)].Swap(0); lost > 0 {
			o.t.addUnobserved(int64(lost))
			lr.lose(lost)
		}
		lr.flush(func(line []byte) { o.line(d, line, now) }, func(size int) { o.unparsed(d, size, now) })
	}
	for i := range o.pending {
		for id, c := range o.pending[i] {
			delete(o.pending[i], id)
			o.unanswered(i, c, now)
		}
	}
}

// unanswered settles a request of direction index i that got no answer the tap could read:
// malformed, timed at the unparsable line, when the answering side sent one meanwhile (it may
// have been the answer), else a timeout.
func (o *observer) unanswered(i int, c *call, now time.Time) {
	if u := c.unread; u != nil {
		o.resolve(c, u.at, func(ev *schemas.Event) { ev.Status, ev.ResponseBytes = schemas.StatusMalformed, u.size })
		return
	}
	o.resolve(c, now, timedOut)
}

func (o *observer) sweep(now time.Time) {
	for i := range o.pending {
		for id, c := range o.pending[i] {
			if now.Sub(c.start) >= o.t.cfg.RequestTimeout {
				delete(o.pending[i], id)
				o.unanswered(i, c, now)
			}
		}
	}
}

func (o *observer) line(dir schemas.Direction, line []byte, at time.Time) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return
	}
	// A line with more after its message is unparsed too (err wraps jsonrpc.ErrTrailingData):
	// both SDKs' stdio transports refuse it, so the server runs none of it.
	msgs, _, err := jsonrpc.Parse(trimmed)
	if err != nil {
		o.t.log.Debug("unparsable line relayed", "direction", dir, "bytes", len(line))
		o.unparsed(dir, len(line), at)
		return
	}
	for i := range msgs {
		o.message(dir, &msgs[i], at)
	}
}

func (o *observer) message(dir schemas.Direction, m *jsonrpc.Message, at time.Time) {
	switch {
	case m.IsRequest():
		c := o.newCall(m, dir, schemas.KindRequest, at)
		pending := o.pending[idx(dir)]
		id := m.IDString()
		if first, dup := pending[id]; dup || len(pending) >= o.t.cfg.MaxPending {
			// Not paired, but seen: the server may run it.
			o.t.untraced.WithLabelValues(untrackedReason(dup)).Inc()
			if dup {
				first.idReused = true
			}
			o.resolve(c, at, func(ev *schemas.Event) {
				ev.Status = schemas.StatusMalformed
				ev.Flags = append(ev.Flags, jsonrpc.UntrackedFlag(dup))
			})
			return
		}
		pending[id] = c

	case m.IsNotification():
		c := o.newCall(m, dir, schemas.KindNotification, at)
		switch m.Method {
		case "notifications/cancelled":
			c.ev.JSONRPCID, c.ev.Target = o.cancelled(dir, m, at)
		case "notifications/progress":
			if r := o.progressOf(dir, c.progressToken); r != nil {
				c.ev.JSONRPCID, c.ev.Target = r.ev.JSONRPCID, r.ev.Target
			}
		}
		o.resolve(c, at, func(ev *schemas.Event) { ev.Status = schemas.StatusOK })

	case m.IsResponse():
		pending := o.pending[idx(other(dir))]
		id := m.IDString()
		c := pending[id]
		if c == nil {
			o.t.untraced.WithLabelValues("unmatched_response").Inc()
			return
		}
		delete(pending, id)
		if c.initialize {
			if pv := jsonrpc.DescribeResponse(m).ProtocolVersion; pv != "" {
				o.client.protocolVersion = pv
			}
		}
		o.resolve(c, at, o.answered(m))
	}
}

// cancelled settles the request a notifications/cancelled names: its sender gave up on it. It
// returns that request's id and, if it was pending, its target, for the notification's event.
func (o *observer) cancelled(dir schemas.Direction, m *jsonrpc.Message, at time.Time) (id, target string) {
	id = jsonrpc.DescribeRequestWithoutArgs(m).RequestID // canonical, as IDString keys pending
	if id == "" {
		return "", ""
	}
	pending := o.pending[idx(dir)]
	if c := pending[id]; c != nil {
		delete(pending, id)
		o.resolve(c, at, func(ev *schemas.Event) { ev.Status, ev.ErrorCode = schemas.StatusError, cancelledByPeer })
		target = c.ev.Target
	}
	return id, target
}

// progressOf returns the pending request a progress notification sent in dir reports on: the
// one request, sent the other way, that gave its token; nil if none or several did.
func (o *observer) progressOf(dir schemas.Direction, token string) *call {
	if token == "" {
		return nil
	}
	var found *call
	for _, c := range o.pending[idx(other(dir))] {
		if c.progressToken == token {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

func (o *observer) newCall(m *jsonrpc.Message, dir schemas.Direction, kind schemas.Kind, at time.Time) *call {
	f := jsonrpc.DescribeRequest(m)
	if dir == schemas.ClientToServer && f.ClientName != "" {
		o.client.name, o.client.version = f.ClientName, f.ClientVersion
	}
	if dir == schemas.ClientToServer && f.ProtocolVersion != "" {
		o.client.protocolVersion = f.ProtocolVersion
	}
	ev := o.baseEvent(dir, kind, at)
	ev.Method = m.Method
	ev.Target = f.Target
	ev.ArgsShape, ev.ArgsHash = f.ArgsShape, f.ArgsHash
	ev.TraceID, ev.SpanID = f.TraceID, f.SpanID
	ev.RequestBytes = len(m.Raw)
	if m.ID != nil {
		ev.JSONRPCID = m.IDString()
	}
	// Masked and copied now: m points into a line buffer the reader reuses.
	ev.Content = o.t.capture.Decide(o.serverID, m.Method, f.Target).Arguments(m.Method, m.Params)
	return &call{ev: ev, start: at, initialize: m.Method == "initialize" && dir == schemas.ClientToServer, progressToken: f.ProgressToken}
}

func (o *observer) baseEvent(dir schemas.Direction, kind schemas.Kind, at time.Time) schemas.Event {
	return schemas.Event{
		SchemaVersion: schemas.EventSchemaVersion,
		ObservedAt:    at.UTC(),
		CollectorID:   o.t.cfg.CollectorID,
		Source:        schemas.SourceStdioTap,
		Transport:     "stdio",
		ServerID:      o.serverID,
		Direction:     dir,
		Kind:          kind,
	}
}

func (o *observer) unparsed(dir schemas.Direction, size int, at time.Time) {
	for _, c := range o.pending[idx(other(dir))] {
		if c.unread == nil {
			c.unread = &unreadLine{at: at, size: size}
		}
	}
	ev := o.baseEvent(dir, schemas.KindUnparsed, at)
	ev.Status = schemas.StatusMalformed
	if dir == schemas.ClientToServer {
		ev.RequestBytes = size
	} else {
		ev.ResponseBytes = size
	}
	o.emit(ev)
}

func (o *observer) resolve(c *call, at time.Time, fill func(*schemas.Event)) {
	ev := c.ev
	ev.LatencyMicros = at.Sub(c.start).Microseconds()
	fill(&ev)
	if c.idReused {
		ev.Flags = append(ev.Flags, jsonrpc.UntrackedFlag(true))
	}
	o.emit(ev)
}

// emit stamps identity and an id on ev and sends it on.
func (o *observer) emit(ev schemas.Event) {
	ev.ID = newSessionID() // a UUIDv7 like every event id
	ev.SessionID = o.sessionID
	ev.ClientName, ev.ClientVersion = o.client.name, o.client.version
	ev.ProtocolVersion = o.client.protocolVersion
	switch {
	case o.t.cfg.AgentID != "":
		ev.AgentID, ev.DeclaredAgent, ev.AgentSource = o.t.cfg.AgentID, o.t.cfg.AgentID, agentDeclared
	case identity.CleanAgent(ev.ClientName) != "":
		ev.AgentID, ev.AgentSource = identity.CleanAgent(ev.ClientName), agentClientInfo
	default:
		ev.AgentID, ev.AgentSource = agentUnknown, agentUnknown
	}
	o.t.events.WithLabelValues(string(ev.Status)).Inc()
	o.t.emitter.Emit(ev)
}

func timedOut(ev *schemas.Event) { ev.Status = schemas.StatusTimeout }

func untrackedReason(dup bool) string {
	if dup {
		return "duplicate_id"
	}
	return "pending_limit"
}

// answered fills an event from the response m, with the result's content when the event
// carries content.
func (o *observer) answered(m *jsonrpc.Message) func(*schemas.Event) {
	return func(ev *schemas.Event) {
		f := jsonrpc.DescribeResponse(m)
		ev.ResponseBytes = len(m.Raw)
		ev.ResultHash = f.ResultHash
		ev.Content = o.t.capture.Decide(ev.ServerID, ev.Method, ev.Target).WithResult(ev.Content, m.Result, m.Error)
		switch {
		case f.HasError:
			ev.Status, ev.ErrorCode = schemas.StatusError, f.ErrorCode
		case f.ToolError:
			ev.Status = schemas.StatusToolError
		default:
			ev.Status = schemas.StatusOK
		}
	}
}

// lineReader splits one direction's bytes into lines of at most max bytes. Longer lines, and
// lines the observer saw only part of, are reported by size only.
type lineReader struct {
	max     int
	buf     []byte
	skip    bool // discarding up to the next newline
	skipped int  // bytes discarded so far
}

// lose records that bytes were relayed without the observer seeing them: the line in progress
// is incomplete, so everything up to the next newline is only counted.
func (l *lineReader) lose(n int64) {
	l.skipped += len(l.buf) + int(n)
	l.buf = l.buf[:0]
	l.skip = true
}

func (l *lineReader) push(data []byte, line func([]byte), unparsed func(size int)) {
	for len(data) > 0 {
		part, rest, complete := bytes.Cut(data, []byte{'\n'})
		data = rest
		switch {
		case l.skip:
			l.skipped += len(part)
		case len(l.buf)+len(part) > l.max:
			l.skip, l.skipped = true, len(l.buf)+len(part)
			l.buf = l.buf[:0]
		case complete && len(l.buf) == 0:
			line(part)
		default:
			l.buf = append(l.buf, part...)
			if complete {
				line(l.buf)
				l.reset()
			}
		}
		if complete && l.skip {
			unparsed(l.skipped)
			l.skip, l.skipped = false, 0
			l.reset()
		}
	}
}

// flush handles what is left at the end of the stream.
func (l *lineReader) flush(line func([]byte), unparsed func(size int)) {
	switch {
	case l.skip:
		unparsed(l.skipped)
	case len(bytes.TrimSpace(l.buf)) > 0:
		line(l.buf)
	}
	l.skip, l.skipped = false, 0
	l.reset()
}

func (l *lineReader) reset() {
	if cap(l.buf) > 1<<20 {
		l.buf = nil // do not pin a large line's memory
		return
	}
	l.buf = l.buf[:0]
}
