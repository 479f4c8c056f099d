package jsonrpc

import (
	"encoding/json"
	"strings"

	"github.com/mcpwatch/mcpwatch/schemas"
)

// MCP _meta keys of the 2026-07-28 (stateless) revision.
const (
	metaClientInfo      = "io.modelcontextprotocol/clientInfo"
	metaProtocolVersion = "io.modelcontextprotocol/protocolVersion"
)

// RequestFacts is what a collector records about a request or notification: never values, only
// names, shapes and hashes.
type RequestFacts struct {
	// Target is params.name for tools/call and prompts/get, params.uri for resources/read,
	// subscribe, unsubscribe and notifications/resources/updated, and the reference of
	// completion/complete.
	Target string
	// ArgsShape and ArgsHash describe params.arguments for tools/call and prompts/get, and params
	// without _meta for other methods.
	ArgsShape string
	ArgsHash  string
	// ClientName, ClientVersion and ProtocolVersion come from initialize params or from the
	// 2026-07-28 _meta keys.
	ClientName      string
	ClientVersion   string
	ProtocolVersion string
	// TraceID and SpanID come from params._meta.traceparent when it is valid W3C trace context.
	TraceID string
	SpanID  string
	// ProgressToken is the canonical JSON text (CanonicalID) of params._meta.progressToken for a
	// request, and of params.progressToken for notifications/progress: the token that ties
	// progress to its request.
	ProgressToken string
	// RequestID is the canonical JSON text (CanonicalID) of params.requestId for
	// notifications/cancelled: the id of the request being cancelled, as IDString gives it.
	RequestID string
}

// ResponseFacts is what a collector records about a response.
type ResponseFacts struct {
	// ErrorCode is the JSON-RPC error code; HasError says whether there was an error at all.
	HasError  bool
	ErrorCode int
	// ToolError is true when the result says isError: true (a failed tool call).
	ToolError bool
	// ProtocolVersion is result.protocolVersion (the initialize result).
	ProtocolVersion string
	// ResultHash is Hash of the result.
	ResultHash string
}

// DescribeRequest reads the facts of a request or notification. It is lenient: fields of an
// unexpected type are ignored.
func DescribeRequest(m *Message) RequestFacts { return describeRequest(m, true) }

// DescribeRequestWithoutArgs is DescribeRequest without ArgsShape and ArgsHash, which cost the
// most (they read all of the arguments); ArgsShapeAndHash computes them apart.
func DescribeRequestWithoutArgs(m *Message) RequestFacts { return describeRequest(m, false) }

// ArgsShapeAndHash returns DescribeRequest(m)'s ArgsShape and ArgsHash.
func ArgsShapeAndHash(m *Message) (shape, hash string) {
	if !isObject(m.Params) {
		return "", ""
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		if args := field(m.Params, "arguments"); args != nil {
			return ShapeAndHash(args)
		}
		return "", ""
	default:
		return shapeAndHashValid(m.Params, "_meta")
	}
}

func describeRequest(m *Message, withArgs bool) RequestFacts {
	var f RequestFacts
	params := m.Params
	if !isObject(params) {
		return f
	}
	// One pass over params for the members the facts come from.
	var name, uri, arguments, ref, meta, progressToken, requestID, clientInfo, protocolVersion []byte
	hasArguments := false
	it := newMembers(params)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "name"):
			name = v
		case keyIs(k, "uri"):
			uri = v
		case keyIs(k, "arguments"):
			arguments, hasArguments = v, true
		case keyIs(k, "ref"):
			ref = v
		case keyIs(k, "_meta"):
			meta = v
		case keyIs(k, "progressToken"):
			progressToken = v
		case keyIs(k, "requestId"):
			requestID = v
		case keyIs(k, "clientInfo"):
			clientInfo = v
		case keyIs(k, "protocolVersion"):
			protocolVersion = v
		}
	}
	str := func(v []byte) string {
		if isString(v) {
			return stringValue(v)
		}
		return ""
	}

	switch m.Method {
	case "tools/call", "prompts/get":
		f.Target = str(name)
	case "resources/read", "resources/subscribe", "resources/unsubscribe", "notifications/resources/updated":
		f.Target = str(uri)
	case "notifications/progress":
		f.ProgressToken = CanonicalID(progressToken)
	case "notifications/cancelled":
		f.RequestID = CanonicalID(requestID)
	case "completion/complete":
		if isObject(ref) {
			f.Target = stringField(ref, "name")
			if f.Target == "" {
				f.Target = stringField(ref, "uri")
			}
		}
	}

	switch {
	case !withArgs:
	case m.Method == "tools/call" || m.Method == "prompts/get":
		if hasArguments {
			f.ArgsShape, f.ArgsHash = ShapeAndHash(arguments)
		}
	default:
		f.ArgsShape, f.ArgsHash = shapeAndHashValid(params, "_meta")
	}

	if m.Method == "initialize" {
		if n, v, ok := implementation(clientInfo); ok {
			f.ClientName, f.ClientVersion = n, v
		}
		f.ProtocolVersion = str(protocolVersion)
	}

	if isObject(meta) {
		if f.ClientName == "" {
			if n, v, ok := implementation(field(meta, metaClientInfo)); ok {
				f.ClientName, f.ClientVersion = n, v
			}
		}
		if f.ProtocolVersion == "" {
			f.ProtocolVersion = stringField(meta, metaProtocolVersion)
		}
		f.TraceID, f.SpanID = ParseTraceparent(stringField(meta, "traceparent"))
		if tok := field(meta, "progressToken"); tok != nil {
			f.ProgressToken = CanonicalID(tok)
		}
	}
	return f
}

// implementation reads an Implementation (clientInfo) object as the SDKs decode it (exact member
// names, the last of duplicates winning): ok is false when it is absent or not an object of
// strings.
func implementation(v []byte) (name, version string, ok bool) {
	switch {
	case v == nil:
		return "", "", false
	case isNull(v):
		return "", "", true
	case !isObject(v):
		return "", "", false
	}
	it := newMembers(v)
	for {
		k, val, more := it.next()
		if !more {
			return name, version, true
		}
		var dst *string
		switch {
		case keyIs(k, "name"):
			dst = &name
		case keyIs(k, "version"):
			dst = &version
		default:
			continue
		}
		switch {
		case isNull(val):
		case isString(val):
			*dst = stringValue(val)
		default:
			return "", "", false
		}
	}
}

// DescribeResponse reads the facts of a response.
func DescribeResponse(m *Message) ResponseFacts {
	var f ResponseFacts
	if m.Error != nil {
		f.HasError, f.ErrorCode = true, m.Error.Code
	}
	if len(m.Result) == 0 || (!m.parsed && !json.Valid(m.Result)) {
		return f
	}
	result := trimJSONSpace(m.Result)
	f.ResultHash = hashValid(result)
	if isObject(result) {
		f.ToolError = string(field(result, "isError")) == "true"
		f.ProtocolVersion = stringField(result, "protocolVersion")
	}
	return f
}

// ParseTraceparent returns the trace and span ids of a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>"), or empty strings when it is not valid.
func ParseTraceparent(tp string) (traceID, spanID string) {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 ||
		len(parts[2]) != 16 || len(parts[3]) != 2 {
		return "", ""
	}
	if parts[0] == "00" && len(parts) != 4 {
		return "", ""
	}
	for _, p := range parts[:4] {
		if !isLowerHex(p) {
			return "", ""
		}
	}
	if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return "", ""
	}
	return parts[1], parts[2]
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Flags both taps set on a request they cannot pair with its answer. Such a request still
// reaches the server, which may run it: it is recorded at once, status malformed, so that no
// call goes unseen.
const (
	// FlagDuplicateID marks a request that reuses the id of a request still pending in the
	// same direction (the protocol forbids it; the Go SDK's server runs both), and that pending
	// request: which answer belongs to which cannot be told, and a harmless call's id could
	// otherwise hide another call.
	FlagDuplicateID = "duplicate_id"
	// FlagUntrackedRequest marks a request sent while the tap's limit of pending requests
	// (max_pending) was reached.
	FlagUntrackedRequest = "untracked_request"
)

// UntrackedFlag is the flag of a request a tap cannot pair: one that reuses an unanswered
// request's id (duplicate), or one over the limit of pending requests.
func UntrackedFlag(duplicate bool) schemas.Flag {
	if duplicate {
		return schemas.Flag{Type: FlagDuplicateID, Severity: schemas.SeverityHigh, Path: "$.id"}
	}
	return schemas.Flag{Type: FlagUntrackedRequest, Severity: schemas.SeverityHigh, Path: "$"}
}
