package null

import (
	"fmt"
	"sync"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/internal/syncq"
)

// MaxDepth is the largest QueueConfig.Depth NewQueue accepts.
const MaxDepth = syncq.MaxDepth

// Device is an opened null device. Its methods are safe for concurrent use.
type Device struct {
	sizeBytes int64
	blockSize int

	mu     sync.Mutex // guards queues and closed (control plane only)
	queues int
	closed bool
}

// Open makes a null device of sizeBytes with logical blocks of blockSize
// (512 or 4096); sizeBytes must be a positive multiple of blockSize.
func Open(sizeBytes int64, blockSize int) (ioengine.Device, error) {
	if blockSize != 512 && blockSize != 4096 {
		return nil, fmt.Errorf("null: open: block size %d: want 512 or 4096", blockSize)
	}
	if sizeBytes <= 0 || sizeBytes%int64(blockSize) != 0 {
		return nil, fmt.Errorf("null: open %d bytes: want a positive multiple of the %d-byte block", sizeBytes, blockSize)
	}
	return &Device{sizeBytes: sizeBytes, blockSize: blockSize}, nil
}

// Info describes the device.
func (d *Device) Info() ioengine.Info {
	return ioengine.Info{
		Engine:    "null",
		SizeBytes: d.sizeBytes,
		BlockSize: d.blockSize,
		Ops:       ioengine.AllOps,
	}
}

// Supports reports whether op is an operation of ioengine: all of them are.
func (d *Device) Supports(op ioengine.Op) bool { return ioengine.AllOps.Has(op) }

// NewQueue makes a queue of cfg.Depth (1 to MaxDepth) requests. The engine
// moves no data, so cfg.Buffers is ignored.
func (d *Device) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	if err := syncq.CheckDepth(cfg.Depth); err != nil {
		return nil, fmt.Errorf("null: new queue: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("null: new queue: device closed")
	}
	d.queues++
	return syncq.New(cfg.Depth, d.exec, d.queueClosed), nil
}

// Close closes the device. It refuses while queues are open; closing twice
// returns nil.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if d.queues > 0 {
		return fmt.Errorf("null: close: %d queues still open", d.queues)
	}
	d.closed = true
	return nil
}

func (d *Device) queueClosed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues--
}

// exec carries out r at once: nothing to do beyond the range check.
func (d *Device) exec(r *ioengine.Request) {
	if errno := ioengine.CheckRange(r, d.sizeBytes, ioengine.AllOps); errno != 0 {
		r.Complete(0, errno)
		return
	}
	r.Complete(r.Size(), 0)
}
