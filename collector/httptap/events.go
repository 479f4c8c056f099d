package httptap

import (
	"time"

	"github.com/google/uuid"

	"github.com/mcpwatch/mcpwatch/collector/jsonrpc"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// transportName is Event.Transport for everything this tap sees.
const transportName = "streamable_http"

// Agent attribution sources (Event.AgentSource).
const (
	agentFromHeader     = "header"
	agentFromClientInfo = "client_info"
	agentUnknown        = "unknown"
)

// call is an operation waiting for its outcome: a request for its response, a notification
// for its HTTP status, or a server request for the client's answer.
type call struct {
	ev    schemas.Event // what is known since the request was seen
	start time.Time     // when the request was seen, for latency (monotonic)
	timer *time.Timer
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
}

// newCall starts an operation from a parsed message.
func (ex *exchange) newCall(m *jsonrpc.Message, dir schemas.Direction, kind schemas.Kind, at time.Time) *call {
	f := jsonrpc.DescribeRequest(m)
	ev := ex.tap.baseEvent(ex.up.name, dir, kind, at)
	ev.Method = m.Method
	ev.Target = f.Target
	ev.ArgsShape, ev.ArgsHash = f.ArgsShape, f.ArgsHash
	ev.TraceID, ev.SpanID = f.TraceID, f.SpanID
	ev.RequestBytes = len(m.Raw)
	if m.ID != nil {
		ev.JSONRPCID = m.IDString()
	}
	return &call{
		ev:         ev,
		start:      at,
		client:     clientFacts{name: f.ClientName, version: f.ClientVersion, protocolVersion: f.ProtocolVersion},
		initialize: m.Method == "initialize" && dir == schemas.ClientToServer,
		hdr:        ex.hdr,
		track:      tracking{progressToken: f.ProgressToken, refersTo: f.RequestID},
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

// identify stamps the session, client and agent identity on ev: what the session remembers
// first, then what this HTTP request's headers say, then what the message itself said.
func identify(ev *schemas.Event, sessionID string, sess sessionInfo, hdr requestHeaders, msg clientFacts) {
	ev.SessionID = sessionID
	ev.ClientName, ev.ClientVersion = sess.clientName, sess.clientVersion
	if ev.ClientName == "" {
		ev.ClientName, ev.ClientVersion = msg.name, msg.version
	}
	ev.ProtocolVersion = firstNonEmpty(sess.protocolVersion, hdr.protocolVersion, msg.protocolVersion)
	ev.DeclaredAgent = firstNonEmpty(hdr.declaredAgent, sess.declaredAgent)
	switch {
	case ev.DeclaredAgent != "":
		ev.AgentID, ev.AgentSource = ev.DeclaredAgent, agentFromHeader
	case ev.ClientName != "":
		ev.AgentID, ev.AgentSource = ev.ClientName, agentFromClientInfo
	default:
		ev.AgentID, ev.AgentSource = agentUnknown, agentUnknown
	}
}

// emit gives ev its id and sends it on.
func (t *Tap) emit(ev schemas.Event) {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	ev.ID = id.String()
	t.metrics.events.WithLabelValues(string(ev.Status)).Inc()
	if ev.Status == schemas.StatusMalformed {
		t.metrics.malformed.WithLabelValues(string(ev.Direction)).Inc()
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
