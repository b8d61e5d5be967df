package uring

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
)

// device is an opened file or block device. Its fields are fixed at Open
// except ops (narrowed when the kernel answers EOPNOTSUPP), the count of
// open queues, and the last queue's registration report.
type device struct {
	cfg   Config
	f     *blockfile.File
	rc    ringConfig // entries is set per queue
	flags uint32     // setup flags the Open-time probe ring got
	ops   atomic.Uint32

	queues atomic.Int32
	closed atomic.Bool

	mu        sync.Mutex // guards queueOpts
	queueOpts string     // the latest queue's fixedfiles/fixedbufs report
}

// Open opens cfg.Path (a regular file or a block device) for io_uring.
//
// It probes io_uring_setup with the flags cfg asks for, recording the ones
// this kernel takes (Info().Options), then opens the file with package
// blockfile, as every engine does, and returns blockfile's errors unchanged
// (an O_DIRECT refusal wrapping ErrDirectUnsupported, a device in use, a
// size that is not a whole number of blocks), and probes which of discard
// and write-zeroes the file supports. Each reactor then makes its own *Queue
// with NewQueue, on the locked OS thread that will use it (see Queue for
// why).
func Open(cfg Config) (ioengine.Device, error) {
	if cfg.Path == "" {
		return nil, errors.New("uring: open: no path")
	}
	rc := ringConfig{
		entries:      1,
		sqPoll:       cfg.SQPoll,
		sqPollCPU:    cfg.SQPollCPU,
		ioPoll:       cfg.IOPoll,
		singleIssuer: !cfg.NoSingleIssuer,
	}
	if cfg.SQPoll && cfg.SQPollIdle > 0 {
		rc.sqPollIdleMs = uint32(max(1, min(cfg.SQPollIdle.Milliseconds(), 1<<31)))
	}
	// A throwaway ring learns which setup flags take before any file is
	// touched, so an unusable io_uring fails Open with Probe's reason.
	fd, p, err := setupFD(rc)
	if err != nil {
		return nil, fmt.Errorf("uring: open %s: %w", cfg.Path, err)
	}
	_ = unix.Close(fd)

	f, err := blockfile.Open(blockfile.Config{
		Path: cfg.Path, Direct: cfg.Direct, ReadOnly: cfg.ReadOnly, Create: cfg.Create, SizeBytes: cfg.SizeBytes,
	})
	if err != nil {
		return nil, err
	}
	ops, err := probeOps(cfg, f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("uring: open %s: %w", cfg.Path, err)
	}
	d := &device{cfg: cfg, f: f, rc: rc, flags: p.flags}
	d.ops.Store(uint32(ops))
	return d, nil
}

// probeOps decides which operations f supports, as far as can be told
// without changing its data. What cannot be told is assumed supported and
// dropped later if the kernel answers EOPNOTSUPP (see learnUnsupported).
//
// blockfile.File.CanDiscard does not fit here: uring discards with
// fallocate(PUNCH_HOLE), which on a block device is a write-zeroes that must
// unmap and needs write-zeroes support, not discard support.
func probeOps(cfg Config, f *blockfile.File) (ioengine.OpSet, error) {
	if cfg.IOPoll {
		// A polled ring takes only pollable opcodes: FSYNC and FALLOCATE
		// are refused with EINVAL.
		if f.ReadOnly {
			return ioengine.Ops(ioengine.OpRead), nil
		}
		return ioengine.Ops(ioengine.OpRead, ioengine.OpWrite), nil
	}
	ops := ioengine.Ops(ioengine.OpRead, ioengine.OpFlush)
	if f.ReadOnly {
		return ops, nil
	}
	ops |= ioengine.Ops(ioengine.OpWrite, ioengine.OpWriteZeroes, ioengine.OpDiscard)
	// The file's own length and device number: f.SizeBytes may be less
	// than the file holds, and a probe must not punch below its end.
	var st unix.Stat_t
	if err := unix.Fstat(f.Fd, &st); err != nil {
		return 0, fmt.Errorf("fstat: %w", err)
	}
	switch f.Kind {
	case blockfile.Regular:
		// Punching a hole past EOF with KEEP_SIZE changes nothing on any
		// filesystem that supports it and fails with EOPNOTSUPP on the
		// ones that do not.
		off := (st.Size + 4095) &^ 4095
		if err := unix.Fallocate(f.Fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, 4096); errors.Is(err, unix.EOPNOTSUPP) {
			ops &^= ioengine.Ops(ioengine.OpDiscard)
		}
		// ZERO_RANGE cannot be probed without allocating; tmpfs and ramfs
		// are known to lack it.
		if f.FS == "tmpfs" || f.FS == "ramfs" {
			ops &^= ioengine.Ops(ioengine.OpWriteZeroes)
		}
	case blockfile.Block:
		// On a block device PUNCH_HOLE is a write-zeroes that must
		// unmap (BLKDEV_ZERO_NOFALLBACK): it needs a device that can.
		if n, ok := sysfsQueueInt(uint64(st.Rdev), "write_zeroes_max_bytes"); ok && n == 0 {
			ops &^= ioengine.Ops(ioengine.OpDiscard)
		}
	}
	return ops, nil
}

// sysfsQueueInt reads an integer from the queue directory of block device
// rdev (a partition's queue is its disk's).
func sysfsQueueInt(rdev uint64, name string) (int64, bool) {
	dir := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(rdev), unix.Minor(rdev))
	for _, p := range []string{dir + "/queue/" + name, dir + "/../queue/" + name} {
		if b, err := os.ReadFile(p); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// learnUnsupported drops op from the supported set after the kernel said
// EOPNOTSUPP for it, so later requests fail in Submit without a syscall.
func (d *device) learnUnsupported(op ioengine.Op) {
	for {
		old := d.ops.Load()
		n := old &^ uint32(ioengine.Ops(op))
		if n == old || d.ops.CompareAndSwap(old, n) {
			return
		}
	}
}

func (d *device) opSet() ioengine.OpSet { return ioengine.OpSet(d.ops.Load()) }

// Info describes the device. Options lists the setup flags that took and,
// once a queue exists, the latest queue's fixed file and buffer state.
func (d *device) Info() ioengine.Info {
	opts := flagNames(d.flags)
	d.mu.Lock()
	if d.queueOpts != "" {
		opts = append(opts, d.queueOpts)
	}
	d.mu.Unlock()
	return ioengine.Info{
		Engine:    "uring",
		Path:      d.cfg.Path,
		SizeBytes: d.f.SizeBytes,
		BlockSize: d.f.BlockSize,
		Ops:       d.opSet(),
		Direct:    d.cfg.Direct,
		Options:   strings.Join(opts, ","),
	}
}

// Supports reports whether op can succeed. Discard and write-zeroes on a
// regular file are reported supported until the kernel first refuses them.
func (d *device) Supports(op ioengine.Op) bool { return d.opSet().Has(op) }

// NewQueue makes a ring for one reactor. See Queue for the threading
// contract: with SINGLE_ISSUER (the default) it must be called on the locked
// OS thread that will use the queue.
func (d *device) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	if d.closed.Load() {
		return nil, errors.New("uring: new queue: device closed")
	}
	q, err := newQueue(d, cfg)
	if err != nil {
		return nil, fmt.Errorf("uring: new queue on %s: %w", d.cfg.Path, err)
	}
	d.queues.Add(1)
	d.mu.Lock()
	d.queueOpts = q.regOpts
	d.mu.Unlock()
	return q, nil
}

// Close closes the file. It refuses while queues are open.
func (d *device) Close() error {
	if n := d.queues.Load(); n > 0 {
		return fmt.Errorf("uring: close %s: %d queue(s) still open", d.cfg.Path, n)
	}
	if d.closed.Swap(true) {
		return nil
	}
	return d.f.Close()
}
