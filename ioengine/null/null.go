package null

import (
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/internal/syncq"
)

// MaxDepth is the largest QueueConfig.Depth NewQueue accepts.
const MaxDepth = syncq.MaxDepth

// Device is an opened null device. Its methods are safe for concurrent use.
type Device struct {
	sizeBytes int64
	blockSize int

	owner *syncq.Owner // open queues; Close refuses while any are open
}

// Open makes a null device of sizeBytes with logical blocks of blockSize
// (512 or 4096); sizeBytes must be a positive multiple of blockSize.
func Open(sizeBytes int64, blockSize int) (ioengine.Device, error) {
	if err := syncq.CheckGeometry("null", sizeBytes, blockSize); err != nil {
		return nil, err
	}
	return &Device{sizeBytes: sizeBytes, blockSize: blockSize, owner: syncq.NewOwner("null")}, nil
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
	return d.owner.NewQueue(cfg.Depth, d.exec)
}

// Close closes the device. It refuses while queues are open; closing twice
// returns nil.
func (d *Device) Close() error {
	return d.owner.Close(nil)
}

// exec carries out r at once: nothing to do beyond the range check.
func (d *Device) exec(r *ioengine.Request) {
	if errno := ioengine.CheckRange(r, d.sizeBytes, ioengine.AllOps); errno != 0 {
		r.Complete(0, errno)
		return
	}
	r.Complete(r.Size(), 0)
}
