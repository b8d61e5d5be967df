//go:build !linux

package hugemem

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Map is Linux only; elsewhere it returns an error wrapping ErrNotSupported.
func Map(cfg RegionConfig) (*Region, error) {
	size := uint64(0)
	if cfg.Size > 0 {
		size = uint64(cfg.Size)
	}
	return nil, fmt.Errorf("hugemem: map %s: %w", humanize.IBytes(size), ErrNotSupported)
}

func munmap([]byte) error { return ErrNotSupported }
