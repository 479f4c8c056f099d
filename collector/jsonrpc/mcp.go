package jsonrpc

import (
	"encoding/json"
	"strings"
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
	// ProgressToken is the JSON text of params._meta.progressToken for a request, and of
	// params.progressToken for notifications/progress: the token that ties progress to its
	// request.
	ProgressToken string
	// RequestID is the JSON text of params.requestId for notifications/cancelled: the id of the
	// request being cancelled.
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

type implementation struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// DescribeRequest reads the facts of a request or notification. It is lenient: fields of an
// unexpected type are ignored.
func DescribeRequest(m *Message) RequestFacts {
	var f RequestFacts
	params := objectFields(m.Params)
	if params == nil {
		return f
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		f.Target = stringField(params, "name")
	case "resources/read", "resources/subscribe", "resources/unsubscribe", "notifications/resources/updated":
		f.Target = stringField(params, "uri")
	case "notifications/progress":
		f.ProgressToken = string(params["progressToken"])
	case "notifications/cancelled":
		f.RequestID = string(params["requestId"])
	case "completion/complete":
		if ref := objectFields(params["ref"]); ref != nil {
			f.Target = stringField(ref, "name")
			if f.Target == "" {
				f.Target = stringField(ref, "uri")
			}
		}
	}

	switch m.Method {
	case "tools/call", "prompts/get":
		if args, ok := params["arguments"]; ok {
			f.ArgsShape, f.ArgsHash = ShapeAndHash(args)
		}
	default:
		if rest := withoutKey(params, "_meta"); rest != nil {
			f.ArgsShape, f.ArgsHash = ShapeAndHash(rest)
		}
	}

	if m.Method == "initialize" {
		var ci implementation
		if json.Unmarshal(params["clientInfo"], &ci) == nil {
			f.ClientName, f.ClientVersion = ci.Name, ci.Version
		}
		f.ProtocolVersion = stringField(params, "protocolVersion")
	}

	if meta := objectFields(params["_meta"]); meta != nil {
		var ci implementation
		if f.ClientName == "" && json.Unmarshal(meta[metaClientInfo], &ci) == nil {
			f.ClientName, f.ClientVersion = ci.Name, ci.Version
		}
		if f.ProtocolVersion == "" {
			f.ProtocolVersion = stringField(meta, metaProtocolVersion)
		}
		f.TraceID, f.SpanID = ParseTraceparent(stringField(meta, "traceparent"))
		if tok, ok := meta["progressToken"]; ok {
			f.ProgressToken = string(tok)
		}
	}
	return f
}

// DescribeResponse reads the facts of a response.
func DescribeResponse(m *Message) ResponseFacts {
	var f ResponseFacts
	if m.Error != nil {
		f.HasError, f.ErrorCode = true, m.Error.Code
	}
	if len(m.Result) == 0 {
		return f
	}
	v, err := decode(m.Result)
	if err != nil {
		return f
	}
	f.ResultHash = hashOf(v)
	if res, ok := v.(map[string]any); ok {
		f.ToolError, _ = res["isError"].(bool)
		f.ProtocolVersion, _ = res["protocolVersion"].(string)
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

// objectFields returns raw's fields when it is a JSON object, else nil.
func objectFields(raw json.RawMessage) map[string]json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return nil
	}
	return fields
}

func stringField(fields map[string]json.RawMessage, key string) string {
	var s string
	if json.Unmarshal(fields[key], &s) != nil {
		return ""
	}
	return s
}

// withoutKey re-encodes fields without key, or returns nil when nothing is left.
func withoutKey(fields map[string]json.RawMessage, key string) json.RawMessage {
	if _, ok := fields[key]; ok {
		rest := make(map[string]json.RawMessage, len(fields))
		for k, v := range fields {
			if k != key {
				rest[k] = v
			}
		}
		fields = rest
	}
	if len(fields) == 0 {
		return nil
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil
	}
	return out
}
