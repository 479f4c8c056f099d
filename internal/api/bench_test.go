package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// BenchmarkAgentProfile serves GET /api/v1/agents/{id}/profile from SQLite holding the
// baselines of n agents. The profile loads only the agent's snapshots (LoadBaselinesOf), so the
// cost should not grow with the number of agents.
func BenchmarkAgentProfile(b *testing.B) {
	base := fixtureBaselines(b)
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			st := newEmptyStore(b)
			var snaps []store.Baseline
			for i := range n {
				for _, s := range base {
					if s.Key == "a1" {
						s.Key = fmt.Sprintf("agent-%04d", i)
					}
					snaps = append(snaps, s)
				}
			}
			require.NoError(b, st.SaveBaselines(context.Background(), snaps))
			s, err := New(Config{}, st, nil, nil, pipeline.Settings{})
			require.NoError(b, err)
			h := s.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/agents/agent-0000/profile", nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkTimeSeriesDense serves a dense series of 1,440 one-minute buckets split by agent.
func BenchmarkTimeSeriesDense(b *testing.B) {
	st := newEmptyStore(b)
	require.NoError(b, st.InsertEvents(context.Background(), fixtureEvents))
	s, err := New(Config{}, st, nil, nil, pipeline.Settings{})
	require.NoError(b, err)
	h := s.Handler()
	target := "/api/v1/timeseries?metric=calls&by=agent&step=1m&since=" + q(at(-720)) + "&until=" + q(at(720))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
