package httptap

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// The HTTP+SSE transport of protocol revision 2024-11-05 ("legacy SSE"): the client opens a GET
// stream whose first event, named endpoint, carries the URL the client must POST its messages
// to (e.g. /message?sessionId=…). POSTs are answered 202; responses and server messages all
// arrive on the GET stream.
//
// The tap rewrites the one thing that must change for the POSTs to come back through it: the
// endpoint event's URL. The announced URL is resolved against the URL the tap fetched the
// stream from; when it is on the upstream's host it becomes a path on the tap:
//
//   - under the upstream's URL path (or that path itself): /mcp/{name} followed by the rest of
//     the path, which the tap forwards back to the same upstream path, as for any route;
//   - elsewhere on that host (e.g. the stream at /sse, the POSTs at /message):
//     /mcp/{name}/-/message, which the tap forwards to /message on the upstream. Only paths an
//     endpoint event announced are forwarded this way; others are 404.
//
// The query (which carries the session id) is kept. An endpoint on another host is passed on
// untouched: the client then posts there directly and only the GET stream is observed.
//
// POSTs are matched to their stream by the session id in the query (sessionId, sessionid,
// session_id or session; else the whole query), which is also the events' SessionID. An
// endpoint without a query names its session by its path (e.g. /messages/{id}): the path is
// then the session id, and an escaped path of that kind is reachable while its stream is open,
// without taking one of the upstream's announced paths.

// legacyEndpointEvent is the SSE event type that announces the POST endpoint.
const legacyEndpointEvent = "endpoint"

// legacyTransportName is Event.Transport for the legacy transport.
const legacyTransportName = "sse"

// legacyEscape introduces a tap path that names an absolute path on the upstream's host.
const legacyEscape = "/-"

// Bounds of the legacy bookkeeping.
const (
	maxLegacyPaths    = 16       // escaped endpoint paths remembered per upstream
	maxEndpointHeld   = 16 << 10 // bytes of one block held back while waiting for a stream's first event
	legacySessionsMin = 16
)

// legacySession is one legacy GET stream and the requests awaiting their responses on it.
type legacySession struct {
	id     string
	byPath bool // id is the endpoint's path, which had no query
	pend   pendingSet
}

// legacyRegistry holds the legacy sessions whose GET stream is open, and the endpoint paths
// outside their upstream's path that upstreams announced.
type legacyRegistry struct {
	mu       sync.Mutex
	sessions map[sessionKey]*legacySession
	paths    map[string]map[string]bool // upstream name → announced absolute paths
	byPath   atomic.Int64               // sessions keyed by their endpoint's path, so POSTs need not look
}

// legacySessionID names a legacy session by its endpoint's query.
func legacySessionID(q url.Values, rawQuery string) string {
	for _, k := range []string{"sessionId", "sessionid", "session_id", "session"} {
		if v := q.Get(k); v != "" {
			return v
		}
	}
	return rawQuery
}

func (r *legacyRegistry) add(upstream string, ls *legacySession, max int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := sessionKey{upstream: upstream, id: ls.id}
	if r.sessions == nil {
		r.sessions = map[sessionKey]*legacySession{}
	}
	if _, taken := r.sessions[k]; taken || len(r.sessions) >= max {
		return false
	}
	r.sessions[k] = ls
	if ls.byPath {
		r.byPath.Add(1)
	}
	return true
}

func (r *legacyRegistry) remove(upstream string, ls *legacySession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := sessionKey{upstream: upstream, id: ls.id}
	if r.sessions[k] == ls {
		delete(r.sessions, k)
		if ls.byPath {
			r.byPath.Add(-1)
		}
	}
}

// lookup returns the open legacy session a POST's query names, or nil.
func (r *legacyRegistry) lookup(upstream string, q url.Values, rawQuery string) *legacySession {
	return r.find(upstream, legacySessionID(q, rawQuery), false)
}

// find returns the open legacy session named id, by its endpoint's query or path.
func (r *legacyRegistry) find(upstream, id string, byPath bool) *legacySession {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ls := r.sessions[sessionKey{upstream: upstream, id: id}]; ls != nil && ls.byPath == byPath {
		return ls
	}
	return nil
}

// legacySessionOf returns the open legacy session a POST to the route suffix with URL u
// belongs to, or nil: the one its query names or, without a query, the one whose endpoint is
// the path the POST is forwarded to.
func (t *Tap) legacySessionOf(up *upstream, suffix string, u *url.URL) *legacySession {
	if u.RawQuery != "" {
		return t.legacy.lookup(up.name, u.Query(), u.RawQuery)
	}
	if t.legacy.byPath.Load() == 0 {
		return nil
	}
	path := up.url.Path
	if suffix != "" {
		path = upstreamPath(up, suffix)
	}
	return t.legacy.find(up.name, path, true)
}

func (r *legacyRegistry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// announce remembers an endpoint path outside the upstream's URL path; false when the
// upstream announced too many different ones.
func (r *legacyRegistry) announce(upstream, path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paths == nil {
		r.paths = map[string]map[string]bool{}
	}
	ps := r.paths[upstream]
	if ps[path] {
		return true
	}
	if len(ps) >= maxLegacyPaths {
		return false
	}
	if ps == nil {
		ps = map[string]bool{}
		r.paths[upstream] = ps
	}
	ps[path] = true
	return true
}

// routable reports whether a route suffix may be forwarded: any suffix but an escaped path
// the upstream never announced and that is not the endpoint of an open path-keyed session.
func (r *legacyRegistry) routable(upstream, suffix string) bool {
	rest, escaped := strings.CutPrefix(suffix, legacyEscape)
	if !escaped || (rest != "" && rest[0] != '/') {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paths[upstream][rest] {
		return true
	}
	ls := r.sessions[sessionKey{upstream: upstream, id: rest}]
	return ls != nil && ls.byPath
}

// upstreamPath is the upstream path a route suffix is forwarded to.
func upstreamPath(up *upstream, suffix string) string {
	if rest, ok := strings.CutPrefix(suffix, legacyEscape+"/"); ok {
		return "/" + rest
	}
	return strings.TrimSuffix(up.url.Path, "/") + suffix
}

// tapEndpoint maps the endpoint a legacy upstream announced (resolved to target) to the URI the
// client must post to on the tap, or false when target is not on the upstream's host, or is
// an escaped path past the upstream's limit. pathSession says target's path is the key of an
// open legacy session, which makes it routable while that session lasts.
func (t *Tap) tapEndpoint(up *upstream, target, fetched *url.URL, pathSession bool) (string, bool) {
	if !strings.EqualFold(target.Scheme, fetched.Scheme) || !strings.EqualFold(target.Host, fetched.Host) {
		return "", false
	}
	route := "/mcp/" + up.name
	base := strings.TrimSuffix(up.url.Path, "/")
	path := target.Path
	switch rest, under := strings.CutPrefix(path, base+"/"); {
	case path == up.url.Path || path == base:
		path = route
	case under && rest != "-" && !strings.HasPrefix(rest, "-/"):
		path = route + "/" + rest
	default:
		if !pathSession && !t.legacy.announce(up.name, path) {
			return "", false
		}
		path = route + legacyEscape + path
	}
	return (&url.URL{Path: path, RawQuery: target.RawQuery}).RequestURI(), true
}

// joinLegacy attaches the exchange to a legacy session: its requests await their responses on
// the session's GET stream, and its events carry the session's id.
func (ex *exchange) joinLegacy(ls *legacySession) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.legacy, ex.pend, ex.sessionID, ex.transport = ls, &ls.pend, ls.id, legacyTransportName
}

// watchForEndpoint wraps a GET stream's body so that, if its first event is a legacy endpoint
// announcement, the client gets it rewritten to route through the tap.
func (ex *exchange) watchForEndpoint(resp *http.Response) {
	// The stream's length may change; SSE streams are not sent with one anyway.
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Body = &endpointWatcher{ReadCloser: resp.Body, ex: ex, fetched: resp.Request.URL}
}

// onEndpoint starts a legacy session for the endpoint the upstream announced and returns what
// the client should be told instead.
func (ex *exchange) onEndpoint(announced string, fetched *url.URL) string {
	t := ex.tap
	ref, err := url.Parse(strings.TrimSpace(announced))
	if err != nil {
		t.log.Warn("legacy SSE endpoint event not understood; passed on untouched", "upstream", ex.up.name)
		return announced
	}
	target := fetched.ResolveReference(ref)
	ls := &legacySession{id: legacySessionID(target.Query(), target.RawQuery)}
	if target.RawQuery == "" {
		ls.id, ls.byPath = target.Path, true
	}
	added := t.legacy.add(ex.up.name, ls, max(t.cfg.MaxSessions, legacySessionsMin))
	if added {
		ex.joinLegacy(ls)
		t.expireAll(t.sessions.seen(ex.sessionKey(ls.id), ex.hdr.ident, ex.hdr.protocolVersion, ex.start))
	} else {
		t.metrics.untracked.WithLabelValues("legacy_session_limit").Inc()
	}
	rewritten, ok := t.tapEndpoint(ex.up, target, fetched, added && ls.byPath)
	if !ok {
		t.log.Warn("legacy SSE endpoint is not on the upstream's host, or announces too many paths; "+
			"passed on untouched, so the client will post past the tap", "upstream", ex.up.name)
		return announced
	}
	return rewritten
}

// endpointWatcher passes a GET stream through, holding back only the bytes of its first event
// until that event is complete (a client cannot use a partial event anyway). If the event is
// a legacy endpoint announcement, its data line is rewritten; everything else, and everything
// after it, passes byte for byte. Blocks before it that dispatch no event (comments, or only
// retry or id, which a server may send first) pass as soon as they are complete.
type endpointWatcher struct {
	io.ReadCloser
	ex      *exchange
	fetched *url.URL
	held    []byte   // bytes of the current block so far
	blk     sseBlock // what is parsed of them
	out     []byte   // bytes ready for the client
	begun   bool     // a block was passed on: held is no longer at the stream's start
	passing bool     // the first event was handled: pass through
	err     error    // the upstream's read error, returned once out is drained
}

func (w *endpointWatcher) Read(p []byte) (int, error) {
	for {
		if len(w.out) > 0 {
			n := copy(p, w.out)
			w.out = w.out[n:]
			return n, nil
		}
		if w.err != nil {
			return 0, w.err
		}
		if w.passing {
			return w.ReadCloser.Read(p)
		}
		n, err := w.ReadCloser.Read(p)
		w.held = append(w.held, p[:n]...)
		w.scan()
		if err != nil {
			w.out, w.held, w.passing, w.err = append(w.out, w.held...), nil, true, err
		}
	}
}

// scan releases the complete blocks held, up to and including the first event. A block whose
// blank line starts past maxEndpointHeld is given up on, complete or not, so that how the
// stream is cut into reads never changes the outcome.
func (w *endpointWatcher) scan() {
	for !w.passing {
		ok := w.blk.parse(w.held, !w.begun)
		if !ok && len(w.held) < maxEndpointHeld {
			return
		}
		b := w.blk
		if !ok || b.blank >= maxEndpointHeld {
			w.out, w.held, w.passing = append(w.out, w.held...), nil, true
			return
		}
		block := w.held[:b.end]
		if b.dataLines == 0 {
			// No event: the client waits for the next block, and so does the tap.
			w.out = append(w.out, block...)
			w.held, w.blk, w.begun = w.held[b.end:], sseBlock{}, true
			continue
		}
		if b.event == legacyEndpointEvent && b.dataLines == 1 {
			data := string(block[b.dataStart:b.dataEnd])
			if rewritten := w.ex.onEndpoint(data, w.fetched); rewritten != data {
				w.out = append(w.out, block[:b.dataStart]...)
				if !b.dataColon {
					w.out = append(w.out, ':') // a bare "data" line: the value needs its colon
				}
				w.out = append(w.out, rewritten...)
				block = block[b.dataEnd:]
			}
		}
		w.out = append(w.out, block...)
		w.out = append(w.out, w.held[b.end:]...)
		w.held, w.passing = nil, true
	}
}

// sseBlock describes the block at the start of a stream's bytes, as far as they were parsed.
type sseBlock struct {
	line, search       int    // where the line being parsed starts; where to look for its end
	end                int    // bytes up to and including the blank line that ends the block
	blank              int    // where that blank line starts
	event              string // the event field
	dataLines          int    // the block dispatches an event if it has any
	dataStart, dataEnd int    // the value of the last data line
	dataColon          bool   // the last data line has a colon (a bare "data" has none)
}

// parse reads on in b, which holds what it held at the last call and maybe more; false while
// the block is not complete. atStart says b is at the stream's start, where a byte-order mark
// may come first.
func (blk *sseBlock) parse(b []byte, atStart bool) bool {
	if blk.line == 0 && atStart && bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		blk.line, blk.search = 3, 3
	}
	for {
		i := blk.line
		j := bytes.IndexAny(b[blk.search:], "\r\n")
		if j < 0 {
			blk.search = len(b)
			return false
		}
		lineEnd, next := blk.search+j, blk.search+j+1
		if b[lineEnd] == '\r' {
			switch {
			case next < len(b) && b[next] == '\n':
				next++
			case next == len(b) && lineEnd > i:
				blk.search = lineEnd
				return false // a CR ending a line may be followed by its LF
			}
		}
		blk.line, blk.search = next, next
		line := b[i:lineEnd]
		if len(line) == 0 {
			blk.end, blk.blank = next, i
			return true
		}
		if line[0] == ':' {
			continue
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		valueStart := lineEnd
		if found {
			valueStart = i + len(name) + 1
		}
		if len(value) > 0 && value[0] == ' ' {
			value, valueStart = value[1:], valueStart+1
		}
		switch string(name) {
		case "event":
			blk.event = string(value)
		case "data":
			blk.dataLines++
			blk.dataStart, blk.dataEnd, blk.dataColon = valueStart, valueStart+len(value), found
		}
	}
}
