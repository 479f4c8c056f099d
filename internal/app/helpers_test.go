package app_test

import (
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/app"
)

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// counterValue sums a counter's samples in a's registry (nil: the default registry) whose
// label has the given value ("" label: all samples).
func counterValue(tb testing.TB, a *app.App, name, label, value string) float64 {
	var g prometheus.Gatherer = prometheus.DefaultGatherer
	if a != nil {
		g = a.Registry()
	}
	mfs, err := g.Gather()
	require.NoError(tb, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
