// Package ioengine is the block I/O interface every storage backend of usrpt
// implements, shaped for a polling reactor: a caller queues a batch of
// requests with Submit and reaps finished ones with Poll, and neither call
// blocks. Engines live in subpackages (null, mem, uring, psync); enginetest
// is the conformance suite they all pass.
//
// Ownership. A Device is an opened backend (a file, a block device, a RAM
// disk) and may be shared by reactors. Each reactor opens its own Queue from
// it and is the only goroutine that touches that Queue. A Request belongs to
// the caller; between Submit accepting it and Poll returning it, the engine
// holds it and the caller must not touch it or its buffer. Buffers come from
// internal/hugemem (aligned, off-heap); a Queue told about that memory in
// QueueConfig.Buffers may register it with the kernel once.
//
// Errors are results, not panics: a request that cannot be carried out
// (out of range, unsupported, misaligned, EIO, ENOSPC, short transfer)
// completes through Poll with Errno set. No accepted request is ever lost.
//
// This package imports only the standard library: scsi depends on it.
package ioengine

import (
	"errors"
	"fmt"
	"syscall"
)

// Op is a request's operation.
type Op uint8

const (
	OpRead        Op = iota // read len(Buf) bytes at Offset
	OpWrite                 // write Buf at Offset; FlagFUA makes it durable before completion
	OpFlush                 // make every completed write durable (fdatasync)
	OpDiscard               // deallocate [Offset, Offset+Len); reads may return anything after
	OpWriteZeroes           // make [Offset, Offset+Len) read as zeroes
	numOps
)

var opNames = [...]string{OpRead: "read", OpWrite: "write", OpFlush: "flush", OpDiscard: "discard", OpWriteZeroes: "write-zeroes"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// OpSet is a set of operations.
type OpSet uint8

// Ops makes a set.
func Ops(ops ...Op) OpSet {
	var s OpSet
	for _, o := range ops {
		s |= 1 << o
	}
	return s
}

// Has reports whether o is in the set.
func (s OpSet) Has(o Op) bool { return o < numOps && s&(1<<o) != 0 }

// AllOps is every operation.
var AllOps = Ops(OpRead, OpWrite, OpFlush, OpDiscard, OpWriteZeroes)

func (s OpSet) String() string {
	out := ""
	for o := Op(0); o < numOps; o++ {
		if s.Has(o) {
			if out != "" {
				out += ","
			}
			out += o.String()
		}
	}
	return out
}

// Flags modify a request.
type Flags uint8

const (
	// FlagFUA (force unit access): the write is durable when it completes
	// (RWF_DSYNC on files and devices; SCSI's FUA bit).
	FlagFUA Flags = 1 << iota
)

// Request is one I/O. The caller fills Op, Flags, Offset, Buf or Len, and
// User; the engine fills N and Errno before Poll returns the request.
type Request struct {
	Op     Op
	Flags  Flags
	Offset int64  // bytes from the start of the device
	Len    int64  // bytes, for OpDiscard and OpWriteZeroes; ignored otherwise
	Buf    []byte // data for OpRead and OpWrite, caller-owned (hugemem)
	User   uint64 // the caller's cookie, never touched by the engine

	N     int64         // bytes transferred (read/write) or affected
	Errno syscall.Errno // 0 on success

	// Engine-private bookkeeping (e.g. a slot index); callers leave it alone.
	Slot int32
}

// Size is the number of bytes the request covers.
func (r *Request) Size() int64 {
	if r.Op == OpRead || r.Op == OpWrite {
		return int64(len(r.Buf))
	}
	if r.Op == OpFlush {
		return 0
	}
	return r.Len
}

// ErrShort reports a read or write that moved fewer bytes than asked.
var ErrShort = errors.New("short transfer")

// Err is the request's outcome as an error: nil, an Errno, or ErrShort
// wrapped with the counts. It allocates only on failure.
func (r *Request) Err() error {
	if r.Errno != 0 {
		return r.Errno
	}
	if (r.Op == OpRead || r.Op == OpWrite) && r.N != int64(len(r.Buf)) {
		return fmt.Errorf("%v of %d bytes at %d: %w (%d done)", r.Op, len(r.Buf), r.Offset, ErrShort, r.N)
	}
	return nil
}

// OK reports success without allocating.
func (r *Request) OK() bool {
	return r.Errno == 0 && (r.Op != OpRead && r.Op != OpWrite || r.N == int64(len(r.Buf)))
}

// Complete sets the result fields; engines use it.
func (r *Request) Complete(n int64, errno syscall.Errno) {
	r.N, r.Errno = n, errno
}

// CheckRange validates a request against a device of sizeBytes before it
// is queued: the operation must be supported, and [Offset, Offset+Size) must
// lie inside the device with no overflow. It returns 0 or the errno the
// request should complete with (EOPNOTSUPP, EINVAL).
func CheckRange(r *Request, sizeBytes int64, ops OpSet) syscall.Errno {
	if !ops.Has(r.Op) {
		return syscall.EOPNOTSUPP
	}
	if r.Op == OpFlush {
		return 0
	}
	n := r.Size()
	if r.Offset < 0 || n < 0 || r.Offset > sizeBytes || n > sizeBytes-r.Offset {
		return syscall.EINVAL
	}
	return 0
}

// Info describes an opened device.
type Info struct {
	Engine    string `json:"engine"`     // "null", "mem", "uring", "psync"
	Path      string `json:"path"`       // file or device; "" for null and mem
	SizeBytes int64  `json:"size_bytes"` // capacity
	BlockSize int    `json:"block_size"` // logical block size in bytes (512 or 4096)
	Ops       OpSet  `json:"-"`          // supported operations
	Direct    bool   `json:"direct"`     // O_DIRECT
	Options   string `json:"options"`    // engine options in effect, for reports ("fixedbufs,fixedfiles,defer_taskrun")
}

// Device is an opened backend. Its methods are safe from any goroutine.
type Device interface {
	Info() Info
	// Supports reports whether op can succeed on this device.
	Supports(op Op) bool
	// NewQueue makes a queue for one reactor.
	NewQueue(cfg QueueConfig) (Queue, error)
	// Close releases the device; every queue must be closed first.
	Close() error
}

// QueueConfig configures one reactor's queue.
type QueueConfig struct {
	// Depth is the most requests in flight at once (Submit accepts no more).
	Depth int
	// Buffers are the memory regions request buffers come from (hugemem
	// regions); engines that can register them with the kernel do so once.
	// A request whose buffer lies outside them still works.
	Buffers [][]byte
}

// Queue is one reactor's submission and completion queue. It is not safe for
// concurrent use: one reactor owns it.
type Queue interface {
	// Submit queues requests and returns how many it accepted, in order,
	// up to the free depth. It does not block and may not reach the kernel
	// until the next Poll: engines batch every submission of a loop
	// iteration into one system call.
	Submit(reqs []*Request) int
	// Poll sends queued submissions, then moves finished requests into out
	// and returns how many. It never blocks.
	Poll(out []*Request) int
	// Inflight is the number of requests accepted and not yet returned.
	Inflight() int
	// WaitFD is a file descriptor that turns readable when completions are
	// ready (for an adaptive reactor's sleep), or -1 if there is none.
	WaitFD() int
	// Close releases the queue. Requests still in flight are waited for.
	Close() error
}
