package bus

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) that keeps its data under a
// directory, so a restart on the same data dir resumes every topic and committed offset. It
// listens on 127.0.0.1 only.
type Embedded struct {
	cluster *kfake.Cluster
	logger  *slog.Logger
}

// StartEmbedded starts the broker on 127.0.0.1:port (0 picks a free port) with data in dataDir.
func StartEmbedded(port int, dataDir string, logger *slog.Logger) (*Embedded, error) {
	c, err := kfake.NewCluster(
		kfake.Ports(port),
		kfake.DataDir(dataDir),
		kfake.ClusterID("mcpwatch-embedded"),
		// kfake's default minimum would reject kafka-go's short session timeouts in tests.
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot start embedded broker on 127.0.0.1:%d with data in %s: %w", port, dataDir, err)
	}
	logger.Info("embedded broker started", "addr", c.ListenAddrs()[0], "data_dir", dataDir)
	return &Embedded{cluster: c, logger: logger}, nil
}

// Brokers returns the broker's address, to use as Config.Brokers.
func (e *Embedded) Brokers() []string { return e.cluster.ListenAddrs() }

// Close stops the broker and flushes its data to disk. Safe to call twice.
func (e *Embedded) Close() {
	if e == nil || e.cluster == nil {
		return
	}
	e.cluster.Close()
	e.cluster = nil
	e.logger.Info("embedded broker stopped")
}
