package spool

import (
	"errors"
	"fmt"
)

// Fsync policies.
const (
	// FsyncBatch fsyncs every appended batch in the background.
	FsyncBatch = "batch"
	// FsyncNever leaves writing back to the operating system. A killed process still loses
	// nothing it appended; a power loss may lose what the OS had not written yet.
	FsyncNever = "never"
)

// Defaults for Config fields left empty.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 16 << 20
	// MaxRecordBytes is the largest record a spool accepts; a length beyond it marks a damaged
	// record, so a flipped length byte cannot make the reader allocate gigabytes.
	MaxRecordBytes = 64 << 20
)

// Config configures a Spool.
type Config struct {
	// Dir holds the spool's files; it is created, readable only by its owner, if missing.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the bytes of records waiting to be replayed. When the spool is full new
	// records are dropped and counted. Default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size after which a segment file is closed and a new one begun; a
	// segment is deleted once everything in it is acknowledged. Default 16 MiB.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// Fsync is "batch" (default: every appended batch is fsynced in the background) or "never".
	Fsync string `yaml:"fsync"`
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.Fsync == "" {
		c.Fsync = FsyncBatch
	}
	return c
}

// Validate reports every invalid field, named under "spool". Empty fields are valid except
// Dir: they take their defaults.
func (c Config) Validate() error { return c.ValidateAt("spool") }

// ValidateAt is Validate with the fields named under path, e.g. "collector.spool".
func (c Config) ValidateAt(path string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, fmt.Sprintf(format, args...)))
	}
	if c.Dir == "" {
		bad("dir", "must not be empty")
	}
	if c.MaxBytes < 0 {
		bad("max_bytes", "must not be negative")
	}
	if c.SegmentBytes < 0 {
		bad("segment_bytes", "must not be negative")
	}
	if c.MaxBytes > 0 && c.SegmentBytes > c.MaxBytes {
		bad("segment_bytes", "must not exceed max_bytes (%d)", c.MaxBytes)
	}
	if c.Fsync != "" && c.Fsync != FsyncBatch && c.Fsync != FsyncNever {
		bad("fsync", "must be batch or never, got %q", c.Fsync)
	}
	return errors.Join(errs...)
}
