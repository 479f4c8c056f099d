package bus

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config says where the bus is and how mcpwatch uses it.
type Config struct {
	// Brokers are host:port addresses of a Kafka-protocol cluster. Empty means: start the
	// embedded broker and use it.
	Brokers []string `yaml:"brokers"`
	// Embedded configures the embedded broker used when Brokers is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`
	// Partitions is the partition count of topics mcpwatch creates. Detectors scale by partitions.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of topics mcpwatch creates.
	ReplicationFactor int `yaml:"replication_factor"`
	// Retention is how long topics mcpwatch creates keep messages (topic retention.ms).
	Retention time.Duration `yaml:"retention"`
	// BatchTimeout bounds how long a producer waits to fill a batch. kafka-go's own default of
	// 1 s would add a second of latency to every stage.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// BatchSize is the most messages a producer sends, or a consumer hands its stage, at once.
	BatchSize int `yaml:"batch_size"`
}

// EmbeddedConfig configures the in-process broker.
type EmbeddedConfig struct {
	// Port on 127.0.0.1 the embedded broker listens on; 0 picks a free port.
	Port int `yaml:"port"`
}

// DefaultEmbeddedPort is the embedded broker's default port on 127.0.0.1.
const DefaultEmbeddedPort = 7492

// SetDefaults fills zero values with defaults.
func (c *Config) SetDefaults() {
	if c.Embedded.Port == 0 && len(c.Brokers) == 0 {
		c.Embedded.Port = DefaultEmbeddedPort
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 5 * time.Millisecond
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
}

// Validate reports every invalid field by its path.
func (c *Config) Validate() error {
	var errs []error
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("bus.brokers[%d]: %q is not host:port", i, b))
		}
	}
	if c.Embedded.Port < 0 || c.Embedded.Port > 65535 {
		errs = append(errs, fmt.Errorf("bus.embedded.port: %d is not a TCP port", c.Embedded.Port))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("bus.partitions: must be at least 1"))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("bus.replication_factor: must be at least 1"))
	}
	if c.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("bus.retention: must be at least 1m"))
	}
	if c.BatchTimeout <= 0 || c.BatchTimeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("bus.batch_timeout: must be between 1ns and 10s"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("bus.batch_size: must be at least 1"))
	}
	return errors.Join(errs...)
}
