//go:build !linux

package uring

import (
	"fmt"

	"github.com/usrpt/usrpt/ioengine"
)

// Open is Linux only; elsewhere it returns an error wrapping ErrNotSupported.
func Open(cfg Config) (ioengine.Device, error) {
	return nil, fmt.Errorf("uring: open %s: %w", cfg.Path, ErrNotSupported)
}

// Probe is Linux only; elsewhere it returns an error wrapping ErrNotSupported.
func Probe() error { return fmt.Errorf("uring: %w on this operating system", ErrNotSupported) }
