package jsonrpc

// The reflection-based implementation this package had before its scanner: the reference the
// differential fuzz test (FuzzScannerMatchesReference) holds the scanner to. Objects decode into
// map[string]json.RawMessage, which matches member names exactly and keeps the last of
// duplicates, as the MCP SDKs do (encoding/json's struct decoding would ignore case).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

var errRefTrailing = errors.New("trailing data")

// refMessage is one JSON-RPC 2.0 message.
type refMessage struct {
	// Raw is the message's bytes as they appeared on the wire (one element of a batch).
	Raw []byte
	// ID is the id's JSON text as on the wire (e.g. `1` or `"a"`), nil when absent.
	ID json.RawMessage
	// Method is set for requests and notifications.
	Method string
	// Params, Result and Error are set when present in the message.
	Params json.RawMessage
	Result json.RawMessage
	Error  *refError
}

// refError is a JSON-RPC error object.
type refError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// IsRequest reports whether m is a request (a method and an id).
func (m *refMessage) IsRequest() bool { return m.Method != "" && m.ID != nil }

// IsNotification reports whether m is a notification (a method and no id).
func (m *refMessage) IsNotification() bool { return m.Method != "" && m.ID == nil }

// IsResponse reports whether m is a response (an id and a result or an error).
func (m *refMessage) IsResponse() bool { return m.Method == "" && m.ID != nil }

// IDString is the id's canonical JSON text, the key requests and responses are paired by.
func (m *refMessage) IDString() string { return refCanonicalID(m.ID) }

// refCanonicalID decodes an id as a peer would (a string, or a number as a float64) and encodes
// it again; other values, numbers beyond float64 and malformed text stay as written.
func refCanonicalID(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if !json.Valid(raw) || dec.Decode(&v) != nil {
		return string(raw)
	}
	switch x := v.(type) {
	case string:
		enc, err := refEncode(x)
		if err != nil {
			panic(err)
		}
		return string(enc)
	case json.Number:
		var f float64
		if json.Unmarshal([]byte(x), &f) != nil {
			return string(x)
		}
		if f == 0 {
			f = 0 // not -0
		}
		enc, err := refEncode(f)
		if err != nil {
			panic(err)
		}
		return string(enc)
	default:
		return string(bytes.Trim(raw, " \t\r\n"))
	}
}

// errRefEmptyBatch is returned for a batch with no messages, which JSON-RPC calls invalid.
var errRefEmptyBatch = errors.New("empty JSON-RPC batch")

// refParse parses data as a single JSON-RPC message or a batch (a JSON array of messages). batch
// reports which it was. The returned messages' Raw fields point into data. Data after the first
// value is reported with errRefTrailing, beside the messages of the first value.
func refParse(data []byte) (msgs []refMessage, batch bool, err error) {
	trimmed := bytes.TrimSpace(data)
	batch = len(trimmed) > 0 && trimmed[0] == '['
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		// The first value, as json.Decoder reads it (and the Go SDK's decoder).
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		var first json.RawMessage
		if dec.Decode(&first) == nil && dec.InputOffset() < int64(len(trimmed)) {
			msgs, batch, err := refParse(trimmed[:dec.InputOffset()])
			if err != nil {
				return nil, batch, err
			}
			return msgs, batch, errRefTrailing
		}
	}
	if batch {
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, true, fmt.Errorf("cannot parse JSON-RPC batch: %w", err)
		}
		if len(elems) == 0 {
			return nil, true, errRefEmptyBatch
		}
		msgs = make([]refMessage, 0, len(elems))
		for i, e := range elems {
			m, err := refParseMessage(e)
			if err != nil {
				return nil, true, fmt.Errorf("batch element %d: %w", i, err)
			}
			msgs = append(msgs, m)
		}
		return msgs, true, nil
	}
	m, err := refParseMessage(trimmed)
	if err != nil {
		return nil, false, err
	}
	return []refMessage{m}, false, nil
}

// refParseMessage parses data as one JSON-RPC message (not a batch).
func refParseMessage(data []byte) (refMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return refMessage{}, errors.New("cannot parse JSON-RPC message: not a JSON object")
	}
	var w map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &w); err != nil {
		return refMessage{}, fmt.Errorf("cannot parse JSON-RPC message: %w", err)
	}
	m := refMessage{Raw: trimmed, ID: w["id"], Params: w["params"], Result: w["result"]}
	var method *string
	if err := refUnmarshalIfPresent(w, "method", &method); err != nil {
		return refMessage{}, fmt.Errorf("cannot parse JSON-RPC message: method: %w", err)
	}
	if raw, ok := w["error"]; ok && string(raw) != "null" {
		var e map[string]json.RawMessage
		if err := json.Unmarshal(raw, &e); err != nil {
			return refMessage{}, fmt.Errorf("cannot parse JSON-RPC message: error: %w", err)
		}
		var code *int
		var message *string
		if err := errors.Join(refUnmarshalIfPresent(e, "code", &code), refUnmarshalIfPresent(e, "message", &message)); err != nil {
			return refMessage{}, fmt.Errorf("cannot parse JSON-RPC message: error: %w", err)
		}
		m.Error = &refError{}
		if code != nil {
			m.Error.Code = *code
		}
		if message != nil {
			m.Error.Message = *message
		}
	}
	if method != nil {
		if *method == "" {
			return refMessage{}, errors.New("cannot parse JSON-RPC message: empty method")
		}
		m.Method = *method
		return m, nil
	}
	if m.ID == nil {
		return refMessage{}, errors.New("cannot parse JSON-RPC message: neither a method nor an id")
	}
	if m.Result == nil && m.Error == nil {
		return refMessage{}, errors.New("cannot parse JSON-RPC message: response without result or error")
	}
	return m, nil
}

// refUnmarshalIfPresent decodes fields[key] into dst when the key is there.
func refUnmarshalIfPresent(fields map[string]json.RawMessage, key string, dst any) error {
	if raw, ok := fields[key]; ok {
		return json.Unmarshal(raw, dst)
	}
	return nil
}

// MCP _meta keys of the 2026-07-28 (stateless) revision.
const (
	refMetaClientInfo      = "io.modelcontextprotocol/clientInfo"
	refMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion"
)

// refRequestFacts is what a collector records about a request or notification: never values, only
// names, shapes and hashes.
type refRequestFacts struct {
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

// refResponseFacts is what a collector records about a response.
type refResponseFacts struct {
	// ErrorCode is the JSON-RPC error code; HasError says whether there was an error at all.
	HasError  bool
	ErrorCode int
	// ToolError is true when the result says isError: true (a failed tool call).
	ToolError bool
	// ProtocolVersion is result.protocolVersion (the initialize result).
	ProtocolVersion string
	// ResultHash is refHash of the result.
	ResultHash string
}

type refImplementation struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// refDecodeImplementation decodes an Implementation with exact member names: ok is false when
// raw is absent or not an object (or null) of strings.
func refDecodeImplementation(raw json.RawMessage) (ci refImplementation, ok bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return refImplementation{}, false
	}
	var name, version *string
	if errors.Join(refUnmarshalIfPresent(fields, "name", &name), refUnmarshalIfPresent(fields, "version", &version)) != nil {
		return refImplementation{}, false
	}
	if name != nil {
		ci.Name = *name
	}
	if version != nil {
		ci.Version = *version
	}
	return ci, true
}

// refDescribeRequest reads the facts of a request or notification. It is lenient: fields of an
// unexpected type are ignored.
func refDescribeRequest(m *refMessage) refRequestFacts {
	var f refRequestFacts
	params := refObjectFields(m.Params)
	if params == nil {
		return f
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		f.Target = refStringField(params, "name")
	case "resources/read", "resources/subscribe", "resources/unsubscribe", "notifications/resources/updated":
		f.Target = refStringField(params, "uri")
	case "notifications/progress":
		f.ProgressToken = refCanonicalID(params["progressToken"])
	case "notifications/cancelled":
		f.RequestID = refCanonicalID(params["requestId"])
	case "completion/complete":
		if ref := refObjectFields(params["ref"]); ref != nil {
			f.Target = refStringField(ref, "name")
			if f.Target == "" {
				f.Target = refStringField(ref, "uri")
			}
		}
	}

	switch m.Method {
	case "tools/call", "prompts/get":
		if args, ok := params["arguments"]; ok {
			f.ArgsShape, f.ArgsHash = refShapeAndHash(args)
		}
	default:
		if rest := refWithoutKey(params, "_meta"); rest != nil {
			f.ArgsShape, f.ArgsHash = refShapeAndHash(rest)
		}
	}

	if m.Method == "initialize" {
		if ci, ok := refDecodeImplementation(params["clientInfo"]); ok {
			f.ClientName, f.ClientVersion = ci.Name, ci.Version
		}
		f.ProtocolVersion = refStringField(params, "protocolVersion")
	}

	if meta := refObjectFields(params["_meta"]); meta != nil {
		if ci, ok := refDecodeImplementation(meta[refMetaClientInfo]); f.ClientName == "" && ok {
			f.ClientName, f.ClientVersion = ci.Name, ci.Version
		}
		if f.ProtocolVersion == "" {
			f.ProtocolVersion = refStringField(meta, refMetaProtocolVersion)
		}
		f.TraceID, f.SpanID = refParseTraceparent(refStringField(meta, "traceparent"))
		if tok, ok := meta["progressToken"]; ok {
			f.ProgressToken = refCanonicalID(tok)
		}
	}
	return f
}

// refDescribeResponse reads the facts of a response.
func refDescribeResponse(m *refMessage) refResponseFacts {
	var f refResponseFacts
	if m.Error != nil {
		f.HasError, f.ErrorCode = true, m.Error.Code
	}
	if len(m.Result) == 0 {
		return f
	}
	v, err := refDecode(m.Result)
	if err != nil {
		return f
	}
	f.ResultHash = refHashOf(v)
	if res, ok := v.(map[string]any); ok {
		f.ToolError, _ = res["isError"].(bool)
		f.ProtocolVersion, _ = res["protocolVersion"].(string)
	}
	return f
}

// refParseTraceparent returns the trace and span ids of a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>"), or empty strings when it is not valid.
func refParseTraceparent(tp string) (traceID, spanID string) {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 ||
		len(parts[2]) != 16 || len(parts[3]) != 2 {
		return "", ""
	}
	if parts[0] == "00" && len(parts) != 4 {
		return "", ""
	}
	for _, p := range parts[:4] {
		if !refIsLowerHex(p) {
			return "", ""
		}
	}
	if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return "", ""
	}
	return parts[1], parts[2]
}

func refIsLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// refObjectFields returns raw's fields when it is a JSON object, else nil.
func refObjectFields(raw json.RawMessage) map[string]json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return nil
	}
	return fields
}

func refStringField(fields map[string]json.RawMessage, key string) string {
	var s string
	if json.Unmarshal(fields[key], &s) != nil {
		return ""
	}
	return s
}

// refWithoutKey re-encodes fields without key, or returns nil when nothing is left.
func refWithoutKey(fields map[string]json.RawMessage, key string) json.RawMessage {
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

// refCanonical re-encodes a JSON value with object keys sorted, no insignificant whitespace and
// no HTML escaping. Numbers keep their text as written (1.0 and 1 differ), which is enough for
// hashes to be stable across peers that reorder keys.
func refCanonical(raw []byte) ([]byte, error) {
	v, err := refDecode(raw)
	if err != nil {
		return nil, err
	}
	return refEncode(v)
}

// refHash is the hex of the first 16 bytes of the SHA-256 of raw's canonical JSON, or "" when raw
// is empty or not JSON.
func refHash(raw []byte) string {
	_, hash := refShapeAndHash(raw)
	return hash
}

// refShapeAndHash returns refShape(raw) and refHash(raw), decoding raw once.
func refShapeAndHash(raw []byte) (shape, hash string) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", ""
	}
	v, err := refDecode(raw)
	if err != nil {
		return "", ""
	}
	return refShapeOf(v), refHashOf(v)
}

func refHashOf(v any) string {
	c, err := refEncode(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:16])
}

// refShape describes a JSON value by its structure only: objects keep their keys (sorted) with the
// shapes of their values, arrays become the sorted distinct shapes of their elements, and
// scalars become their JSON type name. For example {"message":"hi","n":[1,2]} has the shape
// {"message":"string","n":["number"]}. It returns "" when raw is empty or not JSON.
func refShape(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	v, err := refDecode(raw)
	if err != nil {
		return ""
	}
	return refShapeOf(v)
}

func refShapeOf(v any) string {
	var b strings.Builder
	refWriteShape(&b, v)
	return b.String()
}

func refWriteShape(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			refWriteString(b, k)
			b.WriteByte(':')
			refWriteShape(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		elems := make([]string, 0, len(x))
		for _, e := range x {
			var eb strings.Builder
			refWriteShape(&eb, e)
			elems = append(elems, eb.String())
		}
		sort.Strings(elems)
		elems = slices.Compact(elems)
		b.WriteByte('[')
		b.WriteString(strings.Join(elems, ","))
		b.WriteByte(']')
	case string:
		b.WriteString(`"string"`)
	case json.Number:
		b.WriteString(`"number"`)
	case bool:
		b.WriteString(`"boolean"`)
	case nil:
		b.WriteString(`"null"`)
	default:
		panic(fmt.Sprintf("BUG: unexpected JSON value type %T", v))
	}
}

func refWriteString(b *strings.Builder, s string) {
	enc, err := refEncode(s)
	if err != nil {
		panic("BUG: cannot refEncode a string: " + err.Error())
	}
	b.Write(enc)
}

func refDecode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("cannot refDecode JSON: %w", err)
	}
	// The old code asked dec.More(), which misses a trailing '}' or ']' (it took `""}` for a
	// string); the scanner rejects any trailing data, as this does.
	if len(trimJSONSpace(raw[dec.InputOffset():])) > 0 {
		return nil, fmt.Errorf("cannot refDecode JSON: trailing data")
	}
	return v, nil
}

func refEncode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot refEncode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
