package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// stitchNamespace is the UUIDv5 namespace of stitched session ids (itself a UUIDv5 of the
// name "mcpwatch stitched session" in the URL namespace), fixed so ids are the same on every
// host and across restarts.
var stitchNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("mcpwatch stitched session"))

// maxTracesPerSession bounds the trace ids a stitched session remembers.
const maxTracesPerSession = 16

// stateVersion is the format version of the state file.
const stateVersion = 1

// StitchKey is what must be equal for operations to share a stitched session.
type StitchKey struct {
	Server        string `json:"server"`
	Agent         string `json:"agent"`
	ClientName    string `json:"client_name,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
	// Instance tells apart instances of the same client (the HTTP tap uses the client's IP).
	Instance string `json:"instance,omitempty"`
}

// stitched is one open stitched session.
type stitched struct {
	Key    StitchKey `json:"key"`
	ID     string    `json:"id"`
	Start  time.Time `json:"start"`
	Last   time.Time `json:"last"`
	Traces []string  `json:"traces,omitempty"`
}

// Stitcher assigns session ids to operations that carry none. It is safe for concurrent use.
type Stitcher struct {
	gap     time.Duration
	maxOpen int
	file    string

	mu   sync.Mutex
	open map[StitchKey]*stitched
}

// NewStitcher returns a stitcher; when cfg.StateFile exists, the sessions saved in it are
// restored. A state file that cannot be read is an error (the caller may go on with a fresh
// stitcher from NewStitcher with StateFile cleared, or remove the file).
func NewStitcher(cfg SessionsConfig) (*Stitcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid sessions config: %w", err)
	}
	cfg = cfg.WithDefaults()
	s := &Stitcher{gap: cfg.IdleGap, maxOpen: cfg.MaxOpen, file: cfg.StateFile, open: map[StitchKey]*stitched{}}
	if s.file == "" {
		return s, nil
	}
	data, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("cannot read session state: %w", err)
	}
	var st struct {
		Version  int         `json:"version"`
		Sessions []*stitched `json:"sessions"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Version != stateVersion {
		return s, fmt.Errorf("cannot read session state %s: not a version %d state file", s.file, stateVersion)
	}
	// No session is dropped by the wall clock: sessions are timed by their operations' times,
	// which may lag it (a sender's clock, a replayed export), and one that is over is replaced
	// by the next session of its key anyway. Only max_open bounds them, most recent kept.
	st.Sessions = slices.DeleteFunc(st.Sessions, func(ss *stitched) bool { return ss == nil || ss.ID == "" })
	slices.SortFunc(st.Sessions, func(a, b *stitched) int { return b.Last.Compare(a.Last) })
	for _, ss := range st.Sessions[:min(len(st.Sessions), s.maxOpen)] {
		s.open[ss.Key] = ss
	}
	return s, nil
}

// SessionID returns the stitched session of an operation observed at `at` with the given key
// and trace id ("" when none). The rule:
//   - the open session with the same key (one per key: the latest started) continues when at
//     is before, or no more than the idle gap after, its last operation, or when the trace id
//     is one already seen in it;
//   - otherwise a new session starts at `at`, with the id UUIDv5(namespace, key fields and the
//     start time), so the same traffic arriving in time order always gets the same id. A late
//     operation joins the open session even when it lies far before its start, as telling
//     which earlier session it belonged to would need all of them kept.
func (s *Stitcher) SessionID(k StitchKey, traceID string, at time.Time) string {
	at = at.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.open[k]
	if ss != nil && at.Sub(ss.Last) > s.gap && (traceID == "" || !slices.Contains(ss.Traces, traceID)) {
		ss = nil
	}
	if ss == nil {
		if _, exists := s.open[k]; !exists && len(s.open) >= s.maxOpen {
			s.evictLocked(at)
		}
		ss = &stitched{Key: k, ID: StitchedID(k, at), Start: at, Last: at}
		s.open[k] = ss
	}
	if at.After(ss.Last) {
		ss.Last = at
	}
	if traceID != "" && !slices.Contains(ss.Traces, traceID) {
		if len(ss.Traces) >= maxTracesPerSession {
			ss.Traces = slices.Delete(ss.Traces, 0, 1)
		}
		ss.Traces = append(ss.Traces, traceID)
	}
	return ss.ID
}

// StitchedID is the id of the stitched session with key k that started at start.
func StitchedID(k StitchKey, start time.Time) string {
	name := k.Server + "\x00" + k.Agent + "\x00" + k.ClientName + "\x00" + k.ClientVersion + "\x00" +
		k.Instance + "\x00" + start.UTC().Format(time.RFC3339Nano)
	return uuid.NewSHA1(stitchNamespace, []byte(name)).String()
}

// evictLocked forgets closed sessions, or when none is closed the least recently active one.
func (s *Stitcher) evictLocked(now time.Time) {
	var oldest *stitched
	for k, ss := range s.open {
		if now.Sub(ss.Last) > s.gap {
			delete(s.open, k)
			continue
		}
		if oldest == nil || ss.Last.Before(oldest.Last) {
			oldest = ss
		}
	}
	if len(s.open) >= s.maxOpen && oldest != nil {
		delete(s.open, oldest.Key)
	}
}

// Len is the number of sessions remembered.
func (s *Stitcher) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Save writes the sessions remembered (at most max_open) to the state file (owner-only, replaced
// atomically). Without a state file it does nothing.
func (s *Stitcher) Save() error {
	if s.file == "" {
		return nil
	}
	s.mu.Lock()
	st := struct {
		Version  int         `json:"version"`
		Sessions []*stitched `json:"sessions"`
	}{Version: stateVersion, Sessions: []*stitched{}}
	for _, ss := range s.open {
		st.Sessions = append(st.Sessions, ss)
	}
	slices.SortFunc(st.Sessions, func(a, b *stitched) int { return a.Start.Compare(b.Start) })
	data, err := json.Marshal(st)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot encode session state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.file), filepath.Base(s.file)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot save session state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot save session state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot save session state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot save session state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.file); err != nil {
		return fmt.Errorf("cannot save session state: %w", err)
	}
	return nil
}
