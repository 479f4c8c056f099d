package spool

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpwatch/mcpwatch/internal/pipeline"
)

// Errors returned by a Spool.
var (
	// ErrLocked means another process (or another Spool in this one) uses the directory.
	ErrLocked = errors.New("spool directory is in use")
	// ErrFull means some records were dropped because the spool had no room for them.
	ErrFull = errors.New("spool is full")
	// ErrClosed means the spool was closed.
	ErrClosed = errors.New("spool is closed")
)

// Record framing: magic, length (uint32 LE), CRC-32C of length and payload (uint32 LE). The
// magic bytes never occur in UTF-8 text, so JSON payloads cannot imitate a record header.
var magic = [2]byte{0xFA, 0xCE}

const headerLen = 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	segmentSuffix = ".seg"
	ackName       = "ack"
	lockName      = "lock"
)

func lockPath(dir string) string { return filepath.Join(dir, lockName) }

// position is a byte offset in a segment.
type position struct {
	seg uint64
	off int64
}

type segment struct {
	id   uint64
	size int64 // bytes written; for the segment being written, always a record boundary
}

// Spool is a durable FIFO queue of records in a directory. Append may be called from any
// goroutine; Peek and Ack are for one consumer at a time.
type Spool struct {
	cfg  Config
	name string
	log  *slog.Logger
	m    *metrics
	lock *os.File

	mu             sync.Mutex
	closed         bool
	segs           []segment // oldest first; the last one is written when w is set
	w              *os.File
	totalBytes     int64    // sum of segs' sizes
	ackPos         position // everything before it was replayed and acknowledged
	pendingRecords int64
	buf            []byte
	toSync         []*os.File // rotated segments the syncer syncs and closes
	appended       chan struct{}

	syncReq  chan struct{}
	syncStop chan struct{}
	syncDone chan struct{}

	cmu     sync.Mutex // the consumer's side: Peek, Ack
	ackFile *os.File
	rd      *segReader
}

// Open opens (creating if needed) the spool in cfg.Dir and locks it; name labels its metrics
// and logs. It fails with ErrLocked when the directory is in use. A directory it creates
// appears already locked, so a process looking for spools left behind never takes it.
func Open(cfg Config, name string, set pipeline.Settings) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid spool config: %w", err)
	}
	cfg = cfg.WithDefaults()
	set = set.WithComponent("spool")
	lock, err := openLocked(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		cfg:      cfg,
		name:     name,
		log:      set.Logger.With("spool", name),
		m:        newMetrics(set.Registry, name),
		lock:     lock,
		appended: make(chan struct{}, 1),
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("cannot open spool %s: %w", cfg.Dir, err)
	}
	if cfg.Fsync == FsyncBatch {
		s.syncReq, s.syncStop, s.syncDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// openLocked locks dir, creating it when missing. A new directory is made and locked under a
// hidden temporary name and renamed into place, so it is never seen unlocked: between a mkdir
// and a lock, another process adopting spools left behind could lock it or remove it.
func openLocked(dir string) (*os.File, error) {
	if !Locking {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create spool directory: %w", err)
		}
		return lockDir(dir)
	}
	lock, err := lockDir(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return lock, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create spool directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return nil, fmt.Errorf("cannot create spool directory: %w", err)
	}
	if lock, err = lockDir(tmp); err == nil {
		if err = os.Rename(tmp, dir); err == nil {
			return lock, nil // the lock is on the file, which moved with its directory
		}
		_ = lock.Close()
	}
	_ = os.RemoveAll(tmp)
	if errors.Is(err, fs.ErrExist) {
		return lockDir(dir) // another process made it meanwhile, and holds it or held it
	}
	return nil, fmt.Errorf("cannot create spool directory: %w", err)
}

// load finds the segments and the acknowledged position, and counts what is pending.
func (s *Spool) load() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("cannot list spool directory: %w", err)
	}
	for _, e := range entries {
		id, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("cannot stat segment: %w", err)
		}
		s.segs = append(s.segs, segment{id: id, size: info.Size()})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmpUint(a.id, b.id) })

	s.ackFile, err = os.OpenFile(filepath.Join(s.cfg.Dir, ackName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open ack file: %w", err)
	}
	var raw [20]byte
	if n, _ := s.ackFile.ReadAt(raw[:], 0); n == len(raw) &&
		crc32.Checksum(raw[:16], castagnoli) == binary.LittleEndian.Uint32(raw[16:]) {
		s.ackPos = position{seg: binary.LittleEndian.Uint64(raw[:8]), off: int64(binary.LittleEndian.Uint64(raw[8:16]))}
	}
	// Segments before the acknowledged one were replayed; a crash may have left them behind.
	for len(s.segs) > 0 && s.segs[0].id < s.ackPos.seg {
		if err := os.Remove(s.segmentPath(s.segs[0].id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove replayed segment: %w", err)
		}
		s.segs = s.segs[1:]
	}
	switch {
	case len(s.segs) == 0:
		s.ackPos = position{}
	case s.ackPos.seg != s.segs[0].id:
		s.ackPos = position{seg: s.segs[0].id}
	case s.ackPos.off > s.segs[0].size || s.ackPos.off < 0:
		s.ackPos.off = s.segs[0].size
	}
	for _, sg := range s.segs {
		s.totalBytes += sg.size
	}

	// Count the pending records; this also reports damage left by a crash.
	var corrupt int
	pos := s.ackPos
	for {
		p, limit, next, ok := s.locate(pos)
		if !ok {
			break
		}
		pos = p
		if pos.off >= limit {
			if next == 0 {
				break
			}
			pos = position{seg: next}
			continue
		}
		rd, err := s.reader(pos)
		if err != nil {
			return err
		}
		_, c, err := rd.next(limit)
		corrupt += c
		pos.off = rd.off
		if err == nil {
			s.pendingRecords++
		} else if !errors.Is(err, io.EOF) {
			return err
		}
	}
	if corrupt > 0 {
		s.log.Warn("spool has damaged records; they will be skipped", "regions", corrupt)
	}
	s.updateGauges()
	return nil
}

func (s *Spool) segmentPath(id uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%016x%s", id, segmentSuffix))
}

func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(base) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 16, 64)
	return id, err == nil && id > 0
}

// locate returns where reading from pos really starts (the oldest segment, when pos is before
// it), the readable size of that segment and the id of the next one (0 when none). ok is false
// when there are no segments.
func (s *Spool) locate(pos position) (p position, limit int64, next uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return pos, 0, 0, false
	}
	if pos.seg < s.segs[0].id {
		pos = position{seg: s.segs[0].id}
	}
	i, found := slices.BinarySearchFunc(s.segs, pos.seg, func(sg segment, id uint64) int { return cmpUint(sg.id, id) })
	if !found {
		// Cannot happen: positions only name existing segments. Start over at the oldest.
		return position{seg: s.segs[0].id}, s.segs[0].size, s.nextID(0), true
	}
	return pos, s.segs[i].size, s.nextID(i), true
}

func (s *Spool) nextID(i int) uint64 {
	if i+1 < len(s.segs) {
		return s.segs[i+1].id
	}
	return 0
}

// Append writes recs, in order, with one write. It returns how many were accepted, always the
// first ones: when the next record does not fit in MaxBytes, it and the newer ones are dropped
// (and counted) and the error is ErrFull. It never waits for fsync.
func (s *Spool) Append(recs ...[]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.m.dropped.Add(float64(len(recs)))
		return 0, ErrClosed
	}
	pending := s.pendingBytesLocked()
	buf := s.buf[:0]
	accepted := 0
	for _, r := range recs {
		if len(r) > MaxRecordBytes || pending+int64(len(buf)+headerLen+len(r)) > s.cfg.MaxBytes {
			break
		}
		buf = appendRecord(buf, r)
		accepted++
	}
	if cap(buf) <= 4<<20 {
		s.buf = buf // reuse it, unless one huge batch would pin the memory
	}
	if dropped := len(recs) - accepted; dropped > 0 {
		s.m.dropped.Add(float64(dropped))
	}
	if accepted == 0 {
		return 0, ErrFull
	}
	if err := s.writeLocked(buf); err != nil {
		s.m.dropped.Add(float64(accepted))
		return 0, fmt.Errorf("cannot append to spool: %w", err)
	}
	s.pendingRecords += int64(accepted)
	s.m.spooled.Add(float64(accepted))
	s.updateGauges()
	notify(s.appended)
	if s.syncReq != nil {
		notify(s.syncReq)
	}
	if accepted < len(recs) {
		return accepted, ErrFull
	}
	return accepted, nil
}

func appendRecord(buf, rec []byte) []byte {
	var hdr [headerLen]byte
	hdr[0], hdr[1] = magic[0], magic[1]
	binary.LittleEndian.PutUint32(hdr[2:6], uint32(len(rec)))
	crc := crc32.Update(crc32.Checksum(hdr[2:6], castagnoli), castagnoli, rec)
	binary.LittleEndian.PutUint32(hdr[6:10], crc)
	return append(append(buf, hdr[:]...), rec...)
}

// writeLocked writes whole records to the current segment, starting a new one when it is full.
func (s *Spool) writeLocked(buf []byte) error {
	if s.w != nil {
		if last := s.segs[len(s.segs)-1]; last.size > 0 && last.size+int64(len(buf)) > s.cfg.SegmentBytes {
			s.rotateLocked()
		}
	}
	if s.w == nil {
		id := uint64(1)
		if len(s.segs) > 0 {
			id = s.segs[len(s.segs)-1].id + 1
		}
		f, err := os.OpenFile(s.segmentPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("cannot create segment: %w", err)
		}
		s.w = f
		s.segs = append(s.segs, segment{id: id})
	}
	last := &s.segs[len(s.segs)-1]
	n, err := s.w.Write(buf)
	if err != nil {
		// Cut off a half-written batch so readers never see it; when even that fails, count the
		// bytes and retire the segment: readers skip its damaged tail.
		if n > 0 && s.w.Truncate(last.size) != nil {
			last.size += int64(n)
			s.totalBytes += int64(n)
			s.rotateLocked()
		}
		return err
	}
	last.size += int64(n)
	s.totalBytes += int64(n)
	return nil
}

// rotateLocked stops writing the current segment; the syncer syncs and closes it.
func (s *Spool) rotateLocked() {
	if s.w == nil {
		return
	}
	if s.syncReq != nil {
		s.toSync = append(s.toSync, s.w)
		notify(s.syncReq)
	} else {
		_ = s.w.Close()
	}
	s.w = nil
}

func (s *Spool) syncLoop() {
	defer close(s.syncDone)
	for {
		select {
		case <-s.syncReq:
		case <-s.syncStop:
			return
		}
		s.mu.Lock()
		w, old := s.w, s.toSync
		s.toSync = nil
		s.mu.Unlock()
		for _, f := range old {
			if err := f.Sync(); err != nil {
				s.log.Warn("cannot fsync spool segment", "err", err)
			}
			_ = f.Close()
		}
		// The segment may be rotated meanwhile; then it is closed and synced on the next round.
		if w != nil {
			if err := w.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				s.log.Warn("cannot fsync spool segment", "err", err)
			}
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Appended receives a value after records were appended; a consumer that found the spool empty
// waits on it.
func (s *Spool) Appended() <-chan struct{} { return s.appended }

// Pending returns the records and bytes waiting to be replayed and acknowledged.
func (s *Spool) Pending() (records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingRecords, s.pendingBytesLocked()
}

func (s *Spool) pendingBytesLocked() int64 {
	if len(s.segs) > 0 && s.segs[0].id == s.ackPos.seg {
		return s.totalBytes - s.ackPos.off
	}
	return s.totalBytes
}

func (s *Spool) updateGauges() {
	s.m.pendingRecords.Set(float64(s.pendingRecords))
	s.m.pendingBytes.Set(float64(s.pendingBytesLocked()))
}

// Batch is records read by Peek, to be acknowledged with Ack once they are delivered.
type Batch struct {
	// Records are the payloads, oldest first; the caller owns them.
	Records [][]byte
	first   position
	end     position
	corrupt int
}

// Advances reports whether acknowledging b moves the spool forward: it has records, or it
// skipped damaged bytes.
func (b Batch) Advances() bool { return b.end != b.first }

// Peek reads up to maxRecords records (and about maxBytes, at least one record) from the oldest
// unacknowledged one, skipping damaged ones. Until they are acknowledged, the next Peek returns
// the same records again.
func (s *Spool) Peek(maxRecords, maxBytes int) (Batch, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.mu.Lock()
	pos, closed := s.ackPos, s.closed
	s.mu.Unlock()
	if closed {
		return Batch{}, ErrClosed
	}
	b := Batch{first: pos, end: pos}
	size := 0
	for len(b.Records) < maxRecords && size < maxBytes {
		p, limit, next, ok := s.locate(pos)
		if !ok {
			break
		}
		pos = p
		if pos.off >= limit {
			if next == 0 {
				break
			}
			pos = position{seg: next}
			b.end = pos
			continue
		}
		rd, err := s.reader(pos)
		if err != nil {
			return Batch{}, err
		}
		rec, corrupt, err := rd.next(limit)
		b.corrupt += corrupt
		pos.off = rd.off
		b.end = pos
		if errors.Is(err, io.EOF) {
			continue
		}
		if err != nil {
			return Batch{}, err
		}
		b.Records = append(b.Records, rec)
		size += len(rec)
	}
	return b, nil
}

// Ack acknowledges a batch from the latest Peek: its records are not replayed again, and
// segments left with nothing pending are deleted.
func (s *Spool) Ack(b Batch) error {
	if !b.Advances() {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if b.first != s.ackPos {
		s.mu.Unlock()
		return errors.New("cannot acknowledge spool batch: it does not start where the last acknowledged one ended")
	}
	s.ackPos = b.end
	s.pendingRecords -= int64(len(b.Records))
	var drop []uint64
	for len(s.segs) > 1 && s.segs[0].id < b.end.seg {
		drop = append(drop, s.segs[0].id)
		s.totalBytes -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	s.updateGauges()
	s.mu.Unlock()

	s.m.replayed.Add(float64(len(b.Records)))
	s.m.corrupt.Add(float64(b.corrupt))
	for _, id := range drop {
		if s.rd != nil && s.rd.id == id {
			s.rd.close()
			s.rd = nil
		}
		if err := os.Remove(s.segmentPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot remove replayed segment", "err", err)
		}
	}
	var raw [20]byte
	binary.LittleEndian.PutUint64(raw[:8], b.end.seg)
	binary.LittleEndian.PutUint64(raw[8:16], uint64(b.end.off))
	binary.LittleEndian.PutUint32(raw[16:], crc32.Checksum(raw[:16], castagnoli))
	if _, err := s.ackFile.WriteAt(raw[:], 0); err != nil {
		return fmt.Errorf("cannot record spool acknowledgement: %w", err)
	}
	return nil
}

// Close stops the spool, syncing what was written (with Fsync batch). Safe to call twice.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.syncStop != nil {
		close(s.syncStop)
		<-s.syncDone
	}
	return s.closeFiles()
}

func (s *Spool) closeFiles() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	files := s.toSync
	s.toSync = nil
	if s.w != nil {
		files = append(files, s.w)
		s.w = nil
	}
	if s.ackFile != nil {
		files = append(files, s.ackFile)
		s.ackFile = nil
	}
	for _, f := range files {
		if s.cfg.Fsync == FsyncBatch {
			if err := f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("cannot fsync spool: %w", err))
			}
		}
		_ = f.Close()
	}
	if s.rd != nil {
		s.rd.close()
		s.rd = nil
	}
	if s.lock != nil {
		_ = s.lock.Close()
		s.lock = nil
	}
	return errors.Join(errs...)
}

// CloseAndRemove closes the spool and, when nothing is pending, deletes its directory. It
// reports whether it did.
func (s *Spool) CloseAndRemove() (bool, error) {
	s.mu.Lock()
	empty := s.pendingRecords == 0
	s.mu.Unlock()
	if !empty {
		return false, s.Close()
	}
	// Remove while still holding the lock, so no other process starts using the files. The
	// directory is first moved to a hidden name: once the lock is released, a process that
	// listed it a moment ago finds nothing to open, rather than a lock file to take while the
	// directory is being removed.
	s.cmu.Lock()
	if s.rd != nil {
		s.rd.close()
		s.rd = nil
	}
	s.cmu.Unlock()
	dir := s.cfg.Dir
	if Locking {
		hidden := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".old-"+rand.Text())
		if os.Rename(dir, hidden) == nil {
			dir = hidden
		}
	}
	entries, err := os.ReadDir(dir)
	if err == nil {
		for _, e := range entries {
			if _, ok := parseSegmentName(e.Name()); ok || e.Name() == ackName {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	_ = os.Remove(lockPath(dir))
	cerr := s.Close()
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, errors.Join(cerr, fmt.Errorf("cannot remove spool directory: %w", err))
	}
	return true, cerr
}

// reader returns the consumer's reader positioned at pos.
func (s *Spool) reader(pos position) (*segReader, error) {
	if s.rd != nil && s.rd.id != pos.seg {
		s.rd.close()
		s.rd = nil
	}
	if s.rd == nil {
		f, err := os.Open(s.segmentPath(pos.seg))
		if err != nil {
			return nil, fmt.Errorf("cannot open spool segment: %w", err)
		}
		s.rd = &segReader{id: pos.seg, f: f, off: -1}
		s.rd.src.f = f
	}
	if s.rd.off != pos.off {
		s.rd.reset(pos.off)
	}
	return s.rd, nil
}

// segReader reads records from one segment, never beyond a limit that is always a record
// boundary of what the writer completed.
type segReader struct {
	id  uint64
	f   *os.File
	src limitedFile
	br  *bufio.Reader
	off int64 // offset of the next byte to read
}

// limitedFile reads a file sequentially up to limit, which may grow between reads.
type limitedFile struct {
	f          *os.File
	off, limit int64
}

func (r *limitedFile) Read(p []byte) (int, error) {
	if r.off >= r.limit {
		return 0, io.EOF
	}
	if int64(len(p)) > r.limit-r.off {
		p = p[:r.limit-r.off]
	}
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

func (r *segReader) reset(off int64) {
	r.src.off = off
	if r.br == nil {
		r.br = bufio.NewReaderSize(&r.src, 64<<10)
	} else {
		r.br.Reset(&r.src)
	}
	r.off = off
}

func (r *segReader) close() { _ = r.f.Close() }

var errDamaged = errors.New("damaged record")

// next returns the next record before limit, skipping damaged regions (counted), or io.EOF
// when none is left.
func (r *segReader) next(limit int64) (rec []byte, corrupt int, err error) {
	r.src.limit = limit
	for {
		start := r.off
		if start >= limit {
			return nil, corrupt, io.EOF
		}
		rec, err := r.record(start, limit)
		if err == nil {
			return rec, corrupt, nil
		}
		if !errors.Is(err, errDamaged) {
			return nil, corrupt, err
		}
		corrupt++
		next, err := r.findMagic(start+1, limit)
		if err != nil {
			return nil, corrupt, err
		}
		r.reset(next)
	}
}

func (r *segReader) record(start, limit int64) ([]byte, error) {
	var hdr [headerLen]byte
	if limit-start < headerLen {
		return nil, errDamaged
	}
	if _, err := io.ReadFull(r.br, hdr[:]); err != nil {
		return nil, readErr(err)
	}
	if hdr[0] != magic[0] || hdr[1] != magic[1] {
		return nil, errDamaged
	}
	n := int64(binary.LittleEndian.Uint32(hdr[2:6]))
	if n > MaxRecordBytes || start+headerLen+n > limit {
		return nil, errDamaged
	}
	rec := make([]byte, n)
	if _, err := io.ReadFull(r.br, rec); err != nil {
		return nil, readErr(err)
	}
	crc := crc32.Update(crc32.Checksum(hdr[2:6], castagnoli), castagnoli, rec)
	if crc != binary.LittleEndian.Uint32(hdr[6:10]) {
		return nil, errDamaged
	}
	r.off = start + headerLen + n
	return rec, nil
}

// readErr turns running out of bytes (the file is shorter than its recorded size) into damage.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errDamaged
	}
	return fmt.Errorf("cannot read spool segment: %w", err)
}

// findMagic returns the offset of the first magic at or after from, or limit when there is none.
func (r *segReader) findMagic(from, limit int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for from < limit {
		n := int64(len(buf))
		if limit-from < n {
			n = limit - from
		}
		got, err := r.f.ReadAt(buf[:n], from)
		if got == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("cannot read spool segment: %w", err)
			}
			return limit, nil // the file is shorter than recorded: the rest is damaged
		}
		chunk := buf[:got]
		if i := bytes.Index(chunk, magic[:]); i >= 0 {
			return from + int64(i), nil
		}
		// Keep the last byte: the magic may straddle two chunks.
		if got == 1 {
			from++
		} else {
			from += int64(got) - 1
		}
		if from+1 >= limit {
			return limit, nil
		}
	}
	return limit, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
