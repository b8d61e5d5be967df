package syncq

import (
	"fmt"
	"sync"

	"github.com/usrpt/usrpt/ioengine"
)

// CheckGeometry validates a synchronous engine's size and logical block
// size: 512 or 4096 bytes, and a positive whole number of blocks. engine
// prefixes the error ("null", "mem").
func CheckGeometry(engine string, sizeBytes int64, blockSize int) error {
	if blockSize != 512 && blockSize != 4096 {
		return fmt.Errorf("%s: open: block size %d: want 512 or 4096", engine, blockSize)
	}
	if sizeBytes <= 0 || sizeBytes%int64(blockSize) != 0 {
		return fmt.Errorf("%s: open %d bytes: want a positive multiple of the %d-byte block", engine, sizeBytes, blockSize)
	}
	return nil
}

// Owner is the queue bookkeeping of a device whose queues are Queues: it
// counts the open ones so that Close can refuse while a queue could still
// touch the device's memory. Its methods are safe from any goroutine.
type Owner struct {
	engine string
	mu     sync.Mutex
	queues int
	closed bool
}

// NewOwner makes the bookkeeping of one device of engine ("null", "mem").
func NewOwner(engine string) *Owner { return &Owner{engine: engine} }

// NewQueue makes a queue of depth that carries out requests with exec.
func (o *Owner) NewQueue(depth int, exec func(*ioengine.Request)) (ioengine.Queue, error) {
	if err := CheckDepth(depth); err != nil {
		return nil, fmt.Errorf("%s: new queue: %w", o.engine, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, fmt.Errorf("%s: new queue: device closed", o.engine)
	}
	o.queues++
	return New(depth, exec, o.queueClosed), nil
}

func (o *Owner) queueClosed() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queues--
}

// Close marks the device closed and calls release (which frees the device's
// resources; it may be nil) once. It refuses while queues are open; closing
// twice returns nil.
func (o *Owner) Close(release func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	if o.queues > 0 {
		return fmt.Errorf("%s: close: %d queues still open", o.engine, o.queues)
	}
	o.closed = true
	if release == nil {
		return nil
	}
	if err := release(); err != nil {
		return fmt.Errorf("%s: close: %w", o.engine, err)
	}
	return nil
}
