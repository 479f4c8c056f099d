package otlp

import (
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// One MCP call traced on both ends is two spans: the caller's (the MCP client's CLIENT span of
// a request, or the server's of a request it sends) and the callee's, a SERVER span whose parent
// is the caller's span (the semantic conventions make the caller's span the parent through
// params._meta). The receiver makes one event of such a pair, the caller's: it is the side that
// knows the agent. A callee span that has a parent is held until its caller's span arrives (then
// it is dropped) or the pairing window ends (then it is the call's event). A callee whose caller
// has already been seen is dropped. Two spans of a call that reach the receiver more than the
// window apart are both counted.

// Defaults of the pairing of callers and callees.
const (
	// defaultPairWindow covers the skew between two processes' exports: twice the SDKs' default
	// batch delay (5 s).
	defaultPairWindow = 10 * time.Second
	// defaultMaxCalls bounds the calls remembered at once (about 1,600 calls a second over the
	// window); past it the oldest is forgotten early, and a span it held is emitted.
	defaultMaxCalls = 16384
)

// side is the part a span plays in a call.
type side uint8

const (
	sideAlone  side = iota // a SERVER span without a parent: nothing to pair it with
	sideCaller             // any other kind: the call's event; a callee of it is dropped
	sideCallee             // a SERVER span with a parent: waits for its caller
)

// callKey is the caller span's trace and span id.
type callKey struct {
	trace [16]byte
	span  [8]byte
}

func newCallKey(traceID, spanID []byte) callKey {
	var k callKey
	copy(k.trace[:], traceID)
	copy(k.span[:], spanID)
	return k
}

// pending is an event on its way to the emitter, with what the receiver needs besides it.
type pending struct {
	ev   schemas.Event
	meta eventMeta
}

// call is what is remembered of one call during the window.
type call struct {
	key     callKey
	method  string
	expires time.Time
	caller  bool     // the caller's span was seen (and emitted)
	held    *pending // the callee's event, waiting for the caller's span
}

// pairer pairs callers and callees. It is safe for concurrent use.
type pairer struct {
	window   time.Duration
	maxCalls int

	mu    sync.Mutex
	calls map[callKey]*call
	queue []*call // the calls in arrival order, which is expiry order; one each
}

func newPairer(window time.Duration, maxCalls int) *pairer {
	return &pairer{window: window, maxCalls: maxCalls, calls: map[callKey]*call{}}
}

// add takes the event of one span at time now and appends to out what is to be emitted: calls
// whose window ended, and this event unless it is a callee being held or a duplicate. dup counts
// the spans dropped because the other side of their call stands for it.
func (p *pairer) add(now time.Time, e pending, out []pending) (_ []pending, dup int) {
	if e.meta.side == sideAlone {
		return append(out, e), 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out = p.expireLocked(now, out)
	c := p.calls[e.meta.call]
	if c == nil {
		if len(p.calls) >= p.maxCalls {
			out = p.popLocked(out)
		}
		c = &call{key: e.meta.call, method: e.ev.Method, expires: now.Add(p.window)}
		p.calls[c.key] = c
		p.queue = append(p.queue, c)
	}
	if c.method != e.ev.Method {
		return append(out, e), 0 // a span of another call that happens to hang off it
	}
	if e.meta.side == sideCaller {
		if c.held != nil {
			c.held, dup = nil, 1
		}
		c.caller = true
		return append(out, e), dup
	}
	switch {
	case c.caller:
		return out, 1
	case c.held != nil && c.held.ev.SpanID != e.ev.SpanID:
		return append(out, e), 0 // a second server span of one caller (a retried request): its own
	}
	c.held = &e // a retried callee span replaces itself
	return out, 0
}

// expire appends the events held by calls whose window ended before now, and forgets them.
func (p *pairer) expire(now time.Time, out []pending) []pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.expireLocked(now, out)
}

func (p *pairer) expireLocked(now time.Time, out []pending) []pending {
	for len(p.queue) > 0 && !now.Before(p.queue[0].expires) {
		out = p.popLocked(out)
	}
	return out
}

// popLocked forgets the oldest call, appending the event it held.
func (p *pairer) popLocked(out []pending) []pending {
	c := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	delete(p.calls, c.key)
	if c.held != nil {
		out = append(out, *c.held)
	}
	return out
}

// flush appends every held event and forgets all calls.
func (p *pairer) flush(out []pending) []pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) > 0 {
		out = p.popLocked(out)
	}
	return out
}

// len is the number of calls remembered.
func (p *pairer) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}
