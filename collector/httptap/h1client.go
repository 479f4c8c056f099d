package httptap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/sockpeek"
)

// h1Pool is the tap's own HTTP/1.1 client for one plain-HTTP upstream: a pool of keep-alive
// connections on which the handler's goroutine writes the request and reads the response
// itself. http.Transport hands every request to a writer goroutine and every response from a
// reader goroutine per connection; on loopback those handoffs cost more than the tap's own
// work, and its reader goroutine cannot tell the tap when the upstream has nothing more to
// send, which is when a stream must be flushed to the client (h1Conn.Read).
//
// Only requests whose body the tap holds (or that have none) use it; see Tap.forward.
type h1Pool struct {
	addr    string // host:port to dial
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	closed bool
}

// h1IdleTimeout is how long an idle connection is kept (http.DefaultTransport's
// IdleConnTimeout).
const h1IdleTimeout = 90 * time.Second

// h1MaxBody is the largest request body sent on the tap's own connections: written whole
// before the response is read, it must fit the sockets' buffers in case the upstream answers
// without reading it. Larger bodies go through http.Transport, which writes and reads at once.
const h1MaxBody = 64 << 10

// h1MaxHeaderBytes bounds a response's headers (http.Transport's default).
const h1MaxHeaderBytes = 10 << 20

func newH1Pool(addr string) *h1Pool {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second} // http.DefaultTransport's
	return &h1Pool{addr: addr, dial: d.DialContext, maxIdle: maxIdleConnsPerUpstream}
}

// h1Conn is one connection to the upstream.
type h1Conn struct {
	net.Conn
	pool   *h1Pool
	br     *bufio.Reader // nil while idle
	idleAt time.Time
	reused bool

	// Set for one exchange.
	flush     *streamFlusher // flushed before the connection may wait for the upstream
	readLimit int64          // bytes the response headers may still take; 0: no limit
	nread     int64          // bytes read in this exchange
}

// Read reads from the upstream. Whatever the tap has written to its client is flushed first:
// this is the one place the tap may wait for the upstream, and a stream's bytes must not wait
// with it.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.flush != nil {
		c.flush.flushPending()
	}
	if c.readLimit > 0 {
		if c.readLimit == 1 {
			return 0, fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", h1MaxHeaderBytes)
		}
		if int64(len(p)) >= c.readLimit {
			p = p[:c.readLimit-1]
		}
	}
	n, err := c.Conn.Read(p)
	c.nread += int64(n)
	if c.readLimit > 0 {
		c.readLimit -= int64(n)
	}
	return n, err
}

var (
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	h1Writes  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// get returns an idle connection that is still open, or a new one.
func (p *h1Pool) get(ctx context.Context) (*h1Conn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(c.idleAt) < h1IdleTimeout && connUsable(c.Conn) {
			c.reused = true
			c.br = h1Readers.Get().(*bufio.Reader)
			c.br.Reset(c)
			return c, nil
		}
		_ = c.Conn.Close() // the upstream closed it, or it idled too long
	}
	conn, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{Conn: conn, pool: p}
	c.br = h1Readers.Get().(*bufio.Reader)
	c.br.Reset(c)
	return c, nil
}

// put returns a connection whose exchange ended cleanly to the pool.
func (p *h1Pool) put(c *h1Conn) {
	if c.br.Buffered() > 0 { // the upstream sent more than its response
		p.discard(c)
		return
	}
	c.br.Reset(nil)
	h1Readers.Put(c.br)
	c.br, c.flush, c.readLimit, c.nread = nil, nil, 0, 0
	c.idleAt = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		_ = c.Conn.Close()
		return
	}
	p.idle = append(p.idle, c)
	// The least recently used are first: close those that idled too long.
	var expired []*h1Conn
	for len(p.idle) > 1 && c.idleAt.Sub(p.idle[0].idleAt) >= h1IdleTimeout {
		expired = append(expired, p.idle[0])
		p.idle[0] = nil
		p.idle = p.idle[1:]
	}
	p.mu.Unlock()
	for _, e := range expired {
		_ = e.Conn.Close()
	}
}

// discard closes a connection that cannot be reused.
func (p *h1Pool) discard(c *h1Conn) {
	_ = c.Conn.Close()
	if c.br != nil {
		c.br.Reset(nil)
		h1Readers.Put(c.br)
		c.br = nil
	}
}

// closeIdle closes the idle connections; with stop, for good (connections returned later are
// closed too).
func (p *h1Pool) closeIdle(stop bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if stop {
		p.closed = true
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.Conn.Close()
	}
}

func (p *h1Pool) idleLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// aLongTimeAgo is a deadline in the past, to cut a connection's blocked reads and writes.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip sends req (its body, if any, a *bytes.Reader of at most h1MaxBody) and reads the
// response headers. 1xx responses before the final one are handed to got1xx. The response's
// body must be read to its end or closed; flush, if not nil, is flushed whenever reading it
// may wait for the upstream.
func (p *h1Pool) roundTrip(ctx context.Context, req *http.Request, flush *streamFlusher, got1xx func(*http.Response)) (*http.Response, error) {
	for {
		c, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, retry, err := c.exchange(ctx, req, flush, got1xx)
		if err == nil {
			return resp, nil
		}
		if !retry {
			return nil, err
		}
		// The upstream closed a reused connection before it saw the request: try another.
	}
}

// exchange sends req on c and reads the response headers. On error c is closed, and retry
// reports whether the request may be sent again (as http.Transport would: c was reused and
// the upstream cannot have acted on the request).
func (c *h1Conn) exchange(ctx context.Context, req *http.Request, flush *streamFlusher, got1xx func(*http.Response)) (resp *http.Response, retry bool, err error) {
	p := c.pool
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		p.discard(c)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, false, ctxErr
		}
		return nil, false, err
	}

	buf := h1Writes.Get().(*bytes.Buffer)
	buf.Reset()
	err = req.Write(buf)
	if err == nil {
		var n int
		n, err = c.Conn.Write(buf.Bytes())
		if err != nil && n == 0 && c.reused && ctx.Err() == nil {
			putWriteBuffer(buf)
			stop()
			p.discard(c)
			return nil, true, err
		}
	}
	putWriteBuffer(buf)
	if err != nil {
		return fail(err)
	}

	c.flush = flush
	for {
		c.readLimit = h1MaxHeaderBytes + 1
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			if c.reused && c.nread == 0 && replayable(req) && ctx.Err() == nil &&
				(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err)) {
				stop()
				p.discard(c)
				return nil, true, err
			}
			return fail(err)
		}
		c.readLimit = 0
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if got1xx != nil {
			got1xx(resp)
		}
	}
	resp.Body = &h1Body{ReadCloser: resp.Body, c: c, stop: stop, keep: !resp.Close}
	return resp, false, nil
}

func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func putWriteBuffer(b *bytes.Buffer) {
	if b.Cap() <= 2*h1MaxBody {
		h1Writes.Put(b)
	}
}

// replayable is http.Request.isReplayable: a request that may be sent twice.
func replayable(r *http.Request) bool {
	if r.Body != nil && r.Body != http.NoBody {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

// h1Body is a response body on a pooled connection: read to its end, it gives the connection
// back; closed before, it closes it (draining an unfinished stream could take forever).
type h1Body struct {
	io.ReadCloser
	c    *h1Conn
	stop func() bool // stops cutting the connection when the request's context ends
	keep bool        // the connection may carry another request
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.release(err == io.EOF)
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.release(false)
	return nil
}

func (b *h1Body) release(ended bool) {
	if b.done {
		return
	}
	b.done = true
	c := b.c
	// stop is false when the context's end already cut the connection.
	if b.stop() && ended && b.keep {
		c.pool.put(c)
		return
	}
	c.pool.discard(c)
}

// streamFlusher flushes what the tap has written of a streamed response before the tap waits
// for more of it.
type streamFlusher struct {
	rc      *http.ResponseController
	pending bool
}

func (f *streamFlusher) flushPending() {
	if f.pending {
		f.pending = false
		_ = f.rc.Flush() // a client that went away fails the next write
	}
}

// connUsable reports whether an idle connection can carry a request: the upstream has not
// closed it (nor sent anything unasked, which would be read as the next response).
// http.Transport learns this from a goroutine reading each idle connection; one peek is
// cheaper. Where the socket cannot be peeked at, a request on a connection the upstream closed
// fails, and is retried when http.Transport would retry it (h1Conn.exchange).
func connUsable(c net.Conn) bool {
	s := sockpeek.Peek(c)
	return s == sockpeek.Empty || s == sockpeek.Unknown
}
