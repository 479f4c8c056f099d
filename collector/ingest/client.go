package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/mcpwatch/mcpwatch/collector/spool"
	"github.com/mcpwatch/mcpwatch/internal/pipeline"
	"github.com/mcpwatch/mcpwatch/schemas"
)

// Client sends events to a running mcpwatch's ingest endpoint through a spool: Emit writes the
// event ahead to disk, a background loop posts batches and retries while mcpwatch is away.
// It is a pipeline.EventEmitter and a pipeline.Component.
type Client struct {
	cfg       ClientConfig
	endpoint  string
	set       pipeline.Settings
	log       *slog.Logger
	transport *http.Transport
	http      *http.Client
	dir       string
	spool     *spool.Spool
	queue     *spool.Queue

	sent     atomic.Int64
	dropped  atomic.Int64
	tooLarge atomic.Int64 // the smallest body mcpwatch refused with 413; 0 when none was

	mu          sync.Mutex
	started     bool
	stopped     bool
	stopAdopt   context.CancelFunc
	finishAdopt chan struct{} // closed by Shutdown: adoption ends after its pass under way
	adoptDone   chan struct{}
	adoptedDirs atomic.Int64
}

// NewClient opens a spool of its own under cfg.SpoolDir and returns a client; Start runs it.
func NewClient(cfg ClientConfig, set pipeline.Settings) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid ingest client config: %w", err)
	}
	cfg = cfg.withDefaults()
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("invalid ingest client config: %w", err)
	}
	set = set.WithComponent("ingest-client")
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("cannot name spool: %w", err)
	}
	c := &Client{
		cfg:      cfg,
		endpoint: cfg.endpoint(),
		set:      set,
		log:      set.Logger,
		dir:      filepath.Join(cfg.SpoolDir, id.String()),
	}
	// One transport for this process's events and the spools it adopts.
	c.transport = http.DefaultTransport.(*http.Transport).Clone()
	c.transport.TLSClientConfig = tlsCfg
	c.http = &http.Client{Transport: c.transport, Timeout: cfg.Timeout}
	c.spool, err = spool.Open(spoolConfig(c.dir, cfg.MaxSpoolBytes), "ingest", set)
	if err != nil {
		return nil, fmt.Errorf("cannot open event spool: %w", err)
	}
	c.queue = spool.NewQueue(c.spool, c.post, spool.QueueOptions{
		AddWait:      100 * time.Millisecond,
		BatchRecords: 5000,
		BatchBytes:   cfg.BatchBytes,
		RetryMin:     200 * time.Millisecond,
		RetryMax:     10 * time.Second,
		OnDrop:       func(n int) { c.dropped.Add(int64(n)) }, // post counts what it sends and drops
	}, set)
	return c, nil
}

func spoolConfig(dir string, maxBytes int64) spool.Config {
	cfg := spool.Config{Dir: dir, MaxBytes: maxBytes}
	if maxBytes > 0 && maxBytes < spool.DefaultSegmentBytes {
		cfg.SegmentBytes = maxBytes
	}
	return cfg
}

// Emit writes ev ahead to the spool; it is sent later.
func (c *Client) Emit(ev schemas.Event) {
	rec, err := json.Marshal(ev)
	if err != nil {
		panic("BUG: cannot marshal event: " + err.Error())
	}
	_ = c.queue.Add(rec) // a drop is counted by OnDrop
}

// Sent is the number of events mcpwatch accepted; Dropped those that were lost (the spool was
// full, or mcpwatch rejected them as invalid or, alone, as larger than it takes).
func (c *Client) Sent() int64    { return c.sent.Load() }
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// Pending is the number of events not yet sent by this process.
func (c *Client) Pending() int { return c.queue.Len() }

// SpoolDir is this process's own spool directory.
func (c *Client) SpoolDir() string { return c.dir }

// Start begins sending in the background, also spools other processes left behind.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return nil
	}
	c.started = true
	if err := c.queue.Start(ctx); err != nil {
		return err
	}
	if !spool.Locking {
		return nil // without locks a running process's spool cannot be told from a left-behind one
	}
	adoptCtx, cancel := context.WithCancel(context.Background())
	c.stopAdopt, c.finishAdopt, c.adoptDone = cancel, make(chan struct{}), make(chan struct{})
	go c.adoptLoop(adoptCtx)
	return nil
}

// Shutdown sends what is waiting, this process's events and those of the spools it is
// adopting, until ctx expires or mcpwatch fails to take them; the rest stays on disk for a
// later process to send. The spool directory is removed when it is empty. Safe to call twice
// and without Start.
func (c *Client) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	c.mu.Unlock()
	err := c.queue.Shutdown(ctx)
	if c.stopAdopt != nil {
		// A short-lived process (a wrap whose client only listed tools) may exit before its
		// adoption pass is through: it finishes that pass, or a last one, within ctx.
		close(c.finishAdopt)
		select {
		case <-c.adoptDone:
		case <-ctx.Done():
		}
		c.stopAdopt()
		<-c.adoptDone
	}
	removed, cerr := c.spool.CloseAndRemove()
	if !removed {
		if n := c.queue.Len(); n > 0 {
			c.log.Warn("events kept on disk: mcpwatch did not take them before exit; the next wrap sends them",
				"events", n, "dir", c.dir)
		}
	}
	c.transport.CloseIdleConnections()
	return errors.Join(err, cerr)
}

// post sends records as NDJSON and counts those mcpwatch accepted and those it never will
// (dropped). It returns an error when the records are to be offered again later; those already
// accepted, if it split them, are then sent twice (mcpwatch deduplicates by event id).
func (c *Client) post(ctx context.Context, recs [][]byte) error {
	if limit := c.tooLarge.Load(); limit > 0 && len(recs) > 1 && bodySize(recs) >= limit {
		return c.postHalves(ctx, recs) // mcpwatch refused a body this large before
	}
	for {
		status, resp, err := c.send(ctx, recs)
		if err != nil {
			return err
		}
		switch {
		case status >= 200 && status < 300:
			c.sent.Add(int64(len(recs)))
			return nil
		case status == http.StatusRequestEntityTooLarge && len(recs) > 1:
			// mcpwatch's collector.ingest.max_body_bytes is below the batch: send it in halves,
			// and later batches this large in halves at once.
			size := bodySize(recs)
			for old := c.tooLarge.Load(); old == 0 || size < old; old = c.tooLarge.Load() {
				if c.tooLarge.CompareAndSwap(old, size) {
					break
				}
			}
			return c.postHalves(ctx, recs)
		case status == http.StatusRequestEntityTooLarge:
			c.dropped.Add(1)
			c.log.Error("mcpwatch refused an event larger than its collector.ingest.max_body_bytes; dropping it",
				"bytes", len(recs[0]))
			return nil
		case status == http.StatusBadRequest && len(resp.Lines) > 0:
			// mcpwatch lists at most 100 bad lines an answer: each retry drops those it
			// listed, so a batch with more goes through in as many rounds.
			keep := recs[:0:0]
			for i, r := range recs {
				if !slices.ContainsFunc(resp.Lines, func(l LineError) bool { return l.Line == i+1 }) {
					keep = append(keep, r)
				}
			}
			dropped := len(recs) - len(keep)
			if dropped == 0 { // lines this batch does not have: take the answer as for all of it
				keep = nil
				dropped = len(recs)
			}
			c.dropped.Add(int64(dropped))
			c.log.Error("mcpwatch rejected invalid events; dropping them", "events", dropped, "first_error", resp.Lines[0].Error)
			if len(keep) == 0 {
				return nil
			}
			recs = keep
		case status == http.StatusBadRequest:
			c.dropped.Add(int64(len(recs)))
			c.log.Error("mcpwatch rejected events; dropping them", "events", len(recs), "status", status, "error", resp.Error)
			return nil
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return fmt.Errorf("mcpwatch refused the events (%d): check --token", status)
		default:
			return fmt.Errorf("mcpwatch answered %d: %s", status, resp.Error)
		}
	}
}

// postHalves posts recs in two halves, in order.
func (c *Client) postHalves(ctx context.Context, recs [][]byte) error {
	half := len(recs) / 2
	if err := c.post(ctx, recs[:half]); err != nil {
		return err
	}
	return c.post(ctx, recs[half:])
}

// bodySize is the size of the request body send makes of recs.
func bodySize(recs [][]byte) int64 {
	n := int64(len(recs))
	for _, r := range recs {
		n += int64(len(r))
	}
	return n
}

func (c *Client) send(ctx context.Context, recs [][]byte) (int, Response, error) {
	body := bytes.Join(recs, []byte("\n"))
	body = append(body, '\n')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, Response{}, fmt.Errorf("cannot make ingest request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, Response{}, fmt.Errorf("cannot post events to mcpwatch: %w", err)
	}
	defer res.Body.Close()
	var resp Response
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	_ = json.Unmarshal(raw, &resp)
	return res.StatusCode, resp, nil
}

// adoptLoop sends the spools other processes left under SpoolDir, retrying while some remain,
// until Shutdown, after which it makes one more pass at most.
func (c *Client) adoptLoop(ctx context.Context) {
	defer close(c.adoptDone)
	delay := time.Second
	for last := false; ; {
		left := c.adoptOrphans(ctx)
		if left == 0 || last || ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(delay):
		case <-c.finishAdopt:
			last = true
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// adoptOrphans sends every unlocked spool under SpoolDir but this process's own, removing
// those it emptied. It returns how many still hold events.
func (c *Client) adoptOrphans(ctx context.Context) int {
	entries, err := os.ReadDir(c.cfg.SpoolDir)
	if err != nil {
		c.log.Warn("cannot list spool directory", "err", err)
		return 0
	}
	left := 0
	for _, e := range entries {
		dir := filepath.Join(c.cfg.SpoolDir, e.Name())
		if !e.IsDir() || dir == c.dir || uuid.Validate(e.Name()) != nil {
			continue
		}
		sp, err := spool.Open(spoolConfig(dir, c.cfg.MaxSpoolBytes), "ingest-adopted", c.set)
		if errors.Is(err, spool.ErrLocked) {
			continue // a running process owns it
		}
		if err != nil {
			c.log.Warn("cannot open a spool left behind", "dir", dir, "err", err)
			continue
		}
		if n, _ := sp.Pending(); n > 0 {
			c.log.Info("sending events an earlier process left behind", "events", n, "dir", dir)
		}
		c.drain(ctx, sp)
		if removed, _ := sp.CloseAndRemove(); removed {
			c.adoptedDirs.Add(1)
		} else {
			left++
		}
		if ctx.Err() != nil {
			return left
		}
	}
	return left
}

// drain posts sp's records until it is empty or a post fails.
func (c *Client) drain(ctx context.Context, sp *spool.Spool) {
	for ctx.Err() == nil {
		b, err := sp.Peek(5000, c.cfg.BatchBytes)
		if err != nil || !b.Advances() {
			return
		}
		if len(b.Records) > 0 {
			if err := c.post(ctx, b.Records); err != nil {
				return
			}
		}
		if err := sp.Ack(b); err != nil {
			return
		}
	}
}
