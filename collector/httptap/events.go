package httptap

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mcpwatch/mcpwatch/collector/identity"
	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// transportName is Event.Transport for everything this tap sees.
const transportName = "streamable_http"

// Agent attribution sources (Event.AgentSource); identity has them all.
const (
	agentFromHeader     = identity.SourceHeader
	agentFromClientInfo = identity.SourceClientInfo
)

// call is an operation waiting for its outcome: a request for its response, a notification
// for its HTTP status, or a server request for the client's answer.
type call struct {
	ev    schemas.Event // what is known since the request was seen
	start time.Time     // when the request was seen, for latency (monotonic)
	// client is what the message itself said about the client (initialize params or _meta).
	client clientFacts
	// initialize is true for an initialize request, whose answer defines the session.
	initialize bool
	// sessionID and hdr are the session and the request headers the call is attributed to.
	sessionID string
	hdr       requestHeaders
	// track is the call's bookkeeping across HTTP exchanges (exchange.go).
	track tracking
}

type clientFacts struct {
	name, version, protocolVersion string
	// baggageAgent is the agent id in params._meta.baggage.
	baggageAgent string
}

// newCall starts an operation from a parsed message.
func (ex *exchange) newCall(m *jsonrpc.Message, dir schemas.Direction, kind schemas.Kind, at time.Time) *call {
	// Shape, hashes and content read all of the arguments: they are built with the rest of the
	// event, off the call's path (Tap.complete).
	f := jsonrpc.DescribeRequestWithoutArgs(m)
	ev := ex.tap.baseEvent(ex.up.name, dir, kind, at)
	ev.Method = m.Method
	ev.Target = f.Target
	ev.TraceID, ev.SpanID = f.TraceID, f.SpanID
	ev.RequestBytes = len(m.Raw)
	if m.ID != nil {
		ev.JSONRPCID = m.IDString()
	}
	// Keep the params for that, copied when they are in a buffer the server's stream reuses.
	args := m.Params
	if dir == schemas.ServerToClient {
		args = bytes.Clone(args)
	}
	if dir == schemas.ClientToServer && ex.messages == 1 {
		if flag := headerMismatch(ex.hdr, m.Method, f.Target); flag != nil {
			ev.Flags = append(ev.Flags, *flag)
		}
	}
	if dir == schemas.ClientToServer && ex.trailing {
		ev.Flags = append(ev.Flags, schemas.Flag{Type: FlagTrailingData, Severity: schemas.SeverityHigh, Path: "$"})
	}
	client := clientFacts{name: f.ClientName, version: f.ClientVersion, protocolVersion: f.ProtocolVersion}
	if bytes.Contains(m.Params, []byte(`"baggage"`)) {
		client.baggageAgent = ex.tap.ident.BaggageAgent(metaBaggage(m.Params))
	}
	if dir == schemas.ClientToServer && ex.from == (clientFacts{}) {
		ex.from = client
	}
	return &call{
		ev:         ev,
		start:      at,
		client:     client,
		initialize: m.Method == "initialize" && dir == schemas.ClientToServer,
		hdr:        ex.hdr,
		track:      tracking{progressToken: f.ProgressToken, refersTo: f.RequestID, args: args},
	}
}

// baseEvent returns an event with the fields every event of this tap has.
func (t *Tap) baseEvent(upstream string, dir schemas.Direction, kind schemas.Kind, observedAt time.Time) schemas.Event {
	return schemas.Event{
		SchemaVersion: schemas.EventSchemaVersion,
		ObservedAt:    observedAt.UTC(),
		CollectorID:   t.cfg.CollectorID,
		Source:        schemas.SourceHTTPTap,
		Transport:     transportName,
		ServerID:      upstream,
		Direction:     dir,
		Kind:          kind,
	}
}

// identify stamps the session, client and agent identity on ev. The client and protocol come
// from what the session remembers, then this HTTP request's headers, then the message itself.
// The agent is picked by the identity precedence from what this request says (credentials,
// headers) completed by what earlier requests of the session said, the message's baggage, and
// the client's name. Traffic without a session id gets a stitched one.
func (t *Tap) identify(ev *schemas.Event, sessionID string, sess sessionInfo, hdr requestHeaders, msg clientFacts) {
	ev.SessionID = sessionID
	ev.ClientName, ev.ClientVersion = sess.clientName, sess.clientVersion
	if ev.ClientName == "" {
		ev.ClientName, ev.ClientVersion = msg.name, msg.version
	}
	ev.ProtocolVersion = firstNonEmpty(sess.protocolVersion, hdr.protocolVersion, msg.protocolVersion)
	q := mergeIdent(hdr.ident, sess.ident)
	if q.Baggage == "" {
		q.Baggage = msg.baggageAgent
	}
	ev.DeclaredAgent = q.Header
	ev.AgentID, ev.AgentSource = t.ident.Attribute(q, ev.ClientName)
	if ev.SessionID == "" {
		key := identity.StitchKey{
			Server: ev.ServerID, Agent: ev.AgentID, ClientName: ev.ClientName, ClientVersion: ev.ClientVersion,
			Instance: hdr.ident.Instance,
		}
		ev.SessionID = t.stitch.SessionID(key, firstNonEmpty(ev.TraceID, hdr.ident.TraceID), ev.ObservedAt)
	}
}

// mergeIdent fills what req does not say with what earlier requests of the session said.
func mergeIdent(req, sess identity.Request) identity.Request {
	if req.MTLS == "" {
		req.MTLS = sess.MTLS
	}
	if req.JWT == "" {
		req.JWT, req.JWTVerified = sess.JWT, sess.JWTVerified
	}
	if req.Header == "" {
		req.Header = sess.Header
	}
	if req.Baggage == "" {
		req.Baggage = sess.Baggage
	}
	return req
}

// metaBaggage returns params._meta.baggage, or "".
func metaBaggage(params json.RawMessage) string {
	var p struct {
		Meta struct {
			Baggage string `json:"baggage"`
		} `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	return p.Meta.Baggage
}

// answered fills an event from the response m, with the result's content when the event
// carries content.
func (t *Tap) answered(m *jsonrpc.Message) func(*schemas.Event) {
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
		ev.Content = t.capture.Decide(ev.ServerID, ev.Method, ev.Target).WithResult(ev.Content, m.Result, m.Error)
	}
}

// emit sends ev on: it is queued, never waited for (see emitQueue).
func (t *Tap) emit(ev schemas.Event) { t.emitQ.send(t, ev) }

// deliver gives ev its id and hands it to the emitter, from the emit queue's goroutine or,
// when the queue is full (now), from a call's.
func (t *Tap) deliver(ev schemas.Event, now bool) {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	ev.ID = id.String()
	t.metrics.events.WithLabelValues(string(ev.Status)).Inc()
	if ev.Status == schemas.StatusMalformed {
		t.metrics.malformed.WithLabelValues(string(ev.Direction)).Inc()
	}
	if now {
		if e, ok := t.emitter.(pipeline.NowEmitter); ok {
			e.EmitNow(ev) // on a call's path: not even the spool's disk may hold it
			return
		}
	}
	t.emitter.Emit(ev)
}

func micros(d time.Duration) int64 { return d.Microseconds() }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// FlagHeaderMismatch flags a request whose Mcp-Method or Mcp-Name header (2026-07-28) names
// something other than its body does. Servers that check reject it; a gateway that routes or
// authorizes by the headers would have been told one thing while the server was asked another.
const FlagHeaderMismatch = "mcp_header_mismatch"

// FlagTrailingData flags a request whose body has bytes after its JSON value. The Go SDK's
// server runs the value and ignores the rest, the TypeScript SDK's refuses the body: no client
// sends one, and what reads such a body differently than the server may be deceived by it.
const FlagTrailingData = "trailing_data"

// headerMismatch returns the flag of a request of one message whose headers disagree with its
// method or target, or nil. The evidence names the header, not what it held (a client chose it).
func headerMismatch(hdr requestHeaders, method, target string) *schemas.Flag {
	var which string
	switch {
	case hdr.mcpMethod != "" && hdr.mcpMethod != method:
		which = headerMethod
	case hdr.mcpName != "" && target != "" && decodeHeaderValue(hdr.mcpName) != target:
		which = headerName
	default:
		return nil
	}
	return &schemas.Flag{Type: FlagHeaderMismatch, Severity: schemas.SeverityHigh, Path: "$",
		Evidence: "header=" + which}
}

// decodeHeaderValue undoes the =?base64?…?= wrapping SEP-2243 gives header values that are not
// plain ASCII.
func decodeHeaderValue(v string) string {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v
	}
	if inner, ok = strings.CutSuffix(inner, "?="); !ok {
		return v
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return v
	}
	return string(b)
}
