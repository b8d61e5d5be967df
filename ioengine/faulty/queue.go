package faulty

import "github.com/usrpt/usrpt/ioengine"

// held is a completed request being delayed: it moves to ready when polls
// reaches zero.
type held struct {
	r     *ioengine.Request
	polls int
}

// mark remembers what to do to a request the inner queue holds when it
// comes back. Only requests with a pending effect have one.
type mark struct {
	r     *ioengine.Request
	short bool
	delay int
}

// queue wraps an inner queue of the same depth. Every request it accepted
// is in exactly one place until Poll returns it: the inner queue (with or
// without a mark), held, or ready. inflight counts all of them, and is at
// most depth, so none of the depth-sized slices below ever grows.
type queue struct {
	dev      *Device
	inner    ioengine.Queue
	depth    int
	inflight int

	polled []*ioengine.Request // scratch for the inner Poll
	ready  []*ioengine.Request // ring of requests to return, oldest at head
	head   int
	nready int
	held   []held
	marks  []mark
	closed bool
}

// Submit decides each request's fate in order. Requests that reach the
// device go to the inner queue in runs; a request failed by a rule first
// sends the run before it, so that the inner queue accepting fewer than
// offered still leaves reqs[:n] accepted and the rest untouched.
func (q *queue) Submit(reqs []*ioengine.Request) int {
	if q.closed {
		return 0
	}
	reqs = reqs[:min(len(reqs), q.depth-q.inflight)]
	start := 0 // reqs[start:i] are decided, pass through, and not yet sent
	for i, r := range reqs {
		e := q.dev.decide(r)
		if e.errno == 0 {
			if e.short || e.delay > 0 {
				q.marks = append(q.marks, mark{r: r, short: e.short, delay: e.delay})
			}
			continue
		}
		if n, ok := q.send(reqs, start, i); !ok {
			return n
		}
		r.Complete(0, e.errno)
		if e.delay > 0 {
			// It would have come back at the next Poll; the first Poll ages
			// it by one, so it comes back delay Polls later.
			q.held = append(q.held, held{r: r, polls: e.delay + 1})
		} else {
			q.push(r)
		}
		q.accept(1)
		start = i + 1
	}
	n, _ := q.send(reqs, start, len(reqs))
	return n
}

// send hands reqs[start:end] to the inner queue. If it takes them all, it
// returns (end, true). Otherwise it forgets the marks of the refused ones and
// returns how many of reqs Submit has accepted in all, and false.
func (q *queue) send(reqs []*ioengine.Request, start, end int) (int, bool) {
	if start == end {
		return end, true
	}
	k := q.inner.Submit(reqs[start:end])
	q.accept(k)
	if k == end-start {
		return end, true
	}
	for _, r := range reqs[start+k : end] {
		q.unmark(r)
	}
	return start + k, false
}

func (q *queue) accept(n int) {
	q.inflight += n
	q.dev.requests.Add(uint64(n))
}

// unmark removes r's mark and returns it; ok is false if r had none.
func (q *queue) unmark(r *ioengine.Request) (m mark, ok bool) {
	for i := range q.marks {
		if q.marks[i].r == r {
			m = q.marks[i]
			last := len(q.marks) - 1
			q.marks[i] = q.marks[last]
			q.marks[last] = mark{}
			q.marks = q.marks[:last]
			return m, true
		}
	}
	return mark{}, false
}

// push appends r to the ready ring. Every request in it is in flight, so
// it cannot be full unless the inner queue returned a request twice or one
// it was never given: a broken engine, and a panic.
func (q *queue) push(r *ioengine.Request) {
	if q.nready == q.depth {
		panic("faulty: the inner queue returned more requests than were in flight")
	}
	tail := q.head + q.nready
	if tail >= q.depth {
		tail -= q.depth
	}
	q.ready[tail] = r
	q.nready++
}

// Poll ages the held requests, takes the inner queue's completions (applying
// their marks), and returns ready requests oldest first.
func (q *queue) Poll(out []*ioengine.Request) int {
	if q.closed {
		return 0
	}
	kept := q.held[:0]
	for _, h := range q.held {
		if h.polls--; h.polls == 0 {
			q.push(h.r)
		} else {
			kept = append(kept, h)
		}
	}
	clear(q.held[len(kept):])
	q.held = kept

	n := q.inner.Poll(q.polled)
	for i, r := range q.polled[:n] {
		q.polled[i] = nil
		if len(q.marks) == 0 {
			q.push(r)
			continue
		}
		m, ok := q.unmark(r)
		if !ok {
			q.push(r)
			continue
		}
		if m.short && r.Errno == 0 && r.N == int64(len(r.Buf)) {
			r.N = int64(len(r.Buf) / 2)
		}
		if m.delay > 0 {
			q.held = append(q.held, held{r: r, polls: m.delay})
		} else {
			q.push(r)
		}
	}

	k := min(len(out), q.nready)
	for i := range k {
		out[i] = q.ready[q.head]
		q.ready[q.head] = nil
		if q.head++; q.head == q.depth {
			q.head = 0
		}
	}
	q.nready -= k
	q.inflight -= k
	return k
}

func (q *queue) Inflight() int { return q.inflight }

// WaitFD is -1: a held or ready request makes no descriptor readable, so a
// reactor must keep polling.
func (q *queue) WaitFD() int { return -1 }

// Close closes the inner queue, which waits for what it holds. Requests not
// yet returned belong to the caller again.
func (q *queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	clear(q.ready)
	clear(q.held)
	clear(q.marks)
	q.held, q.marks = q.held[:0], q.marks[:0]
	q.nready, q.inflight = 0, 0
	return q.inner.Close()
}
