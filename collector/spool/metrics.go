package spool

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

type metrics struct {
	spooled, replayed, dropped, corrupt prometheus.Counter
	pendingRecords, pendingBytes        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, name string) *metrics {
	counter := func(metric, help string) prometheus.Counter {
		return pipeline.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metric, Help: help,
		}, []string{"spool"})).WithLabelValues(name)
	}
	gauge := func(metric, help string) prometheus.Gauge {
		return pipeline.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metric, Help: help,
		}, []string{"spool"})).WithLabelValues(name)
	}
	return &metrics{
		spooled:        counter("mcpwatch_spool_records_spooled_total", "Records written to the spool."),
		replayed:       counter("mcpwatch_spool_records_replayed_total", "Records replayed from the spool and acknowledged."),
		dropped:        counter("mcpwatch_spool_records_dropped_total", "Records dropped because the spool was full, closed or could not be written."),
		corrupt:        counter("mcpwatch_spool_corrupt_total", "Regions of the spool skipped because they failed their checksum or were cut short."),
		pendingRecords: gauge("mcpwatch_spool_pending_records", "Records waiting in the spool to be replayed."),
		pendingBytes:   gauge("mcpwatch_spool_pending_bytes", "Bytes of records waiting in the spool to be replayed."),
	}
}
