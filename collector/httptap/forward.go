package httptap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// The tap forwards like httputil.ReverseProxy with the tap's Rewrite (which it used before,
// and still uses for protocol upgrades): the same hop-by-hop header handling, Host set to the
// upstream's (its DNS-rebinding protection wants that), the client's Forwarded and
// X-Forwarded-* headers kept and none added, no User-Agent added, 1xx responses and trailers
// passed on, streams (SSE, or a body of unknown length) flushed as they arrive, 502 when the
// upstream cannot be reached, and a response cut short cut short for the client too.
//
// What differs is the cost. A plain-HTTP upstream is reached on the tap's own connections
// (h1Pool), without http.Transport's goroutine handoffs; a request body the tap has read is
// sent with its headers in one write (http.Transport flushes the headers of a body it does not
// know to be in memory on their own, and the upstream then waits for a second packet); and a
// stream is flushed only when the tap would otherwise wait for the upstream, so headers and
// the first event, or an event and the end of the stream, leave in one write and never wait.

// hopHeaders are the hop-by-hop headers ReverseProxy removes (RFC 9110 7.6.1 and RFC 2616).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// forwardedHeaders are the client's forwarding headers, passed on as they are.
var forwardedHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// forward sends r to the exchange's upstream and streams the answer back to w. body is the
// request body when the tap holds all of it (held), else r.Body still has (the rest of) it.
func (t *Tap) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, ex *exchange, body []byte, held bool) {
	out := t.outgoing(r, ex)
	h1 := ex.up.h1
	switch {
	case held && len(body) > 0:
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		if len(body) > h1MaxBody {
			h1 = nil
		}
	case !held && r.ContentLength != 0:
		// A body too big to parse, or that broke off: streamed, as ReverseProxy does.
		out.Body, out.ContentLength = &noopCloseReader{rc: r.Body}, r.ContentLength
		defer out.Body.Close()
		h1 = nil
	}
	if len(r.Trailer) > 0 {
		out.Trailer, out.ContentLength = r.Trailer, -1 // chunked, so the trailers can follow
		h1 = nil
	}

	var (
		resp  *http.Response
		err   error
		flush *streamFlusher
	)
	if h1 != nil {
		flush = &streamFlusher{rc: http.NewResponseController(w)}
		resp, err = h1.roundTrip(ctx, out, flush, func(info *http.Response) {
			write1xx(w, info.StatusCode, info.Header)
		})
	} else {
		resp, err = t.roundTripTransport(ctx, w, out, ex)
	}
	if err != nil {
		t.upstreamError(w, ex, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// Only asked-for upgrades switch, and those go through t.proxy.
		_ = resp.Body.Close()
		t.upstreamError(w, ex, fmt.Errorf("upstream switched protocols to %q unasked", resp.Header.Get("Upgrade")))
		return
	}

	removeHopByHopHeaders(resp.Header)
	ex.observeResponse(resp)
	dst := w.Header()
	for k, vv := range resp.Header {
		if dst[k] == nil {
			dst[k] = vv
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
	// The Trailer header is not in the response's headers: announce what it declared.
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)

	if err := t.copyBody(w, resp, flush); err != nil {
		defer resp.Body.Close()
		// The response is cut: all that can be done is cut the client's too (ReverseProxy's
		// choice, golang/go#23643); the server recovers this panic.
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	if resp.ContentLength >= 0 {
		// All of a response of known length is written: let it go now, not after the
		// bookkeeping below and the handler's return (the server then has nothing left to send).
		if flush != nil {
			_ = flush.rc.Flush()
		} else {
			_ = http.NewResponseController(w).Flush()
		}
	}
	_ = resp.Body.Close() // now rather than deferred: this fills resp.Trailer

	if len(resp.Trailer) > 0 {
		// Force chunking, so the server does not send a short body with a Content-Length.
		_ = http.NewResponseController(w).Flush()
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			dst.Add(http.TrailerPrefix+k, v)
		}
	}
}

// outgoing is the request the tap sends upstream for r, without its body.
func (t *Tap) outgoing(r *http.Request, ex *exchange) *http.Request {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopByHopHeaders(h)
	// Tell the upstream trailers are fine if the client said so (as ReverseProxy does).
	if headerHasToken(r.Header["Te"], "trailers") {
		h.Set("Te", "trailers")
	}
	// Be transparent: keep the forwarding headers the client sent, add none.
	for _, k := range forwardedHeaders {
		if v, ok := r.Header[k]; ok {
			h[k] = v
		}
	}
	// Ask for an identity-encoded body, which every client accepts, so the tap can read it.
	h.Del("Accept-Encoding")
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // send none rather than Go's
	}

	up := ex.up.url
	u := &url.URL{Scheme: up.Scheme, Host: up.Host, Path: up.Path, RawPath: up.RawPath}
	if ex.suffix != "" {
		u.Path, u.RawPath = upstreamPath(ex.up, ex.suffix), ""
	}
	q := cleanQuery(r.URL.RawQuery)
	if up.RawQuery == "" || q == "" {
		u.RawQuery = up.RawQuery + q
	} else {
		u.RawQuery = up.RawQuery + "&" + q
	}
	// Host stays empty: the request goes with the upstream's, for its DNS-rebinding check.
	return &http.Request{
		Method: r.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
	}
}

// roundTripTransport sends out with http.Transport: TLS upstreams (which may speak HTTP/2),
// upstreams reached through a proxy from the environment, and bodies the tap streams or
// that are too big for h1Pool.
func (t *Tap) roundTripTransport(ctx context.Context, w http.ResponseWriter, out *http.Request, ex *exchange) (*http.Response, error) {
	var (
		mu   sync.Mutex
		done bool
	)
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			if !done { // once RoundTrip has returned, the headers are the final response's
				write1xx(w, code, http.Header(header))
			}
			return nil
		},
	}
	out = out.WithContext(httptrace.WithClientTrace(ctx, trace))
	tr := t.transport
	if ex.up.transport != nil {
		tr = ex.up.transport
	}
	resp, err := tr.RoundTrip(out)
	mu.Lock()
	done = true
	mu.Unlock()
	return resp, err
}

// write1xx passes an informational response on to the client.
func write1xx(w http.ResponseWriter, code int, header http.Header) {
	h := w.Header()
	for k, vv := range header {
		h[k] = append(h[k], vv...)
	}
	w.WriteHeader(code)
	clear(h) // WriteHeader does not for 1xx responses
}

// copyBody copies the response body to w. A stream is flushed as it arrives: by h1Pool's
// connection whenever the tap would wait for the upstream (flush), else after every write.
func (t *Tap) copyBody(w http.ResponseWriter, resp *http.Response, flush *streamFlusher) error {
	stream := mediaType(resp.Header.Get("Content-Type")) == "text/event-stream" || resp.ContentLength == -1
	var flushNow func() error
	if stream {
		if flush != nil {
			flush.pending = true // the headers, if nothing follows them yet
		} else {
			flushNow = http.NewResponseController(w).Flush
			_ = flushNow()
		}
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, context.Canceled) {
			t.log.Debug("MCP upstream response cut", "err", rerr)
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			switch {
			case flush != nil:
				flush.pending = stream
			case flushNow != nil:
				_ = flushNow()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// upstreamError answers 502 for a request the upstream did not answer.
func (t *Tap) upstreamError(w http.ResponseWriter, ex *exchange, err error) {
	ex.upstreamFailed(err)
	if !errors.Is(err, context.Canceled) {
		t.log.Warn("MCP upstream unreachable", "upstream", ex.up.name, "err", err)
	}
	w.WriteHeader(http.StatusBadGateway)
}

// removeHopByHopHeaders removes the hop-by-hop headers and those the Connection header names.
func removeHopByHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
}

// headerHasToken reports whether a comma-separated header holds token (case-insensitively).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

// maxQueryParams is Go's limit on the parameters url.ParseQuery parses.
const maxQueryParams = 10000

// cleanQuery is a query as ReverseProxy with Rewrite passes it on: as it is, unless it is
// unparsable (a ';', a bad escape, too many parameters), when it is re-encoded without the
// parameters that could not be parsed.
func cleanQuery(s string) string {
	reencode := func() string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > maxQueryParams {
		return reencode()
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';':
			return reencode()
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode()
			}
			i += 2
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// noopCloseReader is a request body whose Close leaves the client's body alone (http.Transport
// closes it when it gives up, which must not close the server's request body under the
// handler), and after which Reads fail (the transport may outlive the handler).
type noopCloseReader struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

func (r *noopCloseReader) Read(p []byte) (int, error) {
	if r.closed.Load() {
		return 0, errors.New("read of a request body after its handler returned")
	}
	return r.rc.Read(p)
}

func (r *noopCloseReader) Close() error {
	r.closed.Store(true)
	return nil
}
