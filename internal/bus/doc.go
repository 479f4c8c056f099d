// Package bus is mcpwatch's Kafka plumbing on segmentio/kafka-go: topic names and creation, a
// synchronous producer, a batching consumer that commits offsets only after its handler's output
// is durable, a non-blocking event emitter for collectors, and the embedded Kafka-protocol broker
// (franz-go's kfake) used when no brokers are configured.
package bus
