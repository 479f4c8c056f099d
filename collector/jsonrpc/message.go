package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Message is one JSON-RPC 2.0 message.
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

type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// ErrEmptyBatch is returned for a batch with no messages, which JSON-RPC calls invalid.
var ErrEmptyBatch = errors.New("empty JSON-RPC batch")

// Parse parses data as a single JSON-RPC message or a batch (a JSON array of messages). batch
// reports which it was. The returned messages' Raw fields point into data.
func Parse(data []byte) (msgs []Message, batch bool, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, true, fmt.Errorf("cannot parse JSON-RPC batch: %w", err)
		}
		if len(elems) == 0 {
			return nil, true, ErrEmptyBatch
		}
		msgs = make([]Message, 0, len(elems))
		for i, e := range elems {
			m, err := ParseMessage(e)
			if err != nil {
				return nil, true, fmt.Errorf("batch element %d: %w", i, err)
			}
			msgs = append(msgs, m)
		}
		return msgs, true, nil
	}
	m, err := ParseMessage(trimmed)
	if err != nil {
		return nil, false, err
	}
	return []Message{m}, false, nil
}

// ParseMessage parses data as one JSON-RPC message (not a batch).
func ParseMessage(data []byte) (Message, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Message{}, errors.New("cannot parse JSON-RPC message: not a JSON object")
	}
	var w wireMessage
	if err := json.Unmarshal(trimmed, &w); err != nil {
		return Message{}, fmt.Errorf("cannot parse JSON-RPC message: %w", err)
	}
	m := Message{Raw: trimmed, ID: w.ID, Params: w.Params, Result: w.Result, Error: w.Error}
	if w.Method != nil {
		if *w.Method == "" {
			return Message{}, errors.New("cannot parse JSON-RPC message: empty method")
		}
		m.Method = *w.Method
		return m, nil
	}
	if w.ID == nil {
		return Message{}, errors.New("cannot parse JSON-RPC message: neither a method nor an id")
	}
	if w.Result == nil && w.Error == nil {
		return Message{}, errors.New("cannot parse JSON-RPC message: response without result or error")
	}
	return m, nil
}
