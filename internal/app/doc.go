// Package app assembles mcpwatch from its parts: the top-level configuration file, and the
// roles ("targets") a process runs — collector, enricher, detector, writer, alerting, api — with
// what they depend on (the embedded broker when no brokers are configured, the store). One
// process runs all of them by default; split processes run subsets against a shared Kafka.
package app
