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

// IDString is the id's JSON text, the key requests and responses are paired by.
func (m *Message) IDString() string { return string(m.ID) }

// ErrEmptyBatch is returned for a batch with no messages, which JSON-RPC calls invalid.
var ErrEmptyBatch = errors.New("empty JSON-RPC batch")

var errNotJSON = errors.New("invalid JSON")

// Parse parses data as a single JSON-RPC message or a batch (a JSON array of messages). batch
// reports which it was. The returned messages' Raw, ID, Params and Result point into data.
func Parse(data []byte) (msgs []Message, batch bool, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if !json.Valid(trimmed) {
			return nil, true, fmt.Errorf("cannot parse JSON-RPC batch: %w", errNotJSON)
		}
		it := elements{d: trimmed, i: 1}
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
		return msgs, true, nil
	}
	m, err := ParseMessage(trimmed)
	if err != nil {
		return nil, false, err
	}
	return []Message{m}, false, nil
}

// ParseMessage parses data as one JSON-RPC message (not a batch). The returned message's Raw,
// ID, Params and Result point into data.
func ParseMessage(data []byte) (Message, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Message{}, errors.New("cannot parse JSON-RPC message: not a JSON object")
	}
	if !json.Valid(trimmed) {
		return Message{}, fmt.Errorf("cannot parse JSON-RPC message: %w", errNotJSON)
	}
	return parseValid(trimmed)
}

// parseValid reads a well-formed JSON value as a message. Keys match as encoding/json matches
// struct fields (case-insensitively, the last of duplicates winning).
func parseValid(v []byte) (Message, error) {
	if !isObject(v) {
		return Message{}, errors.New("cannot parse JSON-RPC message: not a JSON object")
	}
	m := Message{Raw: v, parsed: true}
	var method []byte
	hasMethod := false
	it := newMembers(v)
	for {
		k, val, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyFolds(k, "id"):
			m.ID = val
		case keyFolds(k, "method"):
			switch {
			case isNull(val):
				hasMethod, method = false, nil
			case isString(val):
				hasMethod, method = true, val
			default:
				return Message{}, errors.New("cannot parse JSON-RPC message: method is not a string")
			}
		case keyFolds(k, "params"):
			m.Params = val
		case keyFolds(k, "result"):
			m.Result = val
		case keyFolds(k, "error"):
			e, err := parseError(m.Error, val)
			if err != nil {
				return Message{}, err
			}
			m.Error = e
		}
	}
	if hasMethod {
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

// parseError reads an error member into e (a later member overlays an earlier one, as
// encoding/json decodes into the same struct).
func parseError(e *Error, v []byte) (*Error, error) {
	if isNull(v) {
		return nil, nil
	}
	if !isObject(v) {
		return nil, errors.New("cannot parse JSON-RPC message: error is not an object")
	}
	if e == nil {
		e = &Error{}
	}
	it := newMembers(v)
	for {
		k, val, ok := it.next()
		if !ok {
			return e, nil
		}
		switch {
		case keyFolds(k, "code"):
			if isNull(val) {
				continue
			}
			code, err := strconv.ParseInt(string(val), 10, 0)
			if err != nil {
				return nil, errors.New("cannot parse JSON-RPC message: error code is not an integer")
			}
			e.Code = int(code)
		case keyFolds(k, "message"):
			switch {
			case isNull(val):
			case isString(val):
				e.Message = stringValue(val)
			default:
				return nil, errors.New("cannot parse JSON-RPC message: error message is not a string")
			}
		}
	}
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
