//go:build !linux

package blockfile

import (
	"fmt"
	"syscall"
)

// Open is Linux only; elsewhere it returns an error wrapping ErrNotSupported.
func Open(cfg Config) (*File, error) {
	return nil, fmt.Errorf("blockfile: open %s: %w", cfg.Path, ErrNotSupported)
}

// Close does nothing: no File is ever opened here.
func (f *File) Close() error { return nil }

// Discard is Linux only.
func (f *File) Discard(off, n int64) syscall.Errno { return syscall.ENOSYS }

// WriteZeroes is Linux only.
func (f *File) WriteZeroes(off, n int64) syscall.Errno { return syscall.ENOSYS }
