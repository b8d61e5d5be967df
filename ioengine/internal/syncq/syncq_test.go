package syncq_test

import (
	"strings"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/internal/syncq"
)

// counter is an engine that completes every request with its size and
// counts calls.
type counter struct{ execs, closes int }

func (c *counter) exec(r *ioengine.Request) { c.execs++; r.Complete(r.Size(), 0) }
func (c *counter) closed()                  { c.closes++ }

func newQueue(depth int) (*syncq.Queue, *counter) {
	c := &counter{}
	return syncq.New(depth, c.exec, c.closed), c
}

func TestCheckDepth(t *testing.T) {
	for _, d := range []int{1, 2, syncq.MaxDepth} {
		if err := syncq.CheckDepth(d); err != nil {
			t.Errorf("CheckDepth(%d) = %v", d, err)
		}
	}
	for _, d := range []int{-1, 0, syncq.MaxDepth + 1} {
		err := syncq.CheckDepth(d)
		if err == nil || !strings.Contains(err.Error(), "want 1 to 65536") {
			t.Errorf("CheckDepth(%d) = %v, want a range error", d, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New(0, ...) did not panic")
		}
	}()
	syncq.New(0, func(*ioengine.Request) {}, func() {})
}

// Submit executes at once and takes no more than the free depth; Poll
// returns in order and frees slots; Inflight follows.
func TestSubmitPollDepth(t *testing.T) {
	q, c := newQueue(2)
	reqs := make([]*ioengine.Request, 3)
	for i := range reqs {
		reqs[i] = &ioengine.Request{Op: ioengine.OpRead, Buf: make([]byte, 8), User: uint64(i)}
	}
	if k := q.Submit(reqs); k != 2 {
		t.Fatalf("Submit of 3 on depth 2 = %d", k)
	}
	if c.execs != 2 || !reqs[0].OK() || reqs[0].N != 8 || reqs[2].N != 0 {
		t.Fatalf("Submit did not execute exactly the accepted requests: %d execs", c.execs)
	}
	if n := q.Inflight(); n != 2 {
		t.Errorf("Inflight = %d, want 2", n)
	}
	if k := q.Submit(reqs[2:]); k != 0 {
		t.Errorf("Submit on a full queue = %d", k)
	}
	out := make([]*ioengine.Request, 1)
	if n := q.Poll(out); n != 1 || out[0] != reqs[0] {
		t.Fatalf("Poll = %d, %v", n, out[0])
	}
	if k := q.Submit(reqs[2:]); k != 1 {
		t.Fatalf("Submit after a poll = %d", k)
	}
	out = make([]*ioengine.Request, 4)
	if n := q.Poll(out); n != 2 || out[0] != reqs[1] || out[1] != reqs[2] {
		t.Fatalf("Poll = %d, %v", n, out[:n])
	}
	if n := q.Inflight(); n != 0 {
		t.Errorf("Inflight = %d, want 0", n)
	}
	if fd := q.WaitFD(); fd != -1 {
		t.Errorf("WaitFD() = %d, want -1", fd)
	}
}

// The ring wraps: a queue of depth 3 cycled with partial polls returns
// every request in submission order.
func TestRingOrder(t *testing.T) {
	q, _ := newQueue(3)
	reqs := make([]ioengine.Request, 100)
	out := make([]*ioengine.Request, 2)
	next, want := 0, 0
	for want < len(reqs) {
		if next < len(reqs) {
			r := &reqs[next]
			r.Op, r.User = ioengine.OpFlush, uint64(next)
			next += q.Submit([]*ioengine.Request{r})
		}
		n := q.Poll(out[:1+want%2])
		for _, r := range out[:n] {
			if r.User != uint64(want) {
				t.Fatalf("got request %d, want %d", r.User, want)
			}
			want++
		}
	}
}

// Close drops unpolled requests, tells the device once, and leaves a queue
// that takes and returns nothing.
func TestClose(t *testing.T) {
	q, c := newQueue(2)
	r := &ioengine.Request{Op: ioengine.OpFlush}
	if k := q.Submit([]*ioengine.Request{r}); k != 1 {
		t.Fatalf("Submit = %d", k)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c.closes != 1 {
		t.Errorf("onClose called %d times, want 1", c.closes)
	}
	if k := q.Submit([]*ioengine.Request{r}); k != 0 {
		t.Errorf("Submit on a closed queue = %d", k)
	}
	if n := q.Poll(make([]*ioengine.Request, 1)); n != 0 {
		t.Errorf("Poll on a closed queue = %d", n)
	}
	if n := q.Inflight(); n != 0 {
		t.Errorf("Inflight on a closed queue = %d", n)
	}
	if c.execs != 1 {
		t.Errorf("%d execs, want 1", c.execs)
	}
}

func TestNoAllocs(t *testing.T) {
	q, _ := newQueue(32)
	reqs := make([]*ioengine.Request, 32)
	for i := range reqs {
		reqs[i] = &ioengine.Request{Op: ioengine.OpFlush}
	}
	out := make([]*ioengine.Request, 32)
	if allocs := testing.AllocsPerRun(100, func() {
		q.Submit(reqs)
		q.Poll(out)
	}); allocs != 0 {
		t.Errorf("a submit-and-poll cycle allocates %v times", allocs)
	}
}

func BenchmarkQD1(b *testing.B) {
	q, _ := newQueue(1)
	r := []*ioengine.Request{{Op: ioengine.OpFlush}}
	out := make([]*ioengine.Request, 1)
	for b.Loop() {
		q.Submit(r)
		q.Poll(out)
	}
}
