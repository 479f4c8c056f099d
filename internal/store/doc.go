// Package store persists events, anomalies, model baselines, tool-definition versions and alert
// delivery outcomes, and answers the API's queries over them (sessions, anomalies, agents and
// their risk, time series, values). It has one interface, Store, and two backends: an embedded
// pure-Go SQLite file (the default) and ClickHouse. One conformance suite runs against both. The
// Writer component consumes the bus into a Store in batches.
package store
