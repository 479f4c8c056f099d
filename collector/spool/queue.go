package spool

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Deliver sends records, oldest first, to where they go. It returns nil once the destination
// has them. An error made with Permanent means they can never be delivered: they are dropped
// and counted. Any other error means "try again later": the same records are offered again
// after a backoff.
type Deliver func(ctx context.Context, records [][]byte) error

// Permanent marks a delivery error that retrying cannot fix.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err was made with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// QueueOptions tune a Queue; zero values take the defaults.
type QueueOptions struct {
	// MaxBuffered bounds the records handed to Add and not yet written; beyond it Add drops.
	// Default 65536.
	MaxBuffered int
	// AddWait bounds how long Add waits for its record to reach the spool file, so that a
	// record is on disk (and survives the process being killed) once Add returns, unless the
	// disk is slower than AddWait. 0 means Add never waits.
	AddWait time.Duration
	// BatchRecords and BatchBytes bound one delivery. Defaults 1000 and 4 MiB.
	BatchRecords int
	BatchBytes   int
	// Linger is how long a delivery waits for BatchRecords to accumulate once records are
	// waiting; larger batches cost the destination less. 0 delivers at once.
	Linger time.Duration
	// RetryMin and RetryMax bound the backoff between failed deliveries. Defaults 100ms, 5s.
	RetryMin, RetryMax time.Duration
	// OnDrop, if set, is called with the number of records dropped: Add's buffer or the spool
	// was full, the queue was closed, or a delivery failed permanently.
	OnDrop func(n int)
	// OnDeliver, if set, is called with the number of records delivered.
	OnDeliver func(n int)
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 1 << 16
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = 1000
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 4 << 20
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	return o
}

// Queue writes records ahead to a Spool with group commit and delivers them from it. It is a
// pipeline.Component; it does not close the spool.
type Queue struct {
	sp      *Spool
	deliver Deliver
	opts    QueueOptions
	log     *slog.Logger

	mu      sync.Mutex
	buf     [][]byte
	spare   [][]byte
	group   *group // the group commit the records now in buf belong to
	closed  bool
	started bool

	wake        chan struct{}
	writerDone  chan struct{}
	stopDeliver chan struct{} // closed at Shutdown: deliver what is left, then stop
	deliverDone chan struct{}
	abandon     context.CancelFunc
}

// NewQueue returns a queue in front of sp; Start runs it.
func NewQueue(sp *Spool, deliver Deliver, opts QueueOptions, set pipeline.Settings) *Queue {
	set = set.WithComponent("spool")
	return &Queue{
		sp:      sp,
		deliver: deliver,
		opts:    opts.withDefaults(),
		log:     set.Logger.With("spool", sp.name),
		group:   newGroup(),
		wake:    make(chan struct{}, 1),
	}
}

var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// group is one group commit: the records buffered between two writes.
type group struct {
	written  chan struct{} // closed once the group was written (or dropped)
	accepted int           // how many of the group's records the spool took, set before written closes
}

func newGroup() *group { return &group{written: make(chan struct{})} }

// Add queues rec (which the queue now owns) and waits at most AddWait for it to be written.
// It returns ErrFull or ErrClosed when rec was dropped: the buffer or, if it found out while
// waiting, the spool was full, or the queue was shut down.
func (q *Queue) Add(rec []byte) error { return q.add(rec, q.opts.AddWait) }

// Offer is Add without the wait: rec is in memory until the write loop has written it, for a
// caller that must not wait for the disk.
func (q *Queue) Offer(rec []byte) error { return q.add(rec, 0) }

func (q *Queue) add(rec []byte, wait time.Duration) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.dropped(1)
		return ErrClosed
	}
	if len(q.buf) >= q.opts.MaxBuffered {
		q.mu.Unlock()
		q.dropped(1)
		return ErrFull
	}
	i := len(q.buf)
	q.buf = append(q.buf, rec)
	g := q.group
	q.mu.Unlock()
	notify(q.wake)
	if wait > 0 {
		t := timers.Get().(*time.Timer)
		t.Reset(wait)
		defer func() {
			t.Stop()
			timers.Put(t)
		}()
		select {
		case <-g.written:
			if i >= g.accepted {
				return ErrFull
			}
		case <-t.C:
		}
	}
	return nil
}

// Len is the number of records added and not yet delivered.
func (q *Queue) Len() int {
	q.mu.Lock()
	n := len(q.buf)
	q.mu.Unlock()
	pending, _ := q.sp.Pending()
	return n + int(pending)
}

// Start runs the writer and the delivery loop in the background.
func (q *Queue) Start(_ context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.closed {
		return nil
	}
	q.started = true
	ctx, cancel := context.WithCancel(context.Background())
	q.abandon = cancel
	q.writerDone, q.stopDeliver, q.deliverDone = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go q.writeLoop()
	go q.deliverLoop(ctx)
	return nil
}

// Shutdown stops accepting records, writes those buffered, and delivers what the spool holds
// until it is empty, a delivery fails, or ctx expires; what is left stays in the spool for the
// next run. Safe to call twice and without Start.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	started := q.started
	left := len(q.buf)
	q.mu.Unlock()
	if !started {
		if left > 0 {
			q.dropped(left)
		}
		return nil
	}
	notify(q.wake)
	<-q.writerDone
	close(q.stopDeliver)
	select {
	case <-q.deliverDone:
	case <-ctx.Done():
		q.abandon()
		<-q.deliverDone
	}
	q.abandon()
	if n, _ := q.sp.Pending(); n > 0 {
		q.log.Info("records left in the spool for the next run", "records", n)
	}
	return nil
}

func (q *Queue) writeLoop() {
	defer close(q.writerDone)
	failing := false
	for {
		<-q.wake
		q.mu.Lock()
		buf, g, closed := q.buf, q.group, q.closed
		q.buf, q.spare, q.group = q.spare[:0], nil, newGroup()
		q.mu.Unlock()
		if len(buf) > 0 {
			n, err := q.sp.Append(buf...)
			g.accepted = n
			if err != nil {
				q.dropped(len(buf) - n)
				// Say so once per bad spell, not once per write.
				switch {
				case failing:
				case errors.Is(err, ErrFull):
					q.log.Warn("the spool is full: dropping new records until it has room", "dir", q.sp.cfg.Dir)
				default:
					q.log.Error("cannot write to the spool: dropping records until it works again", "dir", q.sp.cfg.Dir, "err", err)
				}
			}
			failing = err != nil
		}
		close(g.written)
		clear(buf) // let the records be collected
		q.mu.Lock()
		q.spare = buf[:0]
		q.mu.Unlock()
		if closed {
			return
		}
	}
}

func (q *Queue) deliverLoop(ctx context.Context) {
	defer close(q.deliverDone)
	failures := 0
	stopping := false
	for {
		if !stopping {
			select {
			case <-q.stopDeliver:
				stopping = true
			default:
			}
		}
		if !stopping && q.opts.Linger > 0 {
			q.linger(ctx)
		}
		b, err := q.sp.Peek(q.opts.BatchRecords, q.opts.BatchBytes)
		if err != nil {
			q.log.Error("cannot read the spool", "err", err)
			if stopping || !q.sleep(ctx, q.opts.RetryMax) {
				return
			}
			continue
		}
		if !b.Advances() {
			if stopping {
				return
			}
			select {
			case <-q.sp.Appended():
			case <-q.stopDeliver:
				stopping = true
			case <-ctx.Done():
				return
			}
			continue
		}
		if len(b.Records) > 0 {
			err := q.deliver(ctx, b.Records)
			switch {
			case err == nil:
				if failures > 0 {
					q.log.Info("delivering again", "after_failures", failures)
					failures = 0
				}
				if q.opts.OnDeliver != nil {
					q.opts.OnDeliver(len(b.Records))
				}
			case IsPermanent(err):
				q.dropped(len(b.Records))
				q.log.Error("records dropped: they cannot be delivered", "records", len(b.Records), "err", err)
			default:
				if ctx.Err() != nil || stopping {
					return
				}
				if failures == 0 {
					q.log.Warn("cannot deliver; keeping records in the spool and retrying", "records", len(b.Records), "err", err)
				} else {
					q.log.Debug("cannot deliver; retrying", "records", len(b.Records), "attempt", failures+1, "err", err)
				}
				delay := pipeline.Backoff(failures, q.opts.RetryMin, q.opts.RetryMax)
				failures++
				select {
				case <-time.After(delay):
				case <-q.stopDeliver:
					stopping = true // one more attempt, then stop
				case <-ctx.Done():
					return
				}
				continue
			}
		}
		if err := q.sp.Ack(b); err != nil {
			q.log.Error("cannot acknowledge spooled records; they may be delivered again", "err", err)
		}
	}
}

// linger waits, at most Linger, for a full batch when some records are waiting.
func (q *Queue) linger(ctx context.Context) {
	n, _ := q.sp.Pending()
	if n == 0 || n >= int64(q.opts.BatchRecords) {
		return
	}
	t := timers.Get().(*time.Timer)
	t.Reset(q.opts.Linger)
	defer func() {
		t.Stop()
		timers.Put(t)
	}()
	for {
		select {
		case <-q.sp.Appended():
			if n, _ := q.sp.Pending(); n >= int64(q.opts.BatchRecords) {
				return
			}
		case <-t.C:
			return
		case <-q.stopDeliver:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (q *Queue) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

func (q *Queue) dropped(n int) {
	if n > 0 && q.opts.OnDrop != nil {
		q.opts.OnDrop(n)
	}
}
