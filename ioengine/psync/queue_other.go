//go:build !linux

package psync

import (
	"fmt"

	"github.com/usrpt/usrpt/ioengine"
)

// NewQueue is Linux only.
func (d *Device) NewQueue(ioengine.QueueConfig) (ioengine.Queue, error) {
	return nil, fmt.Errorf("psync: new queue: %w", ErrNotSupported)
}
