package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Message is one JSON-RPC 2.0 message. Its byte slices point into the bytes it was parsed from.
type Message struct {
	// Raw is the message's bytes as they appeared on the wire (one element of a batch).
	Raw []byte
	// ID is the id's JSON text as on the wire (e.g. `1` or `"a"`), nil when absent.
	ID json.RawMessage
	// Method is set for requests and notifications.
	Method string
	// Params, Result and Error are set when present in the message.
	Params json.RawMessage
	Result json.RawMessage
	Error  *Error
	// parsed marks a message read by Parse: its values are known to be well-formed JSON, so
	// readers of them need not validate them again.
	parsed bool
}

// Error is a JSON-RPC error object.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// IsRequest reports whether m is a request (a method and an id).
func (m *Message) IsRequest() bool { return m.Method != "" && m.ID != nil }

// IsNotification reports whether m is a notification (a method and no id).
func (m *Message) IsNotification() bool { return m.Method != "" && m.ID == nil }

// IsResponse reports whether m is a response (an id and a result or an error).
func (m *Message) IsResponse() bool { return m.Method == "" && m.ID != nil }

// IDString is the canonical JSON text of the id (CanonicalID), the key requests and responses
// are paired by: peers re-encode the ids they answer, so the text on the wire may differ.
func (m *Message) IDString() string { return CanonicalID(m.ID) }

// CanonicalID returns one JSON text for every encoding of the same id or progress token, as a
// peer that decodes and re-encodes it would answer it: a string decoded and written as
// encoding/json writes it without HTML escaping (`"\u0061"` and `"a\/b"` are `"a"` and `"a/b"`);
// a number as the nearest float64 written as JavaScript and encoding/json write it (`1.0` and
// `2E0` are `1` and `2`, 12345678901234567890 is 12345678901234567000, 1e21 is 1e+21); a number
// beyond float64 (1e400), other values and malformed text as written. It returns "" for nil.
func CanonicalID(raw []byte) string {
	switch {
	case len(raw) == 0:
		return ""
	case len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && plainString(raw):
		return string(raw)
	case plainInteger(raw):
		return string(raw)
	case !json.Valid(raw):
		return string(raw)
	}
	switch v := trimJSONSpace(raw); {
	case isString(v):
		return string(appendCanonical(nil, v, ""))
	case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return string(v) // out of float64's range: no peer can echo it as a number
		}
		if f == 0 {
			f = 0 // -0 is 0
		}
		enc, err := encode(f)
		if err != nil {
			panic("BUG: cannot encode a finite number: " + err.Error())
		}
		return string(enc)
	default:
		return string(v)
	}
}

// plainInteger reports whether raw is an integer in its canonical form already: no sign but a
// minus, no leading zero, no fraction or exponent, and few enough digits (15) to be exact in a
// float64.
func plainInteger(raw []byte) bool {
	d := raw
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && (len(d) > 1 || len(raw) > 1)) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ErrEmptyBatch is returned for a batch with no messages, which JSON-RPC calls invalid.
var ErrEmptyBatch = errors.New("empty JSON-RPC batch")

// ErrTrailingData is wrapped by the error Parse and ParseMessage return, together with the
// messages, when data is one well-formed JSON value followed by more than whitespace (`{…} x`,
// `{…}{…}`). The Go SDK reads an HTTP body or SSE event as its first value and ignores the rest,
// so a server runs that first value; its stdio transport and the TypeScript SDK reject the whole.
var ErrTrailingData = errors.New("trailing data after the JSON value")

var errNotJSON = errors.New("invalid JSON")

// Parse parses data as a single JSON-RPC message or a batch (a JSON array of messages). batch
// reports which it was. The returned messages' Raw, ID, Params and Result point into data.
// Members match as the MCP SDKs match them: by exact name, the last of duplicates winning.
// When the error wraps ErrTrailingData, msgs are the messages of the value data starts with.
func Parse(data []byte) (msgs []Message, batch bool, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		v, trailing, ok := firstValue(trimmed)
		if !ok {
			return nil, true, fmt.Errorf("cannot parse JSON-RPC batch: %w", errNotJSON)
		}
		it := elements{d: v, i: 1}
		for i := 0; ; i++ {
			e, ok := it.next()
			if !ok {
				break
			}
			m, err := parseValid(e)
			if err != nil {
				return nil, true, fmt.Errorf("batch element %d: %w", i, err)
			}
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			return nil, true, ErrEmptyBatch
		}
		if trailing {
			return msgs, true, fmt.Errorf("cannot parse JSON-RPC batch: %w", ErrTrailingData)
		}
		return msgs, true, nil
	}
	m, err := ParseMessage(trimmed)
	if err != nil && !errors.Is(err, ErrTrailingData) {
		return nil, false, err
	}
	return []Message{m}, false, err
}

// ParseMessage parses data as one JSON-RPC message (not a batch). The returned message's Raw,
// ID, Params and Result point into data. When the error wraps ErrTrailingData, the message is
// the object data starts with.
func ParseMessage(data []byte) (Message, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Message{}, errors.New("cannot parse JSON-RPC message: not a JSON object")
	}
	v, trailing, ok := firstValue(trimmed)
	if !ok {
		return Message{}, fmt.Errorf("cannot parse JSON-RPC message: %w", errNotJSON)
	}
	m, err := parseValid(v)
	if err == nil && trailing {
		err = fmt.Errorf("cannot parse JSON-RPC message: %w", ErrTrailingData)
	}
	return m, err
}

// firstValue returns the well-formed object or array that trimmed data starts with, and whether
// more follows it. ok is false when data does not start with one.
func firstValue(d []byte) (v []byte, trailing, ok bool) {
	if json.Valid(d) {
		return d, false, true
	}
	// On malformed data valueEnd only matches brackets; json.Valid then judges the part.
	if end := valueEnd(d, 0); end < len(d) && json.Valid(d[:end]) {
		return d[:end], true, true
	}
	return nil, false, false
}

// parseValid reads a well-formed JSON value as a message. Members match by exact name, the last
// of duplicates winning, as both MCP SDKs decode them (the Go SDK's decoder is case-sensitive;
// the TypeScript SDK's JSON.parse keeps the last duplicate): a key the server ignores, such as
// "Params", must not be what the tap records.
func parseValid(v []byte) (Message, error) {
	if !isObject(v) {
		return Message{}, errors.New("cannot parse JSON-RPC message: not a JSON object")
	}
	m := Message{Raw: v, parsed: true}
	var method, errObj []byte
	it := newMembers(v)
	for {
		k, val, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "id"):
			m.ID = val
		case keyIs(k, "method"):
			method = val
		case keyIs(k, "params"):
			m.Params = val
		case keyIs(k, "result"):
			m.Result = val
		case keyIs(k, "error"):
			errObj = val
		}
	}
	if errObj != nil {
		e, err := parseError(errObj)
		if err != nil {
			return Message{}, err
		}
		m.Error = e
	}
	if method != nil && !isNull(method) && !isString(method) {
		return Message{}, errors.New("cannot parse JSON-RPC message: method is not a string")
	}
	if isString(method) {
		m.Method = stringValue(method)
		if m.Method == "" {
			return Message{}, errors.New("cannot parse JSON-RPC message: empty method")
		}
		return m, nil
	}
	if m.ID == nil {
		return Message{}, errors.New("cannot parse JSON-RPC message: neither a method nor an id")
	}
	if m.Result == nil && m.Error == nil {
		return Message{}, errors.New("cannot parse JSON-RPC message: response without result or error")
	}
	return m, nil
}

// parseError reads the error member, its members matched as parseValid matches them. Of
// duplicate error members the last counts, as JSON.parse keeps it (the Go SDK would merge their
// fields into one error).
func parseError(v []byte) (*Error, error) {
	if isNull(v) {
		return nil, nil
	}
	if !isObject(v) {
		return nil, errors.New("cannot parse JSON-RPC message: error is not an object")
	}
	code, message := field(v, "code"), field(v, "message")
	e := &Error{}
	if code != nil && !isNull(code) {
		c, err := strconv.ParseInt(string(code), 10, 0)
		if err != nil {
			return nil, errors.New("cannot parse JSON-RPC message: error code is not an integer")
		}
		e.Code = int(c)
	}
	switch {
	case message == nil || isNull(message):
	case isString(message):
		e.Message = stringValue(message)
	default:
		return nil, errors.New("cannot parse JSON-RPC message: error message is not a string")
	}
	return e, nil
}

// Clone returns m with its own copy of its bytes, for use after the buffer it was parsed from
// is reused (an SSE event's data).
func (m *Message) Clone() Message {
	c := *m
	c.Raw = bytes.Clone(m.Raw)
	c.ID, c.Params, c.Result = rebase(c.Raw, m.Raw, m.ID), rebase(c.Raw, m.Raw, m.Params), rebase(c.Raw, m.Raw, m.Result)
	if m.Error != nil {
		e := *m.Error
		c.Error = &e
	}
	return c
}

// rebase returns the part of dst that s is of src, or a copy of s when it is not part of src.
func rebase(dst, src, s []byte) []byte {
	if s == nil {
		return nil
	}
	// s is a subslice of src when their backing arrays end together and s starts within src.
	off := cap(src) - cap(s)
	if off >= 0 && off+len(s) <= len(src) && len(s) > 0 && &src[off] == &s[0] {
		return dst[off : off+len(s) : off+len(s)]
	}
	return bytes.Clone(s)
}
