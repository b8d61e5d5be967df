package mem

import (
	"fmt"
	"math"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/internal/syncq"
)

// MaxDepth is the largest QueueConfig.Depth NewQueue accepts.
const MaxDepth = syncq.MaxDepth

// Device is an opened RAM disk. Its methods are safe for concurrent use.
type Device struct {
	region    *hugemem.Region
	data      []byte // the first sizeBytes of the region: the disk
	sizeBytes int64
	blockSize int
	options   string

	owner *syncq.Owner // open queues; Close refuses while any are open
}

// Open maps a zero-filled RAM disk of sizeBytes with logical blocks of
// blockSize (512 or 4096); sizeBytes must be a positive multiple of
// blockSize. The memory is a hugemem Region on 2 MiB hugepages when the
// kernel has them free and on base pages otherwise, populated at once.
func Open(sizeBytes int64, blockSize int) (ioengine.Device, error) {
	if err := syncq.CheckGeometry("mem", sizeBytes, blockSize); err != nil {
		return nil, err
	}
	if uint64(sizeBytes) > math.MaxInt {
		return nil, fmt.Errorf("mem: open %d bytes: larger than this platform can map", sizeBytes)
	}
	r, err := hugemem.Map(hugemem.RegionConfig{Size: int(sizeBytes), Pages: hugemem.PagesAuto, Node: -1})
	if err != nil {
		return nil, fmt.Errorf("mem: open: %w", err)
	}
	pages := "4k"
	if r.Huge() {
		pages = "2m"
	}
	return &Device{
		region:    r,
		data:      r.Bytes()[:sizeBytes:sizeBytes],
		sizeBytes: sizeBytes,
		blockSize: blockSize,
		options:   "pages=" + pages,
		owner:     syncq.NewOwner("mem"),
	}, nil
}

// Info describes the device.
func (d *Device) Info() ioengine.Info {
	return ioengine.Info{
		Engine:    "mem",
		SizeBytes: d.sizeBytes,
		BlockSize: d.blockSize,
		Ops:       ioengine.AllOps,
		Options:   d.options,
	}
}

// Supports reports whether op is an operation of ioengine: all of them are.
func (d *Device) Supports(op ioengine.Op) bool { return ioengine.AllOps.Has(op) }

// NewQueue makes a queue of cfg.Depth (1 to MaxDepth) requests. Requests
// are served by copying, so cfg.Buffers is not needed and is ignored.
func (d *Device) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	return d.owner.NewQueue(cfg.Depth, d.exec)
}

// Close unmaps the memory. It refuses while queues are open; closing twice
// returns nil.
func (d *Device) Close() error {
	return d.owner.Close(func() error {
		d.data = nil
		return d.region.Close()
	})
}

// exec carries out r at once. CheckRange has proven [Offset, Offset+Size)
// inside data, so the slice expressions cannot fail. No lock: queues of
// other reactors may run exec on the same memory at the same time; see the
// package comment for what overlapping requests get.
func (d *Device) exec(r *ioengine.Request) {
	if errno := ioengine.CheckRange(r, d.sizeBytes, ioengine.AllOps); errno != 0 {
		r.Complete(0, errno)
		return
	}
	switch r.Op {
	case ioengine.OpRead:
		copy(r.Buf, d.data[r.Offset:])
	case ioengine.OpWrite:
		copy(d.data[r.Offset:], r.Buf)
	case ioengine.OpFlush:
		// Nothing is volatile beyond the memory itself.
	case ioengine.OpDiscard, ioengine.OpWriteZeroes:
		clear(d.data[r.Offset : r.Offset+r.Len])
	}
	r.Complete(r.Size(), 0)
}
