package schemas

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// The event codec encodes and decodes Event without reflection: the enricher, the writer and the
// collectors' emitter handle every event, and encoding/json cost them more than all the
// enricher's checks. It is exact: AppendJSON writes what json.Marshal writes, byte for byte, and
// DecodeEvent accepts what json.Unmarshal accepts and produces the same Event (the differential
// tests and FuzzEventCodec hold both to it). Only the error values differ.

// AppendJSON appends the event's JSON to b: the bytes json.Marshal(e) returns (field order,
// omitempty, RFC 3339 times with nanoseconds, HTML-safe escaping, invalid UTF-8 as U+FFFD,
// labels sorted by key). Its error is json.Marshal's: a time RFC 3339 cannot express (a year
// outside [0,9999], a zone offset of 24 hours or more).
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	b = slices.Grow(b, e.sizeHint())
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"schema_version":`...)
	b = appendInt(b, int64(e.SchemaVersion))
	b = append(b, `,"observed_at":"`...)
	b, err := e.ObservedAt.AppendText(b)
	if err != nil {
		return b, fmt.Errorf("cannot encode event observed_at: %w", err)
	}
	b = append(b, `","collector_id":`...)
	b = appendString(b, e.CollectorID)
	b = append(b, `,"source":`...)
	b = appendString(b, string(e.Source))
	b = append(b, `,"transport":`...)
	b = appendString(b, e.Transport)
	b = appendOmitEmpty(b, `,"protocol_version":`, e.ProtocolVersion)
	b = append(b, `,"agent_id":`...)
	b = appendString(b, e.AgentID)
	b = append(b, `,"agent_source":`...)
	b = appendString(b, e.AgentSource)
	b = appendOmitEmpty(b, `,"declared_agent":`, e.DeclaredAgent)
	b = appendOmitEmpty(b, `,"client_name":`, e.ClientName)
	b = appendOmitEmpty(b, `,"client_version":`, e.ClientVersion)
	b = append(b, `,"server_id":`...)
	b = appendString(b, e.ServerID)
	b = appendOmitEmpty(b, `,"session_id":`, e.SessionID)
	b = appendOmitEmpty(b, `,"jsonrpc_id":`, e.JSONRPCID)
	b = append(b, `,"direction":`...)
	b = appendString(b, string(e.Direction))
	b = append(b, `,"kind":`...)
	b = appendString(b, string(e.Kind))
	b = appendOmitEmpty(b, `,"method":`, e.Method)
	b = appendOmitEmpty(b, `,"target":`, e.Target)
	b = append(b, `,"status":`...)
	b = appendString(b, string(e.Status))
	if e.ErrorCode != 0 {
		b = append(b, `,"error_code":`...)
		b = appendInt(b, int64(e.ErrorCode))
	}
	b = append(b, `,"latency_us":`...)
	b = appendInt(b, e.LatencyMicros)
	b = append(b, `,"request_bytes":`...)
	b = appendInt(b, int64(e.RequestBytes))
	b = append(b, `,"response_bytes":`...)
	b = appendInt(b, int64(e.ResponseBytes))
	b = appendOmitEmpty(b, `,"args_shape":`, e.ArgsShape)
	b = appendOmitEmpty(b, `,"args_hash":`, e.ArgsHash)
	b = appendOmitEmpty(b, `,"result_hash":`, e.ResultHash)
	b = appendOmitEmpty(b, `,"trace_id":`, e.TraceID)
	b = appendOmitEmpty(b, `,"span_id":`, e.SpanID)
	if c := e.Content; c != nil {
		b = append(b, `,"content":{`...)
		n := len(b)
		b = appendOmitEmpty(b, `,"arguments":`, c.Arguments)
		b = appendOmitEmpty(b, `,"result":`, c.Result)
		if c.Truncated {
			b = append(b, `,"truncated":true`...)
		}
		if c.Captured {
			b = append(b, `,"captured":true`...)
		}
		if len(b) > n {
			b = append(b[:n], b[n+1:]...) // the first field's comma
		}
		b = append(b, '}')
	}
	if len(e.Labels) > 0 {
		var arr [16]string
		keys := arr[:0]
		for k := range e.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"labels":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, e.Labels[k])
		}
		b = append(b, '}')
	}
	if len(e.Flags) > 0 {
		b = append(b, `,"flags":[`...)
		for i := range e.Flags {
			f := &e.Flags[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendString(b, f.Type)
			b = append(b, `,"severity":`...)
			b = appendString(b, string(f.Severity))
			b = appendOmitEmpty(b, `,"path":`, f.Path)
			b = appendOmitEmpty(b, `,"evidence":`, f.Evidence)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// sizeHint is about the length of the event's JSON, so that encoding it allocates once: the
// names and numbers, the strings, and an eighth more for escapes in content.
func (e *Event) sizeHint() int {
	n := 512 + len(e.ID) + len(e.CollectorID) + len(e.Transport) + len(e.ProtocolVersion) + len(e.AgentID) +
		len(e.AgentSource) + len(e.DeclaredAgent) + len(e.ClientName) + len(e.ClientVersion) + len(e.ServerID) +
		len(e.SessionID) + len(e.JSONRPCID) + len(e.Method) + len(e.Target) + len(e.ArgsShape) + len(e.ArgsHash) +
		len(e.ResultHash) + len(e.TraceID) + len(e.SpanID)
	if c := e.Content; c != nil {
		n += 64 + (len(c.Arguments)+len(c.Result))*9/8
	}
	for k, v := range e.Labels {
		n += 6 + len(k) + len(v)
	}
	for _, f := range e.Flags {
		n += 48 + len(f.Type) + len(f.Severity) + len(f.Path) + len(f.Evidence)
	}
	return n
}

func appendOmitEmpty(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

func appendInt(b []byte, n int64) []byte {
	if n >= 0 && n < 10 {
		return append(b, byte('0'+n))
	}
	var buf [20]byte
	i := len(buf)
	u := uint64(n)
	if n < 0 {
		u = uint64(-n) // also right for math.MinInt64
	}
	for u >= 10 {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	buf[i] = byte('0' + u)
	if n < 0 {
		i--
		buf[i] = '-'
	}
	return append(b, buf[i:]...)
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes a JSON string holds as they are; encoding/json escapes the rest
// (quote, backslash, control characters, and <, > and & for HTML safety).
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaped as encoding/json escapes it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// maxDepth is encoding/json's nesting limit: deeper input is a syntax error.
const maxDepth = 10000

// DecodeEvent decodes the JSON event in data into e as json.Unmarshal(data, e) would: the same
// input is accepted, with the same result (unknown fields ignored, field names matched case-
// insensitively, null leaving a field as it is, a value of the wrong type skipped and reported
// after the rest was decoded, invalid UTF-8 made U+FFFD). Invalid JSON leaves e unchanged.
func DecodeEvent(data []byte, e *Event) error {
	d := decoders.Get().(*decoder)
	defer d.release()
	d.data = data
	if e.Labels != nil || e.Flags != nil || e.Content != nil {
		// Decoding writes into these in place; json.Unmarshal leaves e as it was when the
		// input is not valid JSON, so check it all first.
		if err := d.skipAll(); err != nil {
			return err
		}
		d.i = 0
	}
	ev := *e
	if err := d.top(&ev); err != nil {
		return err
	}
	*e = ev
	if d.abort != nil {
		return d.abort
	}
	return d.typeErr
}

// decoders keeps decoders for reuse, so that their scratch buffers are allocated once.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// release puts d back in decoders, keeping its buffers unless they grew large.
func (d *decoder) release() {
	buf, folded := d.buf[:0], d.folded[:0]
	if cap(buf) > 64<<10 {
		buf = nil
	}
	*d = decoder{buf: buf, folded: folded}
	decoders.Put(d)
}

// A decoder reads one JSON value from data, validating it as encoding/json's scanner does.
type decoder struct {
	data    []byte
	i       int    // read position
	typeErr error  // the first value of a wrong type: reported once all is decoded
	abort   error  // an error that stopped decoding, as time.Time's UnmarshalJSON errors do
	buf     []byte // unquoted strings
	folded  []byte // case-folded keys
}

// syntaxError is DecodeEvent's error for input that is not valid JSON.
type syntaxError struct {
	Offset int // where the invalid byte (or the end of input) is
	msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON event at offset %d: %s", e.Offset, e.msg)
}

// A typeError is DecodeEvent's error for a value of the wrong type, e.g. a number for a string
// field. The other fields are decoded.
type typeError struct {
	Field  string // the JSON field, e.g. content.truncated; empty for the event itself
	Value  string // the JSON type found: string, number, bool, object or array
	Offset int
}

func (e *typeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("cannot decode a JSON %s at offset %d as an event", e.Value, e.Offset)
	}
	return fmt.Sprintf("cannot decode event field %s: unexpected JSON %s at offset %d", e.Field, e.Value, e.Offset)
}

func (d *decoder) syntaxErr(msg string) error {
	if d.i >= len(d.data) {
		return &syntaxError{Offset: len(d.data), msg: "unexpected end of input"}
	}
	return &syntaxError{Offset: d.i, msg: fmt.Sprintf("invalid character %q %s", d.data[d.i], msg)}
}

// wrongType skips the value at d.i and notes the first type error.
func (d *decoder) wrongType(field string, depth int) error {
	start := d.i
	kind := "number"
	switch d.data[d.i] {
	case '"':
		kind = "string"
	case 't', 'f':
		kind = "bool"
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	}
	if err := d.skipValue(depth); err != nil {
		return err
	}
	if d.typeErr == nil {
		d.typeErr = &typeError{Field: field, Value: kind, Offset: start}
	}
	return nil
}

func (d *decoder) skipSpace() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end of input (which a NUL byte
// also returns: both are invalid wherever peek is used).
func (d *decoder) peek() byte {
	d.skipSpace()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) skipAll() error {
	if d.peek() == 0 {
		return d.syntaxErr("")
	}
	if err := d.skipValue(0); err != nil {
		return err
	}
	if d.skipSpace(); d.i < len(d.data) {
		return d.syntaxErr("after top-level value")
	}
	return nil
}

// top decodes the top-level value: an event object, or null (nothing to do).
func (d *decoder) top(e *Event) error {
	switch d.peek() {
	case 0:
		return d.syntaxErr("")
	case '{':
		if err := d.event(e); err != nil {
			return err
		}
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
	default:
		if err := d.wrongType("", 0); err != nil {
			return err
		}
	}
	if d.skipSpace(); d.i < len(d.data) {
		return d.syntaxErr("after top-level value")
	}
	return nil
}

// Field numbers of Event, Content and Flag.
const (
	fUnknown = iota
	fID
	fSchemaVersion
	fObservedAt
	fCollectorID
	fSource
	fTransport
	fProtocolVersion
	fAgentID
	fAgentSource
	fDeclaredAgent
	fClientName
	fClientVersion
	fServerID
	fSessionID
	fJSONRPCID
	fDirection
	fKind
	fMethod
	fTarget
	fStatus
	fErrorCode
	fLatencyMicros
	fRequestBytes
	fResponseBytes
	fArgsShape
	fArgsHash
	fResultHash
	fTraceID
	fSpanID
	fContent
	fLabels
	fFlags

	fArguments
	fResult
	fTruncated
	fCaptured

	fType
	fSeverity
	fPath
	fEvidence
)

// eventField maps a JSON name to its Event field.
func eventField(name []byte) int {
	switch string(name) {
	case "event_id":
		return fID
	case "schema_version":
		return fSchemaVersion
	case "observed_at":
		return fObservedAt
	case "collector_id":
		return fCollectorID
	case "source":
		return fSource
	case "transport":
		return fTransport
	case "protocol_version":
		return fProtocolVersion
	case "agent_id":
		return fAgentID
	case "agent_source":
		return fAgentSource
	case "declared_agent":
		return fDeclaredAgent
	case "client_name":
		return fClientName
	case "client_version":
		return fClientVersion
	case "server_id":
		return fServerID
	case "session_id":
		return fSessionID
	case "jsonrpc_id":
		return fJSONRPCID
	case "direction":
		return fDirection
	case "kind":
		return fKind
	case "method":
		return fMethod
	case "target":
		return fTarget
	case "status":
		return fStatus
	case "error_code":
		return fErrorCode
	case "latency_us":
		return fLatencyMicros
	case "request_bytes":
		return fRequestBytes
	case "response_bytes":
		return fResponseBytes
	case "args_shape":
		return fArgsShape
	case "args_hash":
		return fArgsHash
	case "result_hash":
		return fResultHash
	case "trace_id":
		return fTraceID
	case "span_id":
		return fSpanID
	case "content":
		return fContent
	case "labels":
		return fLabels
	case "flags":
		return fFlags
	}
	return fUnknown
}

func contentField(name []byte) int {
	switch string(name) {
	case "arguments":
		return fArguments
	case "result":
		return fResult
	case "truncated":
		return fTruncated
	case "captured":
		return fCaptured
	}
	return fUnknown
}

func flagField(name []byte) int {
	switch string(name) {
	case "type":
		return fType
	case "severity":
		return fSeverity
	case "path":
		return fPath
	case "evidence":
		return fEvidence
	}
	return fUnknown
}

// fieldOf finds the field a key names as encoding/json does when no name is the key: case-
// insensitively, folding ASCII letters and the two non-ASCII runes in the fold sets of ASCII
// letters (U+212A KELVIN SIGN with k, U+017F LONG S with s).
func (d *decoder) fieldOf(lookup func([]byte) int, key []byte) int {
	folded := d.folded[:0]
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			folded = append(folded, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		switch r {
		case '\u212a':
			folded = append(folded, 'k')
		case '\u017f':
			folded = append(folded, 's')
		default:
			return fUnknown // no field name has other non-ASCII letters
		}
		i += n
	}
	d.folded = folded
	return lookup(folded)
}

// event decodes an object into e. Once a field's decoding failed (d.abort), the rest of the
// object is only checked, as json.Unmarshal stops assigning then but still requires valid JSON.
func (d *decoder) event(e *Event) error {
	return d.object(1, eventField, func(_ []byte, f int, depth int) error {
		if d.abort != nil {
			return d.skipValue(depth)
		}
		switch f {
		case fID:
			return decodeString(d, &e.ID, "event_id", depth)
		case fSchemaVersion:
			return decodeInt(d, &e.SchemaVersion, "schema_version", depth)
		case fObservedAt:
			start := d.i
			if err := d.skipValue(depth); err != nil {
				return err
			}
			if err := e.ObservedAt.UnmarshalJSON(d.data[start:d.i]); err != nil {
				d.abort = fmt.Errorf("cannot decode event field observed_at: %w", err)
			}
			return nil
		case fCollectorID:
			return decodeString(d, &e.CollectorID, "collector_id", depth)
		case fSource:
			return decodeString(d, &e.Source, "source", depth)
		case fTransport:
			return decodeString(d, &e.Transport, "transport", depth)
		case fProtocolVersion:
			return decodeString(d, &e.ProtocolVersion, "protocol_version", depth)
		case fAgentID:
			return decodeString(d, &e.AgentID, "agent_id", depth)
		case fAgentSource:
			return decodeString(d, &e.AgentSource, "agent_source", depth)
		case fDeclaredAgent:
			return decodeString(d, &e.DeclaredAgent, "declared_agent", depth)
		case fClientName:
			return decodeString(d, &e.ClientName, "client_name", depth)
		case fClientVersion:
			return decodeString(d, &e.ClientVersion, "client_version", depth)
		case fServerID:
			return decodeString(d, &e.ServerID, "server_id", depth)
		case fSessionID:
			return decodeString(d, &e.SessionID, "session_id", depth)
		case fJSONRPCID:
			return decodeString(d, &e.JSONRPCID, "jsonrpc_id", depth)
		case fDirection:
			return decodeString(d, &e.Direction, "direction", depth)
		case fKind:
			return decodeString(d, &e.Kind, "kind", depth)
		case fMethod:
			return decodeString(d, &e.Method, "method", depth)
		case fTarget:
			return decodeString(d, &e.Target, "target", depth)
		case fStatus:
			return decodeString(d, &e.Status, "status", depth)
		case fErrorCode:
			return decodeInt(d, &e.ErrorCode, "error_code", depth)
		case fLatencyMicros:
			return decodeInt(d, &e.LatencyMicros, "latency_us", depth)
		case fRequestBytes:
			return decodeInt(d, &e.RequestBytes, "request_bytes", depth)
		case fResponseBytes:
			return decodeInt(d, &e.ResponseBytes, "response_bytes", depth)
		case fArgsShape:
			return decodeString(d, &e.ArgsShape, "args_shape", depth)
		case fArgsHash:
			return decodeString(d, &e.ArgsHash, "args_hash", depth)
		case fResultHash:
			return decodeString(d, &e.ResultHash, "result_hash", depth)
		case fTraceID:
			return decodeString(d, &e.TraceID, "trace_id", depth)
		case fSpanID:
			return decodeString(d, &e.SpanID, "span_id", depth)
		case fContent:
			return d.content(&e.Content, depth)
		case fLabels:
			return d.labels(&e.Labels, depth)
		case fFlags:
			return d.flags(&e.Flags, depth)
		}
		return d.skipValue(depth)
	})
}

// content decodes the content field. Like json.Unmarshal, it decodes into the Content there is,
// allocates one for any value but null, and sets it nil for null.
func (d *decoder) content(p **Content, depth int) error {
	if d.data[d.i] == 'n' {
		*p = nil
		return d.literal("null")
	}
	if *p == nil {
		*p = new(Content)
	}
	c := *p
	if d.data[d.i] != '{' {
		return d.wrongType("content", depth)
	}
	return d.object(depth+1, contentField, func(_ []byte, f int, depth int) error {
		switch f {
		case fArguments:
			return decodeString(d, &c.Arguments, "content.arguments", depth)
		case fResult:
			return decodeString(d, &c.Result, "content.result", depth)
		case fTruncated:
			return d.decodeBool(&c.Truncated, "content.truncated", depth)
		case fCaptured:
			return d.decodeBool(&c.Captured, "content.captured", depth)
		}
		return d.skipValue(depth)
	})
}

// labels decodes the labels field, adding to the map there is as json.Unmarshal does.
func (d *decoder) labels(p *map[string]string, depth int) error {
	switch d.data[d.i] {
	case 'n':
		*p = nil
		return d.literal("null")
	case '{':
	default:
		return d.wrongType("labels", depth)
	}
	if *p == nil {
		*p = make(map[string]string)
	}
	m := *p
	return d.object(depth+1, nil, func(key []byte, _ int, depth int) error {
		k := string(key) // before the value reuses d.buf
		var v string     // null and a wrong type store ""
		if err := decodeString(d, &v, "labels", depth); err != nil {
			return err
		}
		m[k] = v
		return nil
	})
}

// flags decodes the flags field. Like json.Unmarshal, it decodes the n-th element into the n-th
// Flag the slice holds (up to its capacity), then cuts the slice to the elements read.
func (d *decoder) flags(p *[]Flag, depth int) error {
	switch d.data[d.i] {
	case 'n':
		*p = nil
		return d.literal("null")
	case '[':
	default:
		return d.wrongType("flags", depth)
	}
	if depth+1 > maxDepth {
		return d.syntaxErr("exceeds the maximum nesting depth")
	}
	d.i++ // [
	s := *p
	n := 0
	if d.peek() == ']' {
		d.i++
	} else {
		for {
			if n >= cap(s) {
				s = slices.Grow(s, 1)
			}
			if n >= len(s) {
				s = s[:n+1]
			}
			if err := d.flag(&s[n], depth+1); err != nil {
				return err
			}
			n++
			c := d.peek()
			d.i++
			if c == ']' {
				break
			}
			if c != ',' {
				d.i--
				return d.syntaxErr("after array element")
			}
			d.skipSpace()
		}
	}
	if n == 0 {
		s = []Flag{}
	}
	*p = s[:n]
	return nil
}

func (d *decoder) flag(f *Flag, depth int) error {
	switch d.peek() {
	case '{':
	case 'n':
		return d.literal("null")
	case 0:
		return d.syntaxErr("")
	default:
		return d.wrongType("flags", depth)
	}
	return d.object(depth+1, flagField, func(_ []byte, k int, depth int) error {
		switch k {
		case fType:
			return decodeString(d, &f.Type, "flags.type", depth)
		case fSeverity:
			return decodeString(d, &f.Severity, "flags.severity", depth)
		case fPath:
			return decodeString(d, &f.Path, "flags.path", depth)
		case fEvidence:
			return decodeString(d, &f.Evidence, "flags.evidence", depth)
		}
		return d.skipValue(depth)
	})
}

// object reads the object at d.i (of nesting depth depth): for each member, it finds the field
// with lookup (given the exact name first, then the folded one) and calls value with d.i at
// the member's value.
func (d *decoder) object(depth int, lookup func([]byte) int, value func(key []byte, field, depth int) error) error {
	if depth > maxDepth {
		return d.syntaxErr("exceeds the maximum nesting depth")
	}
	d.i++ // {
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.syntaxErr("looking for beginning of object key string")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		f := fUnknown
		if lookup != nil {
			if f = lookup(key); f == fUnknown {
				f = d.fieldOf(lookup, key)
			}
		}
		if d.peek() != ':' {
			return d.syntaxErr("after object key")
		}
		d.i++
		if d.peek() == 0 {
			return d.syntaxErr("")
		}
		if err := value(key, f, depth); err != nil {
			return err
		}
		c := d.peek()
		d.i++
		if c == '}' {
			return nil
		}
		if c != ',' {
			d.i--
			return d.syntaxErr("after object key:value pair")
		}
	}
}

// decodeString decodes a string, or leaves *p as it is for null; any other value is a type
// error.
func decodeString[T ~string](d *decoder, p *T, field string, depth int) error {
	switch d.data[d.i] {
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		*p = T(s)
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.wrongType(field, depth)
}

// decodeInt decodes an integer, or leaves *p as it is for null. A number that is not an
// integer or overflows is a type error, as for json.Unmarshal.
func decodeInt[T int | int64](d *decoder, p *T, field string, depth int) error {
	c := d.data[d.i]
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return d.wrongType(field, depth)
	}
	start := d.i
	if err := d.number(); err != nil {
		return err
	}
	if n, ok := parseInt(d.data[start:d.i]); ok && int64(T(n)) == n {
		*p = T(n)
	} else if d.typeErr == nil {
		d.typeErr = &typeError{Field: field, Value: "number " + string(d.data[start:d.i]), Offset: start}
	}
	return nil
}

// parseInt parses a valid JSON number as strconv.ParseInt(s, 10, 64) would.
func parseInt(s []byte) (int64, bool) {
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var u uint64
	for _, c := range s {
		if c < '0' || c > '9' || u > (1<<63)/10 {
			return 0, false // a fraction, an exponent, or too many digits
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u-1) - 1, true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

func (d *decoder) decodeBool(p *bool, field string, depth int) error {
	switch d.data[d.i] {
	case 't':
		*p = true
		return d.literal("true")
	case 'f':
		*p = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.wrongType(field, depth)
}

func (d *decoder) literal(lit string) error {
	for j := 0; j < len(lit); j++ {
		if d.i >= len(d.data) || d.data[d.i] != lit[j] {
			return d.syntaxErr("in literal " + lit)
		}
		d.i++
	}
	return nil
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	if d.data[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.data) && d.data[d.i] == '0':
		d.i++
	case d.i < len(d.data) && '1' <= d.data[d.i] && d.data[d.i] <= '9':
		d.digits()
	default:
		return d.syntaxErr("in numeric literal")
	}
	if d.i < len(d.data) && d.data[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return d.syntaxErr("after decimal point in numeric literal")
		}
	}
	if d.i < len(d.data) && (d.data[d.i] == 'e' || d.data[d.i] == 'E') {
		d.i++
		if d.i < len(d.data) && (d.data[d.i] == '+' || d.data[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return d.syntaxErr("in exponent of numeric literal")
		}
	}
	return nil
}

func (d *decoder) digits() int {
	start := d.i
	for d.i < len(d.data) && '0' <= d.data[d.i] && d.data[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}

// skipValue reads and checks the value at d.i, which is at nesting depth depth.
func (d *decoder) skipValue(depth int) error {
	if d.i >= len(d.data) {
		return d.syntaxErr("")
	}
	switch c := d.data[d.i]; {
	case c == '"':
		_, _, _, err := d.rawStr()
		return err
	case c == '{':
		return d.object(depth+1, nil, func(_ []byte, _ int, depth int) error {
			return d.skipValue(depth)
		})
	case c == '[':
		if depth+1 > maxDepth {
			return d.syntaxErr("exceeds the maximum nesting depth")
		}
		d.i++
		if d.peek() == ']' {
			d.i++
			return nil
		}
		for {
			if d.peek() == 0 {
				return d.syntaxErr("")
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			c := d.peek()
			d.i++
			if c == ']' {
				return nil
			}
			if c != ',' {
				d.i--
				return d.syntaxErr("after array element")
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	return d.syntaxErr("looking for beginning of value")
}

// stop marks the bytes that end a run of plain string content: the quote, the backslash,
// control characters (invalid in a string) and non-ASCII bytes (to be checked as UTF-8).
var stop = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < ' ' || c >= utf8.RuneSelf
	}
	return t
}()

// rawStr reads and checks the string at d.i, returning its bytes between the quotes, whether
// they hold escapes, and whether they hold non-ASCII bytes.
func (d *decoder) rawStr() (raw []byte, escaped, nonASCII bool, err error) {
	d.i++ // "
	start := d.i
	data := d.data
	i := d.i
	for {
		for i < len(data) && !stop[data[i]] {
			i++
		}
		if i >= len(data) {
			d.i = i
			return nil, false, false, d.syntaxErr("")
		}
		switch c := data[i]; {
		case c == '"':
			d.i = i + 1
			return data[start:i], escaped, nonASCII, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(data) {
				d.i = i
				return nil, false, false, d.syntaxErr("")
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i >= len(data) || !isHex(data[i]) {
						d.i = i
						return nil, false, false, d.syntaxErr("in \\u hexadecimal character escape")
					}
					i++
				}
			default:
				d.i = i
				return nil, false, false, d.syntaxErr("in string escape code")
			}
		case c < ' ':
			d.i = i
			return nil, false, false, d.syntaxErr("in string literal")
		default:
			nonASCII = true
			i++
		}
	}
}

// str reads the string at d.i and returns its value, which may alias d.data or d.buf until the
// next call.
func (d *decoder) str() ([]byte, error) {
	raw, escaped, nonASCII, err := d.rawStr()
	if err != nil {
		return nil, err
	}
	valid := !nonASCII || utf8.Valid(raw)
	if !escaped && valid {
		return raw, nil
	}
	d.buf = appendUnquoted(slices.Grow(d.buf[:0], len(raw)), raw, valid)
	return d.buf, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// appendUnquoted appends the value of the checked string content s as encoding/json unquotes
// it: escapes resolved, a \u escape of a lone surrogate and each invalid UTF-8 byte made U+FFFD.
// valid says s is valid UTF-8: then only escapes need work.
func appendUnquoted(b, s []byte, valid bool) []byte {
	for i := 0; i < len(s); {
		if valid {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(b, s[i:]...)
			}
			b = append(b, s[i:i+j]...)
			i += j
		}
		switch c := s[i]; {
		case c == '\\':
			i++
			switch c := s[i]; c {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+1:])
				i += 5
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2 = hex4(s[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // " \ /
				b = append(b, c)
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			b = utf8.AppendRune(b, r)
			i += n
		}
	}
	return b
}

// hex4 is the value of the 4 hex digits s starts with (the scanner checked them).
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
