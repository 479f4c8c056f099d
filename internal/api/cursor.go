package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// A cursor is a position in a list's order (last seen, then id), handed to clients as an
// opaque string: base64url of an 8-byte checksum and a small JSON document. The checksum is
// not a secret (a cursor only positions a query the caller may run anyway); it turns a cursor
// damaged in copy and paste into a clear 400 instead of a silently different page. The list
// name keeps a sessions cursor from being used on anomalies.
type cursor struct {
	List     string    `json:"l"`
	LastSeen time.Time `json:"t"`
	ID       string    `json:"i"`
}

const cursorSum = 8

func encodeCursor(list string, lastSeen time.Time, id string) string {
	body, err := json.Marshal(cursor{List: list, LastSeen: lastSeen.UTC(), ID: id})
	if err != nil {
		panic("BUG: cannot encode cursor: " + err.Error())
	}
	return sealCursor(body)
}

// sealCursor prefixes body with its checksum and encodes both.
func sealCursor(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(append(sum[:cursorSum:cursorSum], body...))
}

var errBadCursor = errors.New("not a cursor this API handed out (pass next_cursor from the previous page unchanged)")

func decodeCursor(list, s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= cursorSum {
		return cursor{}, errBadCursor
	}
	sum, body := raw[:cursorSum], raw[cursorSum:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:cursorSum]) {
		return cursor{}, errBadCursor
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c cursor
	if err := dec.Decode(&c); err != nil || c.LastSeen.IsZero() {
		return cursor{}, errBadCursor
	}
	if c.List != list {
		return cursor{}, errors.New("a cursor from another list (pass next_cursor from the previous page of this list)")
	}
	return c, nil
}
