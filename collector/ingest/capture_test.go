package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/collector/capture"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// TestIngestAppliesTheCapturePolicy: what a sender marked captured, masked or cut does not
// decide what mcpwatch stores; the operator's capture rules and caps do.
func TestIngestAppliesTheCapturePolicy(t *testing.T) {
	rec := &recorder{}
	h, err := New(Config{}, rec, pipeline.Settings{}, WithCapture(capture.Config{
		Rules: []capture.Rule{{Server: "crm", Tools: capture.Tools{Names: []string{"lookup"}}, MaxBytes: 36}},
	}))
	require.NoError(t, err)

	event := func(server, tool string, c *schemas.Content) schemas.Event {
		ev := validEvent(0)
		ev.ServerID, ev.Target, ev.Content = server, tool, c
		return ev
	}
	events := []schemas.Event{
		// A sender that claims capture for a server nobody opted in, and did not mask.
		event("files", "read", &schemas.Content{Arguments: `{"path":"/etc/x","password":"hunter22"}`, Captured: true}),
		// A tool the operator opted in, sent as inspection-only content.
		event("crm", "lookup", &schemas.Content{Arguments: `{"id":7}`}),
		// Opted in, but longer than the rule's cap, and already cut by the sender (not JSON).
		event("crm", "lookup", &schemas.Content{Arguments: `{"q":"Authorization: Bearer abC12345xyz9 and more text"`, Truncated: true}),
		// No content stays no content.
		event("crm", "lookup", nil),
	}
	var body strings.Builder
	for _, ev := range events {
		body.WriteString(line(t, ev) + "\n")
	}
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body.String()))
	req.Header.Set("Content-Type", "application/x-ndjson")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	got := rec.got()
	require.Len(t, got, 4)
	require.Equal(t, &schemas.Content{Arguments: `{"path":"/etc/x","password":"***"}`}, got[0].Content, "not captured, masked again")
	require.Equal(t, &schemas.Content{Arguments: `{"id":7}`, Captured: true}, got[1].Content, "captured as the rule says")
	require.Equal(t, &schemas.Content{Arguments: `{"q":"Authorization: Bearer *** and `, Truncated: true, Captured: true}, got[2].Content,
		"masked again and cut to the rule's 36 bytes")
	require.Nil(t, got[3].Content)
}
