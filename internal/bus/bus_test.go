package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig() Config {
	var c Config
	c.SetDefaults()
	c.Partitions = 2
	return c
}

func startBroker(t *testing.T, dir string) *Embedded {
	t.Helper()
	b, err := StartEmbedded(0, dir, pipeline.Settings{}.WithComponent("test").Logger)
	require.NoError(t, err)
	return b
}

// collect consumes group until it has seen want distinct keys+values, then shuts down.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *collector) handle(_ context.Context, msgs []kafka.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.seen[string(m.Value)]++
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func TestEmitterToConsumerAcrossBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	ctx := context.Background()
	set := pipeline.Settings{}.WithComponent("test")

	b := startBroker(t, dir)
	brokers := b.Brokers()
	require.NoError(t, EnsureTopics(ctx, brokers, cfg))
	require.NoError(t, EnsureTopics(ctx, brokers, cfg), "EnsureTopics is idempotent")

	em := NewEventEmitter(brokers, cfg, set)
	require.NoError(t, em.Start(ctx))
	for i := 0; i < 500; i++ {
		em.Emit(schemas.Event{ID: fmt.Sprint(i), AgentID: fmt.Sprintf("agent-%d", i%7)})
	}
	require.NoError(t, em.Shutdown(ctx))
	require.NoError(t, em.Shutdown(ctx), "second Shutdown is a no-op")

	lag := NewLagCollector(brokers, map[string][]string{"g": {TopicEvents}}, set.Logger)
	defer lag.Close()
	require.Equal(t, 500.0, testutil.ToFloat64(lag), "nothing committed yet: the whole topic is lag")

	// A consumer handles the stream, then the broker restarts.
	first := &collector{seen: map[string]int{}}
	c1 := NewConsumer(brokers, cfg, ConsumerConfig{Group: "g", Topics: []string{TopicEvents}}, first.handle, set)
	require.NoError(t, c1.Start(ctx))
	require.Eventually(t, func() bool { return first.count() == 500 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, c1.Shutdown(ctx))
	require.Equal(t, 0.0, testutil.ToFloat64(lag), "everything handled was committed")
	b.Close()

	// Same data dir, new port: the topic and the committed offsets survive.
	b2, err := StartEmbedded(0, dir, set.Logger)
	require.NoError(t, err)
	defer b2.Close()
	em2 := NewEventEmitter(b2.Brokers(), cfg, set)
	require.NoError(t, em2.Start(ctx))
	em2.Emit(schemas.Event{ID: "after-restart", AgentID: "agent-1"})
	require.NoError(t, em2.Shutdown(ctx))

	second := &collector{seen: map[string]int{}}
	c2 := NewConsumer(b2.Brokers(), cfg, ConsumerConfig{Group: "g", Topics: []string{TopicEvents}}, second.handle, set)
	require.NoError(t, c2.Start(ctx))
	require.Eventually(t, func() bool { return second.count() >= 1 }, 20*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, c2.Shutdown(ctx))
	require.Equal(t, 1, second.count(), "committed messages are not delivered again: %v", second.seen)
}

func TestConsumerRetriesFailedBatchAndCommitsOnlyAfterSuccess(t *testing.T) {
	cfg := testConfig()
	ctx := context.Background()
	set := pipeline.Settings{}.WithComponent("test")
	b := startBroker(t, t.TempDir())
	defer b.Close()
	require.NoError(t, EnsureTopics(ctx, b.Brokers(), cfg))
	p := NewProducer(b.Brokers(), TopicAnomalies, cfg)
	require.NoError(t, p.Produce(ctx, kafka.Message{Key: []byte("a"), Value: []byte("v1")}))
	require.NoError(t, p.Close())

	var calls atomic.Int32
	failing := func(context.Context, []kafka.Message) error {
		calls.Add(1)
		return errors.New("sink down")
	}
	c := NewConsumer(b.Brokers(), cfg, ConsumerConfig{Group: "g2", Topics: []string{TopicAnomalies}}, failing, set)
	require.NoError(t, c.Start(ctx))
	require.Eventually(t, func() bool { return calls.Load() >= 2 }, 20*time.Second, 10*time.Millisecond, "a failed batch is retried")
	require.NoError(t, c.Shutdown(ctx))

	// Nothing was committed, so a new member of the group gets the message again.
	got := &collector{seen: map[string]int{}}
	c2 := NewConsumer(b.Brokers(), cfg, ConsumerConfig{Group: "g2", Topics: []string{TopicAnomalies}}, got.handle, set)
	require.NoError(t, c2.Start(ctx))
	require.Eventually(t, func() bool { return got.count() == 1 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, c2.Shutdown(ctx))
	require.NoError(t, c2.Shutdown(ctx))
}

func TestConfigValidateNamesFields(t *testing.T) {
	c := Config{Brokers: []string{"nohostport"}, Partitions: -1, BatchTimeout: -1}
	err := c.Validate()
	require.ErrorContains(t, err, "bus.brokers[0]")
	require.ErrorContains(t, err, "bus.partitions")
	require.ErrorContains(t, err, "bus.batch_timeout")
	var ok Config
	ok.SetDefaults()
	require.NoError(t, ok.Validate())
}
