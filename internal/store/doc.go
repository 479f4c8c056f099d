// Package store persists events, anomalies and model baselines. It has one interface, Store, and
// two backends: an embedded pure-Go SQLite file (the default) and ClickHouse. One conformance
// suite runs against both. The Writer component consumes the bus into a Store in batches.
package store
