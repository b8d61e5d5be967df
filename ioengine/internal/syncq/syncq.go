package syncq

import (
	"fmt"

	"github.com/usrpt/usrpt/ioengine"
)

// MaxDepth is the largest depth a Queue may have.
const MaxDepth = 1 << 16

// CheckDepth returns an error unless depth is between 1 and MaxDepth. Engines
// call it first in NewQueue and prefix the error with their own context.
func CheckDepth(depth int) error {
	if depth < 1 || depth > MaxDepth {
		return fmt.Errorf("depth %d: want 1 to %d", depth, MaxDepth)
	}
	return nil
}

// Queue completes every request in Submit and keeps it in done, a ring of
// Depth slots, until Poll hands it back. It implements ioengine.Queue and,
// like any queue, is not safe for concurrent use.
type Queue struct {
	exec     func(*ioengine.Request) // carries out and completes a request
	onClose  func()                  // tells the device the queue is gone
	done     []*ioengine.Request
	head     int // oldest completed request
	n        int // completed requests not yet returned
	isClosed bool
}

var _ ioengine.Queue = (*Queue)(nil)

// New makes a queue of depth slots that carries out each request with exec
// (which must complete it) and calls onClose once, on the first Close. depth
// must pass CheckDepth; New panics otherwise.
func New(depth int, exec func(*ioengine.Request), onClose func()) *Queue {
	if err := CheckDepth(depth); err != nil {
		panic("syncq: new: " + err.Error())
	}
	return &Queue{exec: exec, onClose: onClose, done: make([]*ioengine.Request, depth)}
}

// Submit carries out up to the free depth of reqs, in order, and returns how
// many. A closed queue accepts none.
func (q *Queue) Submit(reqs []*ioengine.Request) int {
	if q.isClosed {
		return 0
	}
	k := min(len(reqs), len(q.done)-q.n)
	tail := q.head + q.n
	if tail >= len(q.done) {
		tail -= len(q.done)
	}
	for _, r := range reqs[:k] {
		q.exec(r)
		q.done[tail] = r
		if tail++; tail == len(q.done) {
			tail = 0
		}
	}
	q.n += k
	return k
}

// Poll moves up to len(out) completed requests into out, oldest first, and
// returns how many.
func (q *Queue) Poll(out []*ioengine.Request) int {
	k := min(len(out), q.n)
	for i := range k {
		out[i] = q.done[q.head]
		q.done[q.head] = nil // the caller owns it again; do not keep it alive
		if q.head++; q.head == len(q.done) {
			q.head = 0
		}
	}
	q.n -= k
	return k
}

// Inflight is the number of completed requests not yet polled.
func (q *Queue) Inflight() int { return q.n }

// WaitFD is -1: completions are ready as soon as Submit returns.
func (q *Queue) WaitFD() int { return -1 }

// Close drops the queue. Requests not yet polled are complete already; they
// belong to the caller again. Closing twice returns nil and calls onClose
// only once.
func (q *Queue) Close() error {
	if q.isClosed {
		return nil
	}
	q.isClosed = true
	clear(q.done)
	q.head, q.n = 0, 0
	q.onClose()
	return nil
}
