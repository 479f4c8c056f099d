package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// sink is a Deliver that records what it got and fails while told to.
type sink struct {
	mu      sync.Mutex
	got     []string
	fail    error
	calls   atomic.Int32
	dropped atomic.Int64
}

func (k *sink) deliver(_ context.Context, recs [][]byte) error {
	k.calls.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	for _, r := range recs {
		k.got = append(k.got, string(r))
	}
	return nil
}

func (k *sink) setFail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = err
}

func (k *sink) records() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.got...)
}

func newQueue(t *testing.T, s *Spool, k *sink, opts QueueOptions) *Queue {
	t.Helper()
	opts.RetryMin, opts.RetryMax = time.Millisecond, 20*time.Millisecond
	opts.OnDrop = func(n int) { k.dropped.Add(int64(n)) }
	return NewQueue(s, k.deliver, opts, pipeline.Settings{})
}

func TestQueueDeliversInOrder(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), SegmentBytes: 1000})
	k := &sink{}
	var delivered atomic.Int64
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: time.Second, BatchRecords: 7})
	q.opts.OnDeliver = func(n int) { delivered.Add(int64(n)) }
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	require.NoError(t, q.Start(ctx), "second Start is a no-op")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * 100; i < g*100+100; i++ {
				require.NoError(t, q.Add(record(i)))
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return len(k.records()) == 400 }, 10*time.Second, time.Millisecond)
	require.NoError(t, q.Shutdown(ctx))
	require.NoError(t, q.Shutdown(ctx), "second Shutdown is a no-op")
	require.EqualValues(t, 400, delivered.Load())
	require.Zero(t, k.dropped.Load())
	require.Zero(t, q.Len())
	// Each producer's records arrive in the order it added them.
	last := map[int]int{}
	for _, r := range k.records() {
		i, err := strconv.Atoi(r[13:19])
		require.NoError(t, err)
		prev, ok := last[i/100]
		require.True(t, !ok || i > prev, "record %d after %d", i, prev)
		last[i/100] = i
	}
	require.ErrorIs(t, q.Add(record(1)), ErrClosed)
	require.EqualValues(t, 1, k.dropped.Load())
}

func TestQueueKeepsRecordsWhileDeliveryFails(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	k := &sink{}
	k.setFail(errors.New("down"))
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: time.Second})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	for i := range 50 {
		require.NoError(t, q.Add(record(i)))
	}
	require.Eventually(t, func() bool { return k.calls.Load() >= 3 }, 5*time.Second, time.Millisecond, "failed deliveries are retried")
	require.Equal(t, 50, q.Len())
	k.setFail(nil)
	require.Eventually(t, func() bool { return len(k.records()) == 50 }, 5*time.Second, time.Millisecond)
	require.Equal(t, want(0, 50), k.records())
	require.NoError(t, q.Shutdown(ctx))
	require.Zero(t, k.dropped.Load())
}

func TestQueueShutdownLeavesUndeliveredRecordsForTheNextRun(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir}
	s, err := Open(cfg, "test", pipeline.Settings{})
	require.NoError(t, err)
	k := &sink{}
	k.setFail(errors.New("down"))
	q := newQueue(t, s, k, QueueOptions{})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	for i := range 20 {
		require.NoError(t, q.Add(record(i)))
	}
	start := time.Now()
	require.NoError(t, q.Shutdown(ctx), "a failing destination does not hold Shutdown up")
	require.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, s.Close())

	s2 := open(t, cfg)
	k2 := &sink{}
	q2 := newQueue(t, s2.Spool, k2, QueueOptions{})
	require.NoError(t, q2.Start(ctx))
	require.Eventually(t, func() bool { return len(k2.records()) == 20 }, 5*time.Second, time.Millisecond)
	require.Equal(t, want(0, 20), k2.records())
	require.NoError(t, q2.Shutdown(ctx))
	require.Zero(t, k.dropped.Load()+k2.dropped.Load())
}

func TestQueueShutdownDeliversWhatIsLeft(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	k := &sink{}
	q := newQueue(t, s.Spool, k, QueueOptions{})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	for i := range 300 {
		require.NoError(t, q.Add(record(i)))
	}
	require.NoError(t, q.Shutdown(ctx))
	require.Equal(t, want(0, 300), k.records())
}

func TestQueuePermanentFailureDropsTheBatch(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	k := &sink{}
	k.setFail(Permanent(errors.New("rejected")))
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: time.Second})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	require.NoError(t, q.Add(record(0)))
	require.Eventually(t, func() bool { return k.dropped.Load() == 1 }, 5*time.Second, time.Millisecond)
	k.setFail(nil)
	require.NoError(t, q.Add(record(1)))
	require.Eventually(t, func() bool { return len(k.records()) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, want(1, 2), k.records())
	require.NoError(t, q.Shutdown(ctx))
}

func TestQueueAddWaitsUntilWritten(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	k := &sink{}
	k.setFail(errors.New("down")) // nothing is acknowledged, so Pending counts every record
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: 10 * time.Second})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	for i := range 20 {
		require.NoError(t, q.Add(record(i)))
		n, _ := s.Pending()
		require.EqualValues(t, i+1, n, "the record is in the spool file when Add returns")
	}
	require.NoError(t, q.Shutdown(ctx))
}

// TestQueueOfferNeverWaits: Offer returns with its record in memory though nothing writes
// it (the queue is not started, as a disk that does not keep up), where Add would wait out
// AddWait; the record is written and delivered once the queue runs.
func TestQueueOfferNeverWaits(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	k := &sink{}
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: time.Hour})
	offered := make(chan error, 1)
	go func() { offered <- q.Offer(record(0)) }()
	select {
	case err := <-offered:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Offer waited for the disk")
	}
	n, _ := s.Pending()
	require.Zero(t, n, "not written yet")
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	require.Eventually(t, func() bool { return len(k.records()) == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, q.Shutdown(ctx))
}

func TestQueueBoundsItsBuffer(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	k := &sink{}
	q := newQueue(t, s.Spool, k, QueueOptions{MaxBuffered: 3})
	// Not started: nothing drains the buffer.
	for i := range 3 {
		require.NoError(t, q.Add(record(i)))
	}
	require.ErrorIs(t, q.Add(record(3)), ErrFull)
	require.EqualValues(t, 1, k.dropped.Load())
	require.NoError(t, q.Shutdown(context.Background()), "Shutdown without Start")
	require.EqualValues(t, 4, k.dropped.Load(), "what was never written is counted as dropped")
}

func TestQueueSpoolFullCountsDrops(t *testing.T) {
	per := int64(headerLen + len(record(0)))
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 5 * per, SegmentBytes: 5 * per})
	k := &sink{}
	k.setFail(errors.New("down"))
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: time.Second})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	for i := range 8 {
		err := q.Add(record(i))
		if i < 5 {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, ErrFull, "Add learns of the drop while it waits")
		}
	}
	require.EqualValues(t, 3, k.dropped.Load())
	k.setFail(nil)
	require.Eventually(t, func() bool { return len(k.records()) == 5 }, 5*time.Second, time.Millisecond)
	require.Equal(t, want(0, 5), k.records(), "the newest were dropped")
	require.NoError(t, q.Shutdown(ctx))
}

const childEnv = "MCPWATCH_SPOOL_TEST_CHILD_DIR"

// runChild adds records forever to a queue whose destination never accepts them, printing the
// number of each record once Add returned.
func runChild() int {
	s, err := Open(Config{Dir: os.Getenv(childEnv)}, "child", pipeline.Settings{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	block := func(ctx context.Context, _ [][]byte) error { <-ctx.Done(); return ctx.Err() }
	q := NewQueue(s, block, QueueOptions{AddWait: time.Minute}, pipeline.Settings{})
	_ = q.Start(context.Background())
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if err := q.Add(record(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(w, i)
		w.Flush()
	}
}

// TestQueueSurvivesKill9 kills a process that is adding records: every record whose Add had
// returned is in the spool afterwards.
func TestQueueSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	acknowledged := -1
	for sc.Scan() {
		acknowledged, err = strconv.Atoi(sc.Text())
		require.NoError(t, err)
		if acknowledged == 2000 {
			require.NoError(t, cmd.Process.Kill())
		}
	}
	_ = cmd.Wait()
	require.GreaterOrEqual(t, acknowledged, 2000)

	s := open(t, Config{Dir: dir})
	got := drain(t, s.Spool, 1000)
	require.GreaterOrEqual(t, len(got), acknowledged+1)
	require.Equal(t, want(0, acknowledged+1), got[:acknowledged+1])
}

func TestQueueLingersForFullerBatches(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	k := &sink{}
	// The linger is long next to three Adds even when each waits for a busy disk (a CI
	// machine running every package's tests at once took over 500 ms).
	q := newQueue(t, s.Spool, k, QueueOptions{AddWait: time.Second, BatchRecords: 10, Linger: 2 * time.Second})
	ctx := context.Background()
	require.NoError(t, q.Start(ctx))
	for i := range 3 {
		require.NoError(t, q.Add(record(i)))
	}
	require.Eventually(t, func() bool { return len(k.records()) == 3 }, 10*time.Second, time.Millisecond)
	require.EqualValues(t, 1, k.calls.Load(), "three records, one delivery")
	require.NoError(t, q.Shutdown(ctx))

	// A full batch goes at once, however long the linger.
	k2 := &sink{}
	q2 := newQueue(t, s.Spool, k2, QueueOptions{AddWait: time.Second, BatchRecords: 10, Linger: time.Hour})
	require.NoError(t, q2.Start(ctx))
	for i := 3; i < 13; i++ {
		require.NoError(t, q2.Add(record(i)))
	}
	require.Eventually(t, func() bool { return len(k2.records()) == 10 }, 10*time.Second, time.Millisecond)
	require.NoError(t, q2.Shutdown(ctx))
	require.Equal(t, want(3, 13), k2.records())
}
