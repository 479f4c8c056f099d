package httptap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/collector/sse"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Headers of the Streamable HTTP transport.
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
)

// requestHeaders is what an HTTP request's headers say about who is talking.
type requestHeaders struct {
	sessionID, declaredAgent, protocolVersion string
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

	mu          sync.Mutex
	sessionID   string           // hdr.sessionID, or the id the response assigned
	pending     map[string]*call // requests awaiting their response on this exchange, by id
	acks        []*call          // notifications and answers awaiting the HTTP status
	status      int              // HTTP status of the response, 0 until it arrives
	respAt      time.Time
	upstreamErr bool
	rpcErrCode  int // code of a JSON-RPC error with a null id: it answers every request
	finished    bool

	// Response body observation, touched by the proxy goroutine only.
	sse         *sse.Parser
	collectJSON bool
	jsonBody    []byte
	jsonSize    int
	bodyEnded   bool
}

func (t *Tap) newExchange(r *http.Request, up *upstream, suffix string) *exchange {
	hdr := requestHeaders{
		sessionID:       r.Header.Get(headerSessionID),
		declaredAgent:   r.Header.Get(t.cfg.AgentHeader),
		protocolVersion: r.Header.Get(headerProtocolVersion),
	}
	ex := &exchange{
		tap: t, up: up, suffix: suffix, httpMethod: r.Method, start: time.Now(), hdr: hdr,
		sessionID: hdr.sessionID,
	}
	if hdr.sessionID != "" {
		t.expireAll(t.sessions.seen(ex.sessionKey(hdr.sessionID), hdr.declaredAgent, hdr.protocolVersion, ex.start))
	}
	return ex
}

func (ex *exchange) sessionKey(id string) sessionKey { return sessionKey{upstream: ex.up.name, id: id} }

func (ex *exchange) currentSessionID() string {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.sessionID
}

// observeRequest reads a POST body (up to MaxMessageBytes), puts it back for the proxy byte
// for byte, and registers what it says.
func (ex *exchange) observeRequest(r *http.Request) {
	t := ex.tap
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(t.cfg.MaxMessageBytes)+1))
	if err != nil || len(body) > t.cfg.MaxMessageBytes {
		// Too big, or the client's body broke off: forward what was read and the rest as is.
		r.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(body), r.Body), Closer: r.Body}
		if err == nil {
			size := len(body)
			if r.ContentLength > int64(size) {
				size = int(r.ContentLength)
			}
			ex.unparsed(schemas.ClientToServer, size, ex.start)
		}
		return
	}
	r.Body = readCloser{Reader: bytes.NewReader(body), Closer: r.Body}

	msgs, _, err := jsonrpc.Parse(body)
	if err != nil {
		t.log.Debug("unparsable request body passed through", "upstream", ex.up.name, "bytes", len(body))
		ex.unparsed(schemas.ClientToServer, len(body), ex.start)
		return
	}
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.IsRequest():
			ex.addPending(m)
		case m.IsNotification():
			c := ex.newCall(m, schemas.ClientToServer, schemas.KindNotification, ex.start)
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

// addPending registers a client request awaiting its response on this exchange.
func (ex *exchange) addPending(m *jsonrpc.Message) {
	t := ex.tap
	c := ex.newCall(m, schemas.ClientToServer, schemas.KindRequest, ex.start)
	id := m.IDString()
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if _, dup := ex.pending[id]; dup || len(ex.pending) >= t.cfg.MaxPending {
		t.metrics.untracked.WithLabelValues("pending_limit").Inc()
		return
	}
	if ex.pending == nil {
		ex.pending = map[string]*call{}
	}
	ex.pending[id] = c
	c.timer = time.AfterFunc(t.cfg.RequestTimeout, func() { ex.expire(id, c) })
}

// expire records a request that got no response within RequestTimeout.
func (ex *exchange) expire(id string, c *call) {
	ex.mu.Lock()
	if ex.pending[id] != c {
		ex.mu.Unlock()
		return
	}
	delete(ex.pending, id)
	c.sessionID = ex.sessionID
	ex.mu.Unlock()
	ex.tap.resolve(c, time.Now(), timedOut)
}

// clientAnswer pairs the client's answer to a server request.
func (ex *exchange) clientAnswer(m *jsonrpc.Message) {
	t := ex.tap
	c := t.sessions.takeServerCall(ex.sessionKey(ex.hdr.sessionID), m.IDString())
	if c == nil {
		t.metrics.untracked.WithLabelValues("unmatched_response").Inc()
		return
	}
	c.timer.Stop()
	t.resolve(c, ex.start, answered(m))
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
	if ex.hdr.sessionID != "" &&
		((ex.httpMethod == http.MethodDelete && resp.StatusCode < 500) || resp.StatusCode == http.StatusNotFound) {
		t.expireAll(t.sessions.forget(ex.sessionKey(ex.hdr.sessionID)))
	}
	if ex.httpMethod == http.MethodDelete {
		return
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mediaType == "text/event-stream":
		ex.sse = sse.NewParser(t.cfg.MaxMessageBytes, ex.onSSE)
	case mediaType == "application/json" && ex.httpMethod == http.MethodPost:
		ex.collectJSON = true
	default:
		return // 202s, plain-text errors: the exchange's end settles what is pending
	}
	resp.Body = &observedBody{ReadCloser: resp.Body, ex: ex}
}

// upstreamFailed records that the proxy got no response from the upstream.
func (ex *exchange) upstreamFailed(err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away; what is pending ends as a timeout
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
	if err != nil {
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
			ex.rpcErrCode = m.Error.Code
			ex.mu.Unlock()
			return
		}
		c := ex.pending[id]
		delete(ex.pending, id)
		sessionID := ex.sessionID
		ex.mu.Unlock()
		if c == nil {
			t.metrics.untracked.WithLabelValues("unmatched_response").Inc()
			return
		}
		c.timer.Stop()
		c.sessionID = sessionID
		if c.initialize {
			if pv := jsonrpc.DescribeResponse(m).ProtocolVersion; pv != "" {
				c.client.protocolVersion = pv
			}
			t.expireAll(t.sessions.initialized(ex.sessionKey(sessionID), c.client.name, c.client.version, c.client.protocolVersion, now))
		}
		t.resolve(c, now, answered(m))

	case m.IsRequest():
		c := ex.newCall(m, schemas.ServerToClient, schemas.KindRequest, now)
		c.sessionID = ex.currentSessionID()
		key, id := ex.sessionKey(c.sessionID), m.IDString()
		c.timer = time.AfterFunc(t.cfg.RequestTimeout, func() {
			if t.sessions.takeServerCallIf(key, id, c) {
				t.resolve(c, time.Now(), timedOut)
			}
		})
		ok, dropped := t.sessions.addServerCall(key, id, c, t.cfg.MaxPending, now)
		t.expireAll(dropped)
		if !ok {
			c.timer.Stop()
			t.metrics.untracked.WithLabelValues("pending_limit").Inc()
		}

	case m.IsNotification():
		c := ex.newCall(m, schemas.ServerToClient, schemas.KindNotification, now)
		c.sessionID = ex.currentSessionID()
		t.resolve(c, now, func(ev *schemas.Event) { ev.Status = schemas.StatusOK })
	}
}

// unparsed emits an event for traffic the tap passed through without understanding it.
func (ex *exchange) unparsed(dir schemas.Direction, size int, at time.Time) {
	ev := ex.tap.baseEvent(ex.up.name, dir, schemas.KindUnparsed, at)
	ev.Status = schemas.StatusMalformed
	if dir == schemas.ClientToServer {
		ev.RequestBytes = size
	} else {
		ev.ResponseBytes = size
	}
	sid := ex.currentSessionID()
	identify(&ev, sid, ex.tap.sessions.info(ex.sessionKey(sid)), ex.hdr, clientFacts{})
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
	pending, acks := ex.pending, ex.acks
	ex.pending, ex.acks = nil, nil
	status, respAt, upstreamErr, rpcErrCode, sessionID := ex.status, ex.respAt, ex.upstreamErr, ex.rpcErrCode, ex.sessionID
	ex.mu.Unlock()

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
			ev.ErrorCode = rpcErrCode
		default:
			ev.ErrorCode = status
		}
	}
	failed := upstreamErr || status >= 300
	for _, c := range pending {
		c.timer.Stop()
		c.sessionID = sessionID
		if failed {
			ex.tap.resolve(c, respAt, httpError)
		} else {
			ex.tap.resolve(c, now, timedOut) // the stream ended without the response
		}
	}
	for _, c := range acks {
		c.sessionID = sessionID
		switch {
		case failed:
			ex.tap.resolve(c, respAt, httpError)
		case status == 0:
			ex.tap.resolve(c, now, timedOut)
		default:
			ex.tap.resolve(c, respAt, func(ev *schemas.Event) { ev.Status = schemas.StatusOK })
		}
	}
}

// resolve completes a call's event and emits it.
func (t *Tap) resolve(c *call, at time.Time, fill func(*schemas.Event)) {
	ev := c.ev
	ev.LatencyMicros = micros(at.Sub(c.start))
	fill(&ev)
	identify(&ev, c.sessionID, t.sessions.info(sessionKey{upstream: ev.ServerID, id: c.sessionID}), c.hdr, c.client)
	t.emit(ev)
}

// expireAll emits timeouts for server requests whose session was forgotten.
func (t *Tap) expireAll(calls []*call) {
	now := time.Now()
	for _, c := range calls {
		c.timer.Stop()
		t.resolve(c, now, timedOut)
	}
}

func timedOut(ev *schemas.Event) { ev.Status = schemas.StatusTimeout }

// answered fills an event from the response m.
func answered(m *jsonrpc.Message) func(*schemas.Event) {
	return func(ev *schemas.Event) {
		f := jsonrpc.DescribeResponse(m)
		ev.ResponseBytes = len(m.Raw)
		ev.ResultHash = f.ResultHash
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
	b.ex.finish()
	return err
}

type readCloser struct {
	io.Reader
	io.Closer
}
