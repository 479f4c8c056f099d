package httptap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/collector/sse"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Headers of the Streamable HTTP transport.
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerMethod          = "Mcp-Method" // 2026-07-28: the request's method, for gateways
	headerName            = "Mcp-Name"   // 2026-07-28: the tool, prompt or resource it names
)

// Methods the tap treats specially.
const (
	methodProgress  = "notifications/progress"
	methodCancelled = "notifications/cancelled"
	methodListen    = "subscriptions/listen"
)

// cancelGrace is how long requests whose stream the client cut stay open for the
// notifications/cancelled that usually follows (clients abort the POST first), capped by
// RequestTimeout; then they are timeouts.
const cancelGrace = 5 * time.Second

// CodeCancelled is Event.ErrorCode of a request its sender cancelled (notifications/cancelled).
// JSON-RPC and MCP define no code for it; this is LSP's RequestCancelled, the usual choice.
const CodeCancelled = -32800

// requestHeaders is what an HTTP request's headers say about who is talking.
type requestHeaders struct {
	sessionID, declaredAgent, protocolVersion string
	mcpMethod, mcpName                        string           // Mcp-Method, Mcp-Name
	ident                                     identity.Request // identity.Resolver.FromRequest
}

// exchange observes one HTTP request through the proxy and its response.
//
// The proxy goroutine parses the request, the response headers and the response body as it
// is read; timers expire calls from other goroutines, hence mu.
type exchange struct {
	tap        *Tap
	up         *upstream
	suffix     string // path after /mcp[/{name}], appended to the upstream's path
	httpMethod string
	start      time.Time // when the request was seen
	hdr        requestHeaders
	client     string // the client's IP address: with the agent header, the scope of sessionless ids

	mu          sync.Mutex
	sessionID   string         // hdr.sessionID, the id the response assigned, or the legacy session's
	transport   string         // Event.Transport of this exchange's events
	own         pendingSet     // requests awaiting their response on this exchange, by id
	pend        *pendingSet    // where this exchange's requests await their responses: &own, or a legacy session's
	legacy      *legacySession // the legacy HTTP+SSE session this exchange belongs to, if any
	sent        []sentRequest  // requests this POST left awaiting their response on a legacy stream
	acks        []*call        // notifications and answers awaiting the HTTP status
	status      int            // HTTP status of the response, 0 until it arrives
	respAt      time.Time
	upstreamErr bool
	cut         bool // the client went away, or the body was closed before its end
	rpcErrCode  int  // code of a JSON-RPC error with a null id: it answers every request
	rpcErrSize  int  // and that error's size, their response_bytes
	unread      int  // bytes the server sent on this exchange that the tap could not parse
	finished    bool

	// streamed counts a request body of unknown length too large to parse, as it is forwarded.
	streamed *countingReader

	// messages is how many JSON-RPC messages the request body held (set before they are
	// registered): Mcp-Method and Mcp-Name describe a body of one.
	messages int
	trailing bool // the request body had bytes after its JSON value
	// from is what the request body said about its client (the first message that said
	// anything): the server's messages on this exchange's stream, which say nothing of the
	// client, are the same client's. Without a session (2026-07-28) that is what puts a
	// tools/call's progress notifications in the call's stitched session.
	from clientFacts

	// Response body observation, touched by the proxy goroutine only.
	sse         *sse.Parser
	collectJSON bool
	jsonBody    []byte
	jsonSize    int
	bodyEnded   bool
}

type sentRequest struct {
	id string
	c  *call
}

func (t *Tap) newExchange(r *http.Request, up *upstream, suffix string) *exchange {
	ident := t.ident.FromRequest(r)
	hdr := requestHeaders{
		sessionID:       r.Header.Get(headerSessionID),
		declaredAgent:   ident.Header,
		protocolVersion: r.Header.Get(headerProtocolVersion),
		mcpMethod:       r.Header.Get(headerMethod),
		mcpName:         r.Header.Get(headerName),
		ident:           ident,
	}
	ex := &exchange{
		tap: t, up: up, suffix: suffix, httpMethod: r.Method, start: time.Now(), hdr: hdr,
		client: clientIP(r.RemoteAddr), sessionID: hdr.sessionID, transport: transportName,
	}
	ex.pend = &ex.own
	if hdr.sessionID == "" && r.Method == http.MethodPost {
		// A POST into a legacy HTTP+SSE session names its session in the query, or by its path.
		if ls := t.legacySessionOf(up, suffix, r.URL); ls != nil {
			ex.joinLegacy(ls)
		}
	}
	if ex.sessionID != "" {
		t.expireAll(t.sessions.seen(ex.sessionKey(ex.sessionID), hdr.ident, hdr.protocolVersion, ex.start))
	}
	return ex
}

func clientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

func (ex *exchange) sessionKey(id string) sessionKey { return sessionKey{upstream: ex.up.name, id: id} }

func (ex *exchange) currentSessionID() string {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.sessionID
}

// scope is what request ids and progress tokens are unique within: the session, or for
// sessionless traffic the client's address and declared agent.
func (ex *exchange) scope() string {
	if sid := ex.currentSessionID(); sid != "" {
		return sid
	}
	return "\x00" + ex.client + "\x00" + ex.hdr.declaredAgent
}

func (ex *exchange) pendingSet() *pendingSet {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.pend
}

// call starts an operation from a message of this exchange.
func (ex *exchange) call(m *jsonrpc.Message, dir schemas.Direction, kind schemas.Kind, at time.Time) *call {
	c := ex.newCall(m, dir, kind, at)
	ex.mu.Lock()
	c.sessionID, c.ev.Transport = ex.sessionID, ex.transport
	ex.mu.Unlock()
	return c
}

// observeRequest reads a POST body (up to MaxMessageBytes) and registers what it says. It
// returns the body with held true when it read all of it, which is then forwarded byte for
// byte; otherwise r.Body is left to yield what was read and the rest, as is.
func (ex *exchange) observeRequest(r *http.Request) (body []byte, held bool) {
	t := ex.tap
	body, err := readBody(r, t.cfg.MaxMessageBytes)
	if err != nil || len(body) > t.cfg.MaxMessageBytes {
		// Too big, or the client's body broke off: forward what was read and the rest as is.
		rest := io.MultiReader(bytes.NewReader(body), r.Body)
		switch {
		case err != nil:
		case r.ContentLength >= 0:
			ex.unparsed(schemas.ClientToServer, int(max(r.ContentLength, int64(len(body)))), ex.start)
		default: // of unknown length (chunked): recorded by what went through, when the exchange ends
			ex.streamed = &countingReader{r: rest}
			rest = ex.streamed
		}
		r.Body = readCloser{Reader: rest, Closer: r.Body}
		return nil, false
	}
	ex.registerRequest(body)
	return body, true
}

// registerRequest registers the messages of a POST body.
func (ex *exchange) registerRequest(body []byte) {
	t := ex.tap
	msgs, _, err := jsonrpc.Parse(body)
	// Servers such as the Go SDK's run the first value of a body and ignore what follows it.
	ex.trailing = errors.Is(err, jsonrpc.ErrTrailingData)
	if err != nil && !ex.trailing {
		t.log.Debug("unparsable request body passed through", "upstream", ex.up.name, "bytes", len(body))
		ex.unparsed(schemas.ClientToServer, len(body), ex.start)
		return
	}
	ex.messages = len(msgs)
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.IsRequest():
			ex.addPending(m)
		case m.IsNotification():
			c := ex.call(m, schemas.ClientToServer, schemas.KindNotification, ex.start)
			ex.relate(c, ex.start)
			ex.mu.Lock()
			if len(ex.acks) < t.cfg.MaxPending {
				ex.acks = append(ex.acks, c)
			} else {
				t.metrics.untracked.WithLabelValues("pending_limit").Inc()
			}
			ex.mu.Unlock()
		case m.IsResponse():
			ex.clientAnswer(m)
		}
	}
}

// addPending registers a client request awaiting its response: on this exchange, or on the
// GET stream of its legacy session.
func (ex *exchange) addPending(m *jsonrpc.Message) {
	t := ex.tap
	c := ex.call(m, schemas.ClientToServer, schemas.KindRequest, ex.start)
	c.track.listen = m.Method == methodListen
	id := m.IDString()
	pend := ex.pendingSet()
	t.index.add(c, ex.up.name, ex.scope(), schemas.ClientToServer, id, t.cfg.MaxPending)
	if ok, first := pend.add(id, c, t.cfg.MaxPending); !ok {
		t.untracked(c, first, ex.start)
		return
	}
	if pend != &ex.own {
		ex.mu.Lock()
		ex.sent = append(ex.sent, sentRequest{id: id, c: c})
		ex.mu.Unlock()
	}
	if !c.track.listen { // a subscription lasts as long as the client wants: no deadline
		t.deadlines.add(t, c, ex.start.Add(t.cfg.RequestTimeout), func() {
			if pend.takeIf(id, c) {
				t.resolve(c, ex.currentSessionID(), time.Now(), timedOut)
			}
		})
	}
}

// clientAnswer pairs the client's answer to a server request.
func (ex *exchange) clientAnswer(m *jsonrpc.Message) {
	t := ex.tap
	c := t.sessions.takeServerCall(ex.sessionKey(ex.currentSessionID()), m.IDString())
	if c == nil {
		t.metrics.untracked.WithLabelValues("unmatched_response").Inc()
		return
	}
	t.resolve(c, "", ex.start, t.answered(m))
}

// relate ties a notification about a request to it: progress by its token, a cancellation by
// the request's id. The notification's event then carries the request's JSONRPCID and Target;
// the cancelled request is settled at once.
func (ex *exchange) relate(c *call, at time.Time) {
	t := ex.tap
	switch {
	case c.ev.Method == methodProgress && c.track.progressToken != "":
		key := indexKey{upstream: ex.up.name, scope: ex.scope(), dir: opposite(c.ev.Direction), token: true, v: c.track.progressToken}
		if req := t.index.find(key); req != nil {
			c.ev.JSONRPCID, c.ev.Target = req.ev.JSONRPCID, req.ev.Target
		}
	case c.ev.Method == methodCancelled && c.track.refersTo != "":
		key := indexKey{upstream: ex.up.name, scope: ex.scope(), dir: c.ev.Direction, v: c.track.refersTo}
		if req := t.index.find(key); req != nil && sameClient(req.client, c.client) {
			c.ev.JSONRPCID, c.ev.Target = req.ev.JSONRPCID, req.ev.Target
			if req.track.listen {
				t.resolve(req, "", at, listenEnded) // how a client ends its subscription
			} else {
				t.resolve(req, "", at, cancelled)
			}
		}
	}
}

// sameClient reports whether two messages may come from one client: without a session
// (2026-07-28) ids are unique only per client, and clients behind one address are told apart
// only by the clientInfo their messages carry.
func sameClient(a, b clientFacts) bool {
	return a.name == "" || b.name == "" || (a.name == b.name && a.version == b.version)
}

func opposite(d schemas.Direction) schemas.Direction {
	if d == schemas.ClientToServer {
		return schemas.ServerToClient
	}
	return schemas.ClientToServer
}

// observeResponse looks at the response headers and wraps the body to watch it flow.
func (ex *exchange) observeResponse(resp *http.Response) {
	t := ex.tap
	ex.mu.Lock()
	ex.status, ex.respAt = resp.StatusCode, time.Now()
	if ex.sessionID == "" {
		ex.sessionID = resp.Header.Get(headerSessionID)
	}
	ex.mu.Unlock()

	// The session is over when the client ends it or the server no longer knows it.
	// (A 405 to a DELETE is the server declining to end it.)
	if ex.hdr.sessionID != "" &&
		((ex.httpMethod == http.MethodDelete && resp.StatusCode < 300) || resp.StatusCode == http.StatusNotFound) {
		t.expireAll(t.sessions.forget(ex.sessionKey(ex.hdr.sessionID)))
	}
	if ex.httpMethod == http.MethodDelete {
		return
	}
	mediaType := mediaType(resp.Header.Get("Content-Type"))
	switch {
	case mediaType == "text/event-stream":
		ex.sse = sse.NewParser(t.cfg.MaxMessageBytes, ex.onSSE)
	case mediaType == "application/json" && ex.httpMethod == http.MethodPost:
		ex.collectJSON = true
	default:
		return // 202s, plain-text errors: the exchange's end settles what is pending
	}
	if ex.sse != nil && ex.httpMethod == http.MethodGet && resp.StatusCode == http.StatusOK {
		// Inside the observation: a legacy session starts before what follows is parsed.
		ex.watchForEndpoint(resp)
	}
	resp.Body = &observedBody{ReadCloser: resp.Body, ex: ex}
}

// mediaType is a Content-Type's media type, lower case (what mime.ParseMediaType returns for
// the well-formed ones, without its allocations).
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	for i := 0; i < len(mt); i++ {
		if c := mt[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(mt)
		}
	}
	return mt
}

// readBody reads up to max+1 bytes of a request body, in one allocation when its length is
// declared.
func readBody(r *http.Request, max int) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= int64(max) {
		body := make([]byte, n)
		read, err := io.ReadFull(r.Body, body)
		if err == nil {
			// The declared length was all: make sure (a body never outgrows its length).
			var one [1]byte
			if m, _ := r.Body.Read(one[:]); m > 0 {
				return append(body, one[0]), nil
			}
		}
		return body[:read], err
	}
	return io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
}

// upstreamFailed records that the proxy got no response from the upstream.
func (ex *exchange) upstreamFailed(err error) {
	if errors.Is(err, context.Canceled) {
		ex.mu.Lock()
		ex.cut = true // the client went away
		ex.mu.Unlock()
		return
	}
	ex.tap.metrics.upstreamErrors.WithLabelValues(ex.up.name).Inc()
	ex.mu.Lock()
	ex.upstreamErr = true
	ex.mu.Unlock()
}

// feed observes response body bytes on their way to the client.
func (ex *exchange) feed(p []byte) {
	switch {
	case ex.sse != nil:
		_, _ = ex.sse.Write(p)
	case ex.collectJSON:
		ex.jsonSize += len(p)
		if ex.jsonSize <= ex.tap.cfg.MaxMessageBytes {
			ex.jsonBody = append(ex.jsonBody, p...)
		}
	}
}

// endBody runs when the upstream body has been read to its end.
func (ex *exchange) endBody() {
	if ex.bodyEnded {
		return
	}
	ex.bodyEnded = true
	if !ex.collectJSON || ex.jsonSize == 0 {
		return
	}
	now := time.Now()
	if ex.jsonSize > ex.tap.cfg.MaxMessageBytes {
		ex.unparsed(schemas.ServerToClient, ex.jsonSize, now)
		return
	}
	ex.serverMessages(ex.jsonBody, now)
	ex.jsonBody = nil
}

func (ex *exchange) onSSE(e sse.Event) {
	now := time.Now()
	if e.Type == legacyEndpointEvent {
		return // the legacy transport's endpoint announcement, handled by endpointWatcher
	}
	if e.Oversized {
		ex.unparsed(schemas.ServerToClient, e.Size, now)
		return
	}
	if len(bytes.TrimSpace(e.Data)) == 0 {
		return // a priming event, carrying only an id for resumption
	}
	ex.serverMessages(e.Data, now)
}

// serverMessages handles a body or SSE event the server sent.
func (ex *exchange) serverMessages(data []byte, now time.Time) {
	msgs, _, err := jsonrpc.Parse(data)
	if err != nil && !errors.Is(err, jsonrpc.ErrTrailingData) {
		ex.tap.log.Debug("unparsable server message passed through", "upstream", ex.up.name, "bytes", len(data))
		ex.unparsed(schemas.ServerToClient, len(data), now)
		return
	}
	for i := range msgs {
		ex.serverMessage(&msgs[i], now)
	}
}

func (ex *exchange) serverMessage(m *jsonrpc.Message, now time.Time) {
	t := ex.tap
	switch {
	case m.IsResponse():
		id := m.IDString()
		ex.mu.Lock()
		if id == "null" && m.Error != nil {
			ex.rpcErrCode, ex.rpcErrSize = m.Error.Code, len(m.Raw)
			ex.mu.Unlock()
			return
		}
		pend, sessionID := ex.pend, ex.sessionID
		ex.mu.Unlock()
		c := pend.take(id)
		if c == nil {
			// The answer to a request of another stream of the session: one the server
			// ended before answering, resumed (Last-Event-ID) or polled (2025-11-25).
			c = t.index.find(indexKey{upstream: ex.up.name, scope: ex.scope(), dir: schemas.ClientToServer, v: id})
		}
		if c == nil {
			t.metrics.untracked.WithLabelValues("unmatched_response").Inc()
			return
		}
		if !c.track.claim() {
			return // already settled: cancelled, or timed out
		}
		if sessionID != "" {
			c.sessionID = sessionID
		}
		if c.initialize {
			if pv := jsonrpc.DescribeResponse(m).ProtocolVersion; pv != "" {
				c.client.protocolVersion = pv
			}
			t.expireAll(t.sessions.initialized(ex.sessionKey(c.sessionID), c.client.name, c.client.version, c.client.protocolVersion, now))
		}
		d := m.Clone() // the event is built after the stream's buffer is reused
		t.complete(c, now, t.answered(&d))

	case m.IsRequest():
		c := ex.call(m, schemas.ServerToClient, schemas.KindRequest, now)
		ex.inheritClient(c)
		key, id := ex.sessionKey(c.sessionID), m.IDString()
		t.index.add(c, ex.up.name, ex.scope(), schemas.ServerToClient, id, t.cfg.MaxPending)
		ok, first, dropped := t.sessions.addServerCall(key, id, c, t.cfg.MaxPending, now)
		t.expireAll(dropped)
		if !ok {
			t.untracked(c, first, now)
			return
		}
		t.deadlines.add(t, c, now.Add(t.cfg.RequestTimeout), func() {
			if t.sessions.takeServerCallIf(key, id, c) {
				t.resolve(c, "", time.Now(), timedOut)
			}
		})

	case m.IsNotification():
		c := ex.call(m, schemas.ServerToClient, schemas.KindNotification, now)
		ex.inheritClient(c)
		ex.relate(c, now)
		t.resolve(c, "", now, func(ev *schemas.Event) { ev.Status = schemas.StatusOK })
	}
}

// inheritClient attributes a server message that says nothing of the client to the client
// whose request this exchange carried (see exchange.from).
func (ex *exchange) inheritClient(c *call) {
	if c.client == (clientFacts{}) {
		c.client = ex.from
	}
}

// unparsed emits an event for traffic the tap passed through without understanding it.
func (ex *exchange) unparsed(dir schemas.Direction, size int, at time.Time) {
	ev := ex.tap.baseEvent(ex.up.name, dir, schemas.KindUnparsed, at)
	ev.Status = schemas.StatusMalformed
	if dir == schemas.ClientToServer {
		ev.RequestBytes = size
		// A body too large (or broken) to read still says what it was in its headers.
		ev.Method, ev.Target = ex.hdr.mcpMethod, decodeHeaderValue(ex.hdr.mcpName)
	} else {
		ev.ResponseBytes = size
	}
	ex.mu.Lock()
	sid := ex.sessionID
	ev.Transport = ex.transport
	if dir == schemas.ServerToClient {
		ex.unread += size
	}
	ex.mu.Unlock()
	ex.tap.identify(&ev, sid, ex.tap.sessions.info(ex.sessionKey(sid)), ex.hdr, clientFacts{})
	ex.tap.emit(ev)
}

// finish settles everything still open when the exchange is over: requests without a response
// (timeout, or the HTTP error that answered them) and notifications awaiting their status.
func (ex *exchange) finish() {
	ex.mu.Lock()
	if ex.finished {
		ex.mu.Unlock()
		return
	}
	ex.finished = true
	if ex.streamed != nil {
		defer ex.unparsed(schemas.ClientToServer, int(ex.streamed.n.Load()), ex.start)
	}
	acks, sent, legacy := ex.acks, ex.sent, ex.legacy
	ex.acks, ex.sent = nil, nil
	status, respAt, upstreamErr, rpcErrCode, rpcErrSize, sessionID := ex.status, ex.respAt, ex.upstreamErr, ex.rpcErrCode, ex.rpcErrSize, ex.sessionID
	cut, unread := ex.cut, ex.unread
	// An event stream the server ended without answering may be resumed or polled on another
	// stream (Last-Event-ID), and a 202 says the answer comes on another stream (the legacy
	// transport's GET stream, when the tap could not tie this POST to it): their requests wait
	// for their answer until their deadline.
	resumable := (ex.sse != nil || status == http.StatusAccepted) && !upstreamErr && status < 300 && !cut && unread == 0
	ex.mu.Unlock()
	// Those stay where their deadline looks for them: a subscription ends with its stream, and
	// a request not in the index could not be found from another stream.
	open := ex.own.drainIf(func(c *call) bool { return !resumable || c.track.listen || len(c.track.keys) == 0 })

	now := time.Now()
	if respAt.IsZero() {
		respAt = now
	}
	httpError := func(ev *schemas.Event) {
		ev.Status = schemas.StatusError
		switch {
		case upstreamErr:
			ev.ErrorCode = http.StatusBadGateway
		case rpcErrCode != 0:
			ev.ErrorCode, ev.ResponseBytes = rpcErrCode, rpcErrSize
		default:
			ev.ErrorCode = status
		}
	}
	// What the tap could not parse (too large, not JSON-RPC) may well hold the answer of a
	// request still open: such a request is malformed, not a timeout (an error to the baselines).
	unreadable := func(ev *schemas.Event) {
		ev.Status = schemas.StatusMalformed
		if len(open) == 1 {
			ev.ResponseBytes = unread
		}
	}
	failed := upstreamErr || status >= 300
	settle := func(c *call) {
		switch {
		case failed:
			ex.tap.resolve(c, sessionID, respAt, httpError)
		case c.track.listen:
			ex.tap.resolve(c, sessionID, now, listenEnded)
		case unread > 0:
			ex.tap.resolve(c, sessionID, now, unreadable)
		default:
			ex.tap.resolve(c, sessionID, now, timedOut) // a JSON body without the response
		}
	}
	for _, c := range open {
		if cut && !failed {
			ex.tap.orphan(c, sessionID, now)
		} else {
			settle(c)
		}
	}
	if failed {
		// A legacy POST that failed: its requests will get no answer on the GET stream.
		for _, s := range sent {
			if legacy.pend.takeIf(s.id, s.c) {
				settle(s.c)
			}
		}
	}
	if legacy != nil && ex.httpMethod == http.MethodGet {
		// The legacy session's stream is over, and with it the session.
		ex.tap.legacy.remove(ex.up.name, legacy)
		for _, c := range legacy.pend.drain() {
			settle(c)
		}
		ex.tap.expireAll(ex.tap.sessions.forget(ex.sessionKey(legacy.id)))
	}
	for _, c := range acks {
		switch {
		case failed:
			ex.tap.resolve(c, sessionID, respAt, httpError)
		case status == 0:
			ex.tap.resolve(c, sessionID, now, timedOut)
		default:
			ex.tap.resolve(c, sessionID, respAt, func(ev *schemas.Event) { ev.Status = schemas.StatusOK })
		}
	}
}

// orphan settles a request whose stream the client cut, after the grace in which its
// cancellation may still arrive and settle it first. Its event is timed at the cut.
func (t *Tap) orphan(c *call, sessionID string, cutAt time.Time) {
	fill := timedOut
	if c.track.listen {
		fill = listenEnded
	}
	if len(c.track.keys) == 0 { // not indexed: no cancellation could find it
		t.resolve(c, sessionID, cutAt, fill)
		return
	}
	t.deadlines.remove(c)
	time.AfterFunc(min(cancelGrace, t.cfg.RequestTimeout), func() { t.resolve(c, sessionID, cutAt, fill) })
}

// resolve completes a call's event and emits it, unless it was settled already. sessionID, when
// not empty, is the session the call turned out to belong to (the initialize response's).
func (t *Tap) resolve(c *call, sessionID string, at time.Time, fill func(*schemas.Event)) {
	if !c.track.claim() {
		return
	}
	if sessionID != "" {
		c.sessionID = sessionID
	}
	t.complete(c, at, fill)
}

// complete emits the event of a call its caller has claimed. What the tap knows is settled
// here; the event itself (content, hashes, identity, id) is built on the emit queue's
// goroutine, off the call's path, from that snapshot: fill must not use buffers that will be
// reused.
func (t *Tap) complete(c *call, at time.Time, fill func(*schemas.Event)) {
	t.deadlines.remove(c)
	t.index.remove(c)
	info := t.sessions.info(sessionKey{upstream: c.ev.ServerID, id: c.sessionID})
	t.emitQ.run(func(now bool) {
		ev := c.ev
		ev.LatencyMicros = micros(at.Sub(c.start))
		ev.ArgsShape, ev.ArgsHash = jsonrpc.ArgsShapeAndHash(&jsonrpc.Message{Method: ev.Method, Params: c.track.args})
		ev.Content = t.capture.Decide(ev.ServerID, ev.Method, ev.Target).Arguments(ev.Method, c.track.args)
		fill(&ev)
		if c.track.idReused.Load() {
			ev.Flags = append(ev.Flags, jsonrpc.UntrackedFlag(true))
		}
		t.identify(&ev, c.sessionID, info, c.hdr, c.client)
		t.deliver(ev, now)
	})
}

// expireAll emits timeouts for server requests whose session was forgotten.
func (t *Tap) expireAll(calls []*call) {
	now := time.Now()
	for _, c := range calls {
		t.resolve(c, "", now, timedOut)
	}
}

func timedOut(ev *schemas.Event) { ev.Status = schemas.StatusTimeout }

func cancelled(ev *schemas.Event) {
	ev.Status, ev.ErrorCode = schemas.StatusError, CodeCancelled
}

// listenEnded settles a subscriptions/listen request that ended without a result: the client
// closed or cancelled it, which is how subscriptions normally end.
func listenEnded(ev *schemas.Event) { ev.Status = schemas.StatusOK }

// tracking is a call's bookkeeping across HTTP exchanges.
//
// A call can be settled from several places (its response, its deadline, a cancellation, the
// end of its stream); the first to claim it emits its event, the others do nothing.
type tracking struct {
	done          atomic.Bool
	idReused      atomic.Bool // a request with the same id came while this one was unanswered
	listen        bool        // a subscriptions/listen request: no deadline, its end is not a timeout
	progressToken string      // params._meta.progressToken, or the token of a progress notification
	refersTo      string      // the request id a notifications/cancelled names
	args          []byte      // params, for the event's content (built in complete)
	keys          []indexKey  // the call's entries in the tap's index, set before it is shared, then fixed

	// The call's place in the tap's deadline list, guarded by the list's mutex.
	prev, next *call
	listed     bool
	deadline   time.Time
	expire     func() // settles the call as a timeout if it is still open where it waits
}

func (tr *tracking) claim() bool { return tr.done.CompareAndSwap(false, true) }

// untracked records at once, malformed and flagged, a request the tap cannot pair: one that
// reuses the id of first, still unanswered, or (first nil) one over the limit of pending
// requests. It still reaches its peer, which may act on it. first is flagged too: which answer
// is whose cannot be told.
func (t *Tap) untracked(c *call, first *call, at time.Time) {
	dup := first != nil
	if dup {
		first.track.idReused.Store(true)
		t.metrics.untracked.WithLabelValues("duplicate_id").Inc()
	} else {
		t.metrics.untracked.WithLabelValues("pending_limit").Inc()
	}
	t.resolve(c, "", at, func(ev *schemas.Event) {
		ev.Status = schemas.StatusMalformed
		ev.Flags = append(ev.Flags, jsonrpc.UntrackedFlag(dup))
	})
}

// deadlineList holds the requests awaiting an answer in the order of their deadlines, which,
// with one RequestTimeout for all, is nearly always the order they were seen in. A single
// timer set for the first settles those that go unanswered: a timer per request costs more
// than the rest of the tap's work on a call.
type deadlineList struct {
	mu         sync.Mutex
	head, tail *call
	timer      *time.Timer
	armed      bool // the timer is set for the head's deadline or earlier
	stopped    bool
}

// add lists c, which expire settles once deadline passes. It goes at the tail unless a later
// deadline is listed already: a request's deadline counts from its headers, and it is listed
// once its body is read, which a slow upload can delay past later requests'.
func (d *deadlineList) add(t *Tap, c *call, deadline time.Time, expire func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || c.track.done.Load() {
		return
	}
	c.track.deadline, c.track.expire, c.track.listed = deadline, expire, true
	after := d.tail
	for after != nil && after.track.deadline.After(deadline) {
		after = after.track.prev
	}
	c.track.prev = after
	if after != nil {
		c.track.next, after.track.next = after.track.next, c
	} else {
		c.track.next, d.head = d.head, c
	}
	if c.track.next != nil {
		c.track.next.track.prev = c
	} else {
		d.tail = c
	}
	if !d.armed || d.head == c {
		d.armLocked(t, time.Now())
	}
}

// remove drops c if it is listed.
func (d *deadlineList) remove(c *call) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unlinkLocked(c)
}

func (d *deadlineList) unlinkLocked(c *call) {
	if !c.track.listed {
		return
	}
	if c.track.prev != nil {
		c.track.prev.track.next = c.track.next
	} else {
		d.head = c.track.next
	}
	if c.track.next != nil {
		c.track.next.track.prev = c.track.prev
	} else {
		d.tail = c.track.prev
	}
	c.track.prev, c.track.next, c.track.listed = nil, nil, false
}

// armLocked sets the timer for the head's deadline.
func (d *deadlineList) armLocked(t *Tap, now time.Time) {
	d.armed = false
	if d.head == nil || d.stopped {
		return
	}
	wait := d.head.track.deadline.Sub(now)
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, func() { d.sweep(t) })
	} else {
		d.timer.Reset(wait)
	}
	d.armed = true
}

// sweep settles the requests whose deadline passed and sets the timer for the next.
func (d *deadlineList) sweep(t *Tap) {
	now := time.Now()
	var expired []*call
	d.mu.Lock()
	for c := d.head; c != nil && !c.track.deadline.After(now); c = d.head {
		d.unlinkLocked(c)
		expired = append(expired, c)
	}
	d.armLocked(t, now)
	d.mu.Unlock()
	for _, c := range expired {
		c.track.expire()
	}
}

// stop stops the timer for good.
func (d *deadlineList) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
}

// len returns the number of requests listed.
func (d *deadlineList) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for c := d.head; c != nil; c = c.track.next {
		n++
	}
	return n
}

// pendingSet holds requests awaiting their responses, by JSON-RPC id.
type pendingSet struct {
	mu sync.Mutex
	m  map[string]*call
}

// add registers c under id. It fails when id is pending already (first is that call) or when
// the set holds max calls.
func (p *pendingSet) add(id string, c *call, max int) (ok bool, first *call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if first := p.m[id]; first != nil {
		return false, first
	}
	if len(p.m) >= max {
		return false, nil
	}
	if p.m == nil {
		p.m = map[string]*call{}
	}
	p.m[id] = c
	return true, nil
}

// take removes and returns the call under id, or nil.
func (p *pendingSet) take(id string) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.m[id]
	if c != nil {
		delete(p.m, id)
	}
	return c
}

// takeIf removes the call under id if it is c.
func (p *pendingSet) takeIf(id string, c *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[id] != c {
		return false
	}
	delete(p.m, id)
	return true
}

// drainIf removes and returns the calls for which take is true.
func (p *pendingSet) drainIf(take func(*call) bool) []*call {
	p.mu.Lock()
	defer p.mu.Unlock()
	var taken []*call
	for id, c := range p.m {
		if take(c) {
			taken = append(taken, c)
			delete(p.m, id)
		}
	}
	return taken
}

// drain removes and returns every call.
func (p *pendingSet) drain() map[string]*call {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.m
	p.m = nil
	return m
}

// indexKey names a request that messages on other HTTP exchanges may refer to: by its id (a
// cancellation) or by its progress token (progress notifications).
type indexKey struct {
	upstream, scope string
	dir             schemas.Direction // who sent the request
	token           bool              // v is a progress token, else a request id
	v               string
}

// callIndex finds open requests by id or progress token across the exchanges of a session.
// A key held by more than one request (sessionless clients behind one address reusing ids)
// finds nothing rather than a wrong request.
type callIndex struct {
	mu sync.Mutex
	m  map[indexKey][]*call
	n  int
}

// indexPerPending is how many index entries the tap keeps per MaxPending: the index spans
// every exchange, each of which holds up to MaxPending requests.
const indexPerPending = 64

// add indexes c, before it is shared, by id and by its progress token if it has one.
func (x *callIndex) add(c *call, upstream, scope string, dir schemas.Direction, id string, maxPending int) {
	keys := []indexKey{{upstream: upstream, scope: scope, dir: dir, v: id}}
	if c.track.progressToken != "" {
		keys = append(keys, indexKey{upstream: upstream, scope: scope, dir: dir, token: true, v: c.track.progressToken})
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.n+len(keys) > maxPending*indexPerPending {
		return
	}
	if x.m == nil {
		x.m = map[indexKey][]*call{}
	}
	for _, k := range keys {
		x.m[k] = append(x.m[k], c)
	}
	x.n += len(keys)
	c.track.keys = keys
}

// find returns the one open request under k, or nil.
func (x *callIndex) find(k indexKey) *call {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cs := x.m[k]; len(cs) == 1 {
		return cs[0]
	}
	return nil
}

// remove drops c's entries.
func (x *callIndex) remove(c *call) {
	if len(c.track.keys) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, k := range c.track.keys {
		cs := x.m[k]
		for i, o := range cs {
			if o == c {
				cs = append(cs[:i], cs[i+1:]...)
				x.n--
				break
			}
		}
		if len(cs) == 0 {
			delete(x.m, k)
		} else {
			x.m[k] = cs
		}
	}
}

// drain empties the index and returns the calls it held.
func (x *callIndex) drain() []*call {
	x.mu.Lock()
	defer x.mu.Unlock()
	seen := map[*call]bool{}
	var calls []*call
	for _, cs := range x.m {
		for _, c := range cs {
			if !seen[c] {
				seen[c] = true
				calls = append(calls, c)
			}
		}
	}
	x.m, x.n = nil, 0
	return calls
}

// len returns the number of index entries.
func (x *callIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.n
}

// observedBody hands the upstream's response body to the exchange as the proxy reads it,
// without holding anything back.
type observedBody struct {
	io.ReadCloser
	ex *exchange
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.ex.feed(p[:n])
	}
	if err == io.EOF {
		b.ex.endBody()
	}
	return n, err
}

func (b *observedBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.ex.bodyEnded {
		b.ex.mu.Lock()
		b.ex.cut = true
		b.ex.mu.Unlock()
	}
	b.ex.finish()
	return err
}

// countingReader counts what is read through it; n may be read by another goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// emitQueueLen bounds the events waiting for the emit queue's goroutine.
const emitQueueLen = 4096

// emitLinger is how long a job waits for the queue's goroutine. Handing each job over at once
// would wake that goroutine once per call, a scheduler round trip on the call's path; waiting a
// little lets one wake-up build the events of many calls.
const emitLinger = time.Millisecond

// emitQueue builds events and hands them to the emitter from a goroutine of its own, so that
// neither (hashing and masking a large result, a disk spool waiting for its write) is on a
// call's path. When the queue is full, or the tap is not started, the work is done inline:
// slower, never lost. What is queued is done by Shutdown.
type emitQueue struct {
	mu        sync.Mutex
	jobs      []func(now bool) // waiting, in order
	spare     []func(now bool) // the slice the goroutine last drained, for reuse
	started   bool
	closed    bool
	scheduled bool           // a drain is due or under way
	drains    sync.WaitGroup // the drain under way, for stop
	inline    prometheus.Counter
}

func (q *emitQueue) start(t *Tap) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.started, q.inline = true, t.metrics.inlineEvents
	}
}

// send hands a finished event to the emitter.
func (q *emitQueue) send(t *Tap, ev schemas.Event) {
	q.run(func(now bool) { t.deliver(ev, now) })
}

// run does job on the queue's goroutine, or inline. now tells job it runs on a call's path,
// because the queue is full: its event must go to the emitter without waiting.
func (q *emitQueue) run(job func(now bool)) {
	q.mu.Lock()
	if q.started && !q.closed && len(q.jobs) < emitQueueLen {
		q.jobs = append(q.jobs, job)
		if !q.scheduled {
			q.scheduled = true
			q.drains.Add(1)
			time.AfterFunc(emitLinger, q.drain)
		}
		q.mu.Unlock()
		return
	}
	full := q.started && !q.closed
	q.mu.Unlock()
	if full {
		q.inline.Inc()
	}
	job(full)
}

// drain does the waiting jobs, and those that arrive meanwhile, in order.
func (q *emitQueue) drain() {
	defer q.drains.Done()
	for {
		q.mu.Lock()
		jobs := q.jobs
		if len(jobs) == 0 {
			q.scheduled = false
			q.mu.Unlock()
			return
		}
		q.jobs, q.spare = q.spare[:0], nil
		q.mu.Unlock()
		for _, job := range jobs {
			job(false)
		}
		clear(jobs) // let the jobs' events go
		q.mu.Lock()
		q.spare = jobs[:0]
		q.mu.Unlock()
	}
}

// stop hands over the events queued and stops the goroutine; later events go inline.
func (q *emitQueue) stop() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.drains.Wait()
}

// maxIdleConnsPerUpstream is how many idle connections the tap keeps to each upstream.
const maxIdleConnsPerUpstream = 256

// proxyBuffers lends the proxy its copy buffers, which it would otherwise allocate (32 KiB)
// for every response.
type proxyBuffers struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (proxyBuffers) Get() []byte { return *(copyBuffers.Get().(*[]byte)) }

func (proxyBuffers) Put(b []byte) {
	if cap(b) == 32<<10 {
		copyBuffers.Put(&b)
	}
}
