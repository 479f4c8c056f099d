package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// newClickHouseStore opens a store on a fresh database of the ClickHouse server named by
// MCPWATCH_TEST_CLICKHOUSE_ADDR (scripts/clickhouse.sh starts one), dropped after the test.
// Without the variable the test is skipped, unless MCPWATCH_REQUIRE_CLICKHOUSE=1 (CI).
func newClickHouseStore(t *testing.T) store.Store {
	t.Helper()
	addr := os.Getenv("MCPWATCH_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		if os.Getenv("MCPWATCH_REQUIRE_CLICKHOUSE") == "1" {
			t.Fatal("MCPWATCH_REQUIRE_CLICKHOUSE=1 but MCPWATCH_TEST_CLICKHOUSE_ADDR is unset")
		}
		t.Skip("MCPWATCH_TEST_CLICKHOUSE_ADDR is unset; start a server with scripts/clickhouse.sh")
	}
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	cfg := store.DefaultConfig()
	cfg.Backend = store.BackendClickHouse
	cfg.ClickHouse.Addr = []string{addr}
	cfg.ClickHouse.Database = "mcpwatch_apitest_" + hex.EncodeToString(b)
	cfg.RetentionDays = 3650 // the fixture is from 2026-11-03
	ctx := context.Background()
	st, err := store.Open(ctx, cfg, pipeline.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, st.(*store.ClickHouse).DropDatabase(ctx))
		require.NoError(t, st.Close())
	})
	require.NoError(t, st.Migrate(ctx))
	return st
}

// TestSameAnswersOnBothBackends serves the same fixture from SQLite and from ClickHouse and
// requires byte-identical answers from every endpoint: the other tests prove the SQLite answers
// right, this one that ClickHouse gives the same.
func TestSameAnswersOnBothBackends(t *testing.T) {
	ch := newClickHouseStore(t)
	seed(t, ch)
	lite := newTestServer(t, Config{}, newTestStore(t), nil)
	house := newTestServer(t, Config{}, ch, nil)

	window := "&since=" + q(at(0)) + "&until=" + q(at(40))
	targets := []string{
		"/api/v1/sessions",
		"/api/v1/sessions?agent=a1",
		"/api/v1/sessions?server=git&since=" + q(at(11)),
		"/api/v1/sessions?tool=read_file",
		"/api/v1/sessions?min_score=50",
		"/api/v1/sessions?until=" + q(at(10)),
		"/api/v1/sessions?agent=nobody",
		"/api/v1/sessions/s1",
		"/api/v1/sessions/s%2F3",
		"/api/v1/sessions/nope",
		"/api/v1/sessions/s1/events",
		"/api/v1/sessions/s1/events?limit=2",
		"/api/v1/sessions/nope/events",
		"/api/v1/anomalies",
		"/api/v1/anomalies?agent=a1&kind=rate_spike",
		"/api/v1/anomalies?server=fs",
		"/api/v1/anomalies?session=s%2F3",
		"/api/v1/anomalies?min_severity=high&min_score=80",
		"/api/v1/anomalies?since=41m",
		"/api/v1/anomalies/an2",
		"/api/v1/anomalies/nope",
		"/api/v1/agents",
		"/api/v1/agents?since=" + q(at(5)) + "&until=" + q(at(20)),
		"/api/v1/agents?limit=1",
		"/api/v1/agents/a1",
		"/api/v1/agents/a1?since=" + q(at(30)),
		"/api/v1/agents/a2?since=" + q(at(30)),
		"/api/v1/agents/a1/profile",
		"/api/v1/agents/a2/profile",
		"/api/v1/timeseries?metric=calls",
		"/api/v1/timeseries?metric=calls&step=10m" + window,
		"/api/v1/timeseries?metric=calls&by=agent&step=10m" + window,
		"/api/v1/timeseries?metric=calls&by=tool&step=5m" + window,
		"/api/v1/timeseries?metric=calls&by=server&server=git&step=10m" + window,
		"/api/v1/timeseries?metric=errors&by=tool&step=10m" + window,
		"/api/v1/timeseries?metric=errors&tool=git_push&step=1h&since=1d",
		"/api/v1/timeseries?metric=anomalies&by=kind&step=10m" + window,
		"/api/v1/timeseries?metric=anomalies&by=severity&agent=a1&step=10m" + window,
		"/api/v1/timeseries?metric=deliveries&by=status&step=10m" + window,
		"/api/v1/timeseries?metric=deliveries&by=sink&agent=a1&step=7m" + window,
		"/api/v1/values/agents",
		"/api/v1/values/servers?since=" + q(at(20)),
		"/api/v1/values/tools?agent=a2",
		"/api/v1/definitions",
		"/api/v1/definitions?server=fs&kind=tool",
		"/api/v1/definitions?since=" + q(at(5)),
		"/api/v1/deliveries",
		"/api/v1/deliveries?anomaly=an3&status=dead_lettered",
		"/api/v1/deliveries?sink=soc&since=" + q(at(30)),
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			wantCode, _, want := lite.do(t, target)
			gotCode, _, got := house.do(t, target)
			require.Equal(t, wantCode, gotCode, "sqlite: %s\nclickhouse: %s", want, got)
			require.Equal(t, string(want), string(got))
		})
	}

	// Following cursors page by page gives the same pages too.
	for _, list := range []string{"/api/v1/sessions?limit=1", "/api/v1/anomalies?limit=1"} {
		next := list
		for pages := 0; next != ""; pages++ {
			require.Less(t, pages, 5)
			_, _, want := lite.do(t, next)
			_, _, got := house.do(t, next)
			require.Equal(t, string(want), string(got), next)
			next = ""
			if c := decode[SessionsResponse](t, want).NextCursor; c != "" {
				next = list + "&cursor=" + c // the sessions and anomalies pages share the field
			}
		}
	}
}
