package enginetest_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/mem"
)

// The suite must catch each kind of broken engine. Each case runs the
// suite, in a child process, against mem with one bug planted, and expects
// the named subtest to fail with the given words.
func TestSuiteCatchesBugs(t *testing.T) {
	if b := os.Getenv("ENGINETEST_BUG"); b != "" {
		enginetest.Run(t, func(t *testing.T) ioengine.Device {
			d, err := mem.Open(8<<20, 512)
			if err != nil {
				t.Fatal(err)
			}
			return &buggy{Device: d, bug: b}
		}, enginetest.Options{PersistsData: true, ZeroesDiscard: true, SupportsDiscard: true, SupportsWriteZeroes: true, MaxDepth: mem.MaxDepth})
		return
	}
	cases := []struct {
		bug, subtest, words string
	}{
		{"lose", "Inflight", "Inflight()"},
		{"twice", "ReadWrite", "twice"},
		{"user", "Inflight", "came back with User"},
		{"norange", "Range", "want invalid argument"},
		{"overfill", "Inflight", "Submit of"},
		{"alloc", "ZeroAllocs", "allocates"},
		{"corrupt", "ReadWrite", "does not return what was written"},
		{"supports", "Info", "Supports(discard)"},
		{"nozero", "DiscardWriteZeroes", "reads back non-zero"},
		{"short", "ReadWrite", "short transfer"},
		{"eio", "Faults", "no fault injected"},
	}
	for _, c := range cases {
		t.Run(c.bug, func(t *testing.T) {
			if c.subtest == "ZeroAllocs" && enginetest.RaceEnabled {
				t.Skip("the suite does not count allocations under the race detector")
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteCatchesBugs$/^"+c.subtest+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ENGINETEST_BUG="+c.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed an engine with bug %q:\n%s", c.bug, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestSuiteCatchesBugs/"+c.subtest) || !strings.Contains(string(out), c.words) {
				t.Fatalf("bug %q: want %s to fail with %q; got:\n%s", c.bug, c.subtest, c.words, out)
			}
		})
	}
}

// buggy is mem with one bug planted.
type buggy struct {
	ioengine.Device
	bug string
}

func (d *buggy) Supports(op ioengine.Op) bool {
	if d.bug == "supports" && op == ioengine.OpDiscard {
		return false
	}
	return d.Device.Supports(op)
}

func (d *buggy) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	depth := cfg.Depth
	if d.bug == "overfill" && cfg.Depth > 0 {
		cfg.Depth++
	}
	q, err := d.Device.NewQueue(cfg)
	if err != nil {
		return nil, err
	}
	return &buggyQueue{Queue: q, bug: d.bug, depth: depth}, nil
}

type buggyQueue struct {
	ioengine.Queue
	bug   string
	depth int
	n     int                 // requests returned so far
	again *ioengine.Request   // to return a second time
	zero  []*ioengine.Request // write-zeroes turned into flushes
}

var sink []byte

func (q *buggyQueue) Submit(reqs []*ioengine.Request) int {
	if q.bug == "nozero" {
		for _, r := range reqs {
			if r.Op == ioengine.OpWriteZeroes {
				r.Op = ioengine.OpFlush
				q.zero = append(q.zero, r)
			}
		}
	}
	return q.Queue.Submit(reqs)
}

func (q *buggyQueue) Poll(out []*ioengine.Request) int {
	n := q.Queue.Poll(out)
	if q.again != nil && n < len(out) {
		out[n] = q.again
		n++
		q.again = nil
	}
	for i := 0; i < n; i++ {
		r := out[i]
		q.n++
		switch {
		case q.bug == "lose" && q.n == 10:
			copy(out[i:], out[i+1:n])
			n--
			i--
		case q.bug == "twice" && q.n == 10:
			q.again = r
		case q.bug == "user" && q.n == 5:
			r.User ^= 1
		case q.bug == "norange" && r.Errno == syscall.EINVAL:
			r.Complete(r.Size(), 0)
		case q.bug == "alloc":
			sink = make([]byte, 64)
		case q.bug == "corrupt" && r.Op == ioengine.OpRead && len(r.Buf) > 0 && q.n > 48:
			r.Buf[len(r.Buf)/2] ^= 0x10
		case q.bug == "short" && r.Op == ioengine.OpWrite && r.N > 0:
			r.N--
		case q.bug == "eio" && r.Op == ioengine.OpWrite && q.n%7 == 0:
			r.Complete(0, syscall.EIO)
		case q.bug == "nozero":
			for j, z := range q.zero {
				if z == r {
					r.Op, r.N = ioengine.OpWriteZeroes, r.Len
					q.zero = append(q.zero[:j], q.zero[j+1:]...)
					break
				}
			}
		}
	}
	return n
}
