package api

import (
	"testing"
	"time"
)

// FuzzDecodeCursor checks that any string is either refused or decodes to a cursor that
// encodes back to the same position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(listSessions, time.Date(2026, 11, 3, 2, 0, 0, 123000, time.UTC), "s/3"))
	f.Add(encodeCursor(listAnomalies, time.Unix(0, 0), "an1"))
	f.Add("")
	f.Add("not a cursor")
	f.Add(sealCursor([]byte(`{"l":"sessions","t":"2026-11-03T02:00:00Z","i":""}`)))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(listSessions, s)
		if err != nil {
			return
		}
		if c.List != listSessions || c.LastSeen.IsZero() {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		again, err := decodeCursor(listSessions, encodeCursor(listSessions, c.LastSeen, c.ID))
		if err != nil || !again.LastSeen.Equal(c.LastSeen) || again.ID != c.ID {
			t.Fatalf("%+v does not round-trip: %+v, %v", c, again, err)
		}
	})
}

// FuzzParseTime checks that ParseTime never panics and that what it accepts is not after now
// when relative.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-03T02:15:00Z", "2026-11-03", "15m", "7d", "1h30m", "-2h", "d", "99999999d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			return
		}
		if _, perr := parseRelative(s); perr == nil && got.After(now) {
			t.Fatalf("%q is a duration back from now but gave %v", s, got)
		}
	})
}
