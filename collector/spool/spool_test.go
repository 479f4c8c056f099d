package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

type testSpool struct {
	*Spool
	reg *prometheus.Registry
}

func open(t *testing.T, cfg Config) testSpool {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := Open(cfg, "test", pipeline.Settings{Registry: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return testSpool{s, reg}
}

func (s testSpool) metric(name string) float64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func record(i int) []byte { return fmt.Appendf(nil, `{"event_id":"%06d","pad":"%s"}`, i, "x") }

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		n, err := s.Append(record(i))
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
}

// drain peeks and acks everything, returning the records in order.
func drain(t *testing.T, s *Spool, batch int) []string {
	t.Helper()
	var out []string
	for {
		b, err := s.Peek(batch, 1<<20)
		require.NoError(t, err)
		if !b.Advances() {
			return out
		}
		for _, r := range b.Records {
			out = append(out, string(r))
		}
		require.NoError(t, s.Ack(b))
	}
}

func want(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, string(record(i)))
	}
	return out
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	return m
}

func TestAppendPeekAckInOrderAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 200, Fsync: FsyncNever})
	appendN(t, s.Spool, 0, 50)
	require.Greater(t, len(segmentFiles(t, dir)), 5, "small segments roll over")
	n, bytes := s.Pending()
	require.EqualValues(t, 50, n)
	require.Positive(t, bytes)

	// Peek without Ack returns the same records again.
	b1, err := s.Peek(7, 1<<20)
	require.NoError(t, err)
	b2, err := s.Peek(7, 1<<20)
	require.NoError(t, err)
	require.Equal(t, b1.Records, b2.Records)
	require.Len(t, b1.Records, 7)

	require.Equal(t, want(0, 50), drain(t, s.Spool, 7))
	n, bytes = s.Pending()
	require.Zero(t, n)
	require.Zero(t, bytes)
	require.Len(t, segmentFiles(t, dir), 1, "replayed segments are deleted, the one being written stays")
	require.Equal(t, 50.0, s.metric("mcpwatch_spool_records_spooled_total"))
	require.Equal(t, 50.0, s.metric("mcpwatch_spool_records_replayed_total"))
	require.Zero(t, s.metric("mcpwatch_spool_pending_records"))

	// Appends after a full drain are read too.
	appendN(t, s.Spool, 50, 60)
	require.Equal(t, want(50, 60), drain(t, s.Spool, 3))
}

func TestPeekRespectsMaxBytesButReturnsOneRecord(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), Fsync: FsyncNever})
	appendN(t, s.Spool, 0, 10)
	b, err := s.Peek(100, 1)
	require.NoError(t, err)
	require.Len(t, b.Records, 1)
	b, err = s.Peek(100, 2*len(record(0)))
	require.NoError(t, err)
	require.Len(t, b.Records, 2)
}

func TestRestartResumesFromAcknowledged(t *testing.T) {
	for _, fsync := range []string{FsyncBatch, FsyncNever} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, SegmentBytes: 300, Fsync: fsync}
			s, err := Open(cfg, "test", pipeline.Settings{})
			require.NoError(t, err)
			appendN(t, s, 0, 40)
			b, err := s.Peek(15, 1<<20)
			require.NoError(t, err)
			require.NoError(t, s.Ack(b))
			_, err = s.Peek(10, 1<<20) // read but not acknowledged: replayed after the restart
			require.NoError(t, err)
			require.NoError(t, s.Close())
			require.NoError(t, s.Close(), "second Close is a no-op")

			s2 := open(t, cfg)
			n, _ := s2.Pending()
			require.EqualValues(t, 25, n, "pending records are counted at open")
			appendN(t, s2.Spool, 40, 45)
			require.Equal(t, want(15, 45), drain(t, s2.Spool, 4))
		})
	}
}

func TestFullSpoolDropsNewestAndNeverBlocks(t *testing.T) {
	rec := record(0)
	per := int64(headerLen + len(rec))
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 10 * per, SegmentBytes: 3 * per, Fsync: FsyncNever})
	appendN(t, s.Spool, 0, 10)
	n, err := s.Append(record(10), record(11))
	require.ErrorIs(t, err, ErrFull)
	require.Zero(t, n)
	require.Equal(t, 2.0, s.metric("mcpwatch_spool_records_dropped_total"))

	// Replaying makes room again.
	b, err := s.Peek(4, 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.Ack(b))
	n, err = s.Append(record(12), record(13), record(14), record(15), record(16))
	require.ErrorIs(t, err, ErrFull, "four fit, the newest is dropped")
	require.Equal(t, 4, n)
	require.Equal(t, append(want(4, 10), want(12, 16)...), drain(t, s.Spool, 100))
	require.Equal(t, 3.0, s.metric("mcpwatch_spool_records_dropped_total"))
}

func TestSecondOpenOfADirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir}, "a", pipeline.Settings{})
	require.NoError(t, err)
	_, err = Open(Config{Dir: dir}, "b", pipeline.Settings{})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, s.Close())
	s2, err := Open(Config{Dir: dir}, "b", pipeline.Settings{})
	require.NoError(t, err)
	require.NoError(t, s2.Close())
}

func TestCloseAndRemove(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a")
	s, err := Open(Config{Dir: dir}, "a", pipeline.Settings{})
	require.NoError(t, err)
	appendN(t, s, 0, 3)
	removed, err := s.CloseAndRemove()
	require.NoError(t, err)
	require.False(t, removed, "pending records keep the directory")
	require.DirExists(t, dir)

	s, err = Open(Config{Dir: dir}, "a", pipeline.Settings{})
	require.NoError(t, err)
	require.Equal(t, want(0, 3), drain(t, s, 10))
	removed, err = s.CloseAndRemove()
	require.NoError(t, err)
	require.True(t, removed)
	require.NoDirExists(t, dir)
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing is left under a hidden name either")
}

// TestOpenCreatesTheDirectoryLocked: a directory Open creates appears with its lock already
// held (it is made under a hidden name and renamed), so it is never found unlocked.
func TestOpenCreatesTheDirectoryLocked(t *testing.T) {
	if !Locking {
		t.Skip("no locks on this platform")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "new", "spool")
	s, err := Open(Config{Dir: dir}, "a", pipeline.Settings{})
	require.NoError(t, err)
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary directory is left")
	require.Equal(t, "spool", entries[0].Name())
	_, err = Open(Config{Dir: dir}, "b", pipeline.Settings{})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, s.Close())
}

func TestConfigValidateNamesFields(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"collector.spool.dir: must not be empty"}},
		{Config{Dir: "d", MaxBytes: -1, SegmentBytes: -1}, []string{"collector.spool.max_bytes", "collector.spool.segment_bytes"}},
		{Config{Dir: "d", MaxBytes: 10, SegmentBytes: 20}, []string{"collector.spool.segment_bytes: must not exceed max_bytes"}},
		{Config{Dir: "d", Fsync: "always"}, []string{`collector.spool.fsync: must be batch or never, got "always"`}},
	} {
		err := tc.cfg.ValidateAt("collector.spool")
		for _, w := range tc.want {
			require.ErrorContains(t, err, w)
		}
	}
	require.NoError(t, Config{Dir: "d"}.Validate())
	require.ErrorContains(t, Config{}.Validate(), "spool.dir")
}

// corrupt applies damage to the segment files of dir.
type damage struct {
	name string
	do   func(t *testing.T, segs []string)
}

func TestDamagedRecordsAreSkipped(t *testing.T) {
	const total = 30
	recLen := int64(headerLen + len(record(0)))
	for _, tc := range []struct {
		damage
		// lost are the records that may not come back; every other one must.
		lost []int
	}{
		{damage{"truncated mid-record", func(t *testing.T, segs []string) {
			require.NoError(t, os.Truncate(segs[0], 5*recLen+7))
		}}, []int{5, 6, 7, 8, 9}}, // segment 0 holds records 0-9
		{damage{"flipped payload byte", func(t *testing.T, segs []string) {
			flip(t, segs[0], 3*recLen+headerLen+4)
		}}, []int{3}},
		{damage{"flipped length byte", func(t *testing.T, segs []string) {
			flip(t, segs[1], 2*recLen+3)
		}}, []int{12}},
		{damage{"flipped magic", func(t *testing.T, segs []string) {
			flip(t, segs[2], 0)
		}}, []int{20}},
		{damage{"garbage appended", func(t *testing.T, segs []string) {
			f, err := os.OpenFile(segs[0], os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.Write([]byte{0xFA, 0xCE, 1, 2, 3})
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}}, nil},
		{damage{"segment emptied", func(t *testing.T, segs []string) {
			require.NoError(t, os.Truncate(segs[1], 0))
		}}, []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, SegmentBytes: 10 * recLen, Fsync: FsyncNever}
			s, err := Open(cfg, "test", pipeline.Settings{})
			require.NoError(t, err)
			appendN(t, s, 0, total)
			require.NoError(t, s.Close())
			segs := segmentFiles(t, dir)
			require.Len(t, segs, 3)
			tc.do(t, segs)

			s2 := open(t, cfg)
			got := drain(t, s2.Spool, 4)
			var expect []string
			for i := range total {
				if !slices.Contains(tc.lost, i) {
					expect = append(expect, string(record(i)))
				}
			}
			require.Equal(t, expect, got)
			if tc.name != "segment emptied" {
				require.Positive(t, s2.metric("mcpwatch_spool_corrupt_total"))
			}
			n, _ := s2.Pending()
			require.Zero(t, n)
		})
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], off)
	require.NoError(t, err)
	b[0] ^= 0x5A
	_, err = f.WriteAt(b[:], off)
	require.NoError(t, err)
}

func TestDamagedAckFileReplaysFromTheStart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Fsync: FsyncNever}
	s, err := Open(cfg, "test", pipeline.Settings{})
	require.NoError(t, err)
	appendN(t, s, 0, 5)
	b, err := s.Peek(2, 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.Ack(b))
	require.NoError(t, s.Close())
	flip(t, filepath.Join(dir, ackName), 9)

	s2 := open(t, cfg)
	require.Equal(t, want(0, 5), drain(t, s2.Spool, 10), "resending is fine, losing is not")
}

// FuzzSpoolDamage damages a spool's segments as the input says (truncations and byte flips)
// and checks that replay never panics and returns only original records, in order.
func FuzzSpoolDamage(f *testing.F) {
	f.Add([]byte{0, 10, 1, 3})
	f.Add([]byte{1, 200, 0, 0, 1, 201, 0, 0})
	f.Add([]byte{2, 5, 1, 0, 0, 17, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		dir := t.TempDir()
		cfg := Config{Dir: dir, SegmentBytes: 400, Fsync: FsyncNever}
		s, err := Open(cfg, "fuzz", pipeline.Settings{})
		require.NoError(t, err)
		const total = 40
		for i := range total {
			_, err := s.Append(record(i))
			require.NoError(t, err)
		}
		require.NoError(t, s.Close())
		segs := segmentFiles(t, dir)
		// Each op is 4 bytes: kind, segment, offset (2 bytes).
		for len(ops) >= 4 {
			kind, seg, off := ops[0]%3, segs[int(ops[1])%len(segs)], int64(ops[2])<<8|int64(ops[3])
			ops = ops[4:]
			info, err := os.Stat(seg)
			require.NoError(t, err)
			if info.Size() == 0 {
				continue
			}
			off %= info.Size()
			switch kind {
			case 0:
				require.NoError(t, os.Truncate(seg, off))
			default:
				flip(t, seg, off)
			}
		}

		s2, err := Open(cfg, "fuzz", pipeline.Settings{})
		require.NoError(t, err)
		defer s2.Close()
		last := -1
		for {
			b, err := s2.Peek(7, 1<<20)
			require.NoError(t, err)
			if !b.Advances() {
				break
			}
			for _, r := range b.Records {
				i := slices.IndexFunc(want(0, total), func(w string) bool { return w == string(r) })
				require.GreaterOrEqual(t, i, 0, "not an original record: %q", r)
				require.Greater(t, i, last, "out of order")
				last = i
			}
			require.NoError(t, s2.Ack(b))
		}
	})
}
