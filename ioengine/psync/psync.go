package psync

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
)

const (
	// DefaultWorkers is the number of worker threads per queue when
	// Config.Workers is 0.
	DefaultWorkers = 2
	// MaxWorkers is the most worker threads a queue may have.
	MaxWorkers = 64
	// MaxDepth is the largest QueueConfig.Depth NewQueue accepts.
	MaxDepth = 1 << 16
	// DefaultSpin is how long an idle worker keeps polling its ring before
	// it sleeps, when Config.Spin is 0: a little longer than a fast
	// device's round trip through the reactor, so that a queue kept busy
	// never pays a wakeup, and short enough that an idle one soon stops
	// taking CPU time from the reactors.
	DefaultSpin = 20 * time.Microsecond
)

// ErrNotSupported is wrapped by NewQueue's error on operating systems other
// than Linux (where Open already fails in package blockfile).
var ErrNotSupported = errors.New("psync: not supported on this operating system")

// Config says what to open and how many threads serve each queue.
type Config struct {
	blockfile.Config
	// Workers is the number of worker threads per queue, 1 to MaxWorkers;
	// 0 means DefaultWorkers. A worker carries one request at a time, so
	// Workers bounds each queue's I/O concurrency.
	Workers int
	// Spin is how long an idle worker polls for work before it sleeps on
	// its eventfd; 0 means DefaultSpin and a negative value sleeps at once.
	Spin time.Duration
}

// Device is a file or block device served by pread/pwrite worker threads.
// Its methods are safe for concurrent use.
type Device struct {
	f       *blockfile.File
	info    ioengine.Info
	workers int
	spinNs  int64

	// noDsync is set once pwritev2(RWF_DSYNC) has failed as unknown
	// (kernels before 4.7): FUA writes then use pwrite and fdatasync.
	noDsync atomic.Bool

	mu     sync.Mutex // guards queues and closed; control plane only
	queues int
	closed bool
}

// Open opens cfg.Path with package blockfile and returns a psync device.
func Open(cfg Config) (ioengine.Device, error) {
	workers := cfg.Workers
	if workers == 0 {
		workers = DefaultWorkers
	}
	if workers < 1 || workers > MaxWorkers {
		return nil, fmt.Errorf("psync: open %s: %d workers: want 1 to %d", cfg.Path, cfg.Workers, MaxWorkers)
	}
	spin := cfg.Spin
	switch {
	case spin == 0:
		spin = DefaultSpin
	case spin < 0:
		spin = 0
	}
	f, err := blockfile.Open(cfg.Config)
	if err != nil {
		return nil, err
	}
	ops := ioengine.Ops(ioengine.OpRead, ioengine.OpFlush)
	if !f.ReadOnly {
		ops |= ioengine.Ops(ioengine.OpWrite, ioengine.OpWriteZeroes)
		if f.CanDiscard {
			ops |= ioengine.Ops(ioengine.OpDiscard)
		}
	}
	opts := "workers=" + strconv.Itoa(workers)
	if f.Direct {
		opts += ",direct"
	}
	if f.ReadOnly {
		opts += ",readonly"
	}
	d := &Device{
		f:       f,
		workers: workers,
		spinNs:  int64(spin),
		info: ioengine.Info{
			Engine:    "psync",
			Path:      f.Path,
			SizeBytes: f.SizeBytes,
			BlockSize: f.BlockSize,
			Ops:       ops,
			Direct:    f.Direct,
			Options:   opts,
		},
	}
	return d, nil
}

// Info describes the device.
func (d *Device) Info() ioengine.Info { return d.info }

// Supports reports whether op can succeed: reads and flushes always; writes
// and write-zeroes unless the device is read-only; discard where
// blockfile.File.CanDiscard says so.
func (d *Device) Supports(op ioengine.Op) bool { return d.info.Ops.Has(op) }

// File is the opened file or device, for its description (WorkerPunts,
// String). Its descriptor belongs to the Device.
func (d *Device) File() *blockfile.File { return d.f }

// Close closes the file. It refuses while queues are open; closing twice
// returns nil.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if d.queues > 0 {
		return fmt.Errorf("psync: close %s: %d queues still open", d.f.Path, d.queues)
	}
	d.closed = true
	return d.f.Close()
}

func (d *Device) addQueue() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("psync: new queue on %s: device closed", d.f.Path)
	}
	d.queues++
	return nil
}

func (d *Device) queueClosed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues--
}
