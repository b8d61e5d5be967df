package enginetest

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/faulty"
)

// outcome is what the faults subtest expects of one request.
type outcome uint8

const (
	wantOK        outcome = iota
	wantOKorNoSpc         // the probability rule may fail it with ENOSPC
	wantEIO
	wantShort
)

// faults wraps the engine in package faulty and checks that injected
// errors, short transfers and delays reach the caller as typed results, that
// the engine's own completions go through the wrapper unharmed, and that
// nothing is lost on the way.
func (s *suite) faults(t *testing.T) {
	inner := s.rawDevice(t)
	info := inner.Info()
	size, bs := info.SizeBytes, int64(info.BlockSize)
	const delayed = 6
	d := faulty.Wrap(inner,
		// Only the timing check below reads the last block.
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Offset: size - bs, Len: bs, Delay: delayed},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Every: 4, Errno: syscall.EIO},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Every: 3, Short: true},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead, ioengine.OpWrite), Every: 5, Delay: 3},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Probability: 0.25, Seed: 7, Errno: syscall.ENOSPC},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpFlush), Every: 2, Errno: syscall.EIO, Delay: 2},
	)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Device.Close: %v", err)
		}
	})

	const total = 200
	bufs := NewBuffers(t, total, int(bs))
	q := NewQueue(t, d, 16, bufs)
	perm := rand.New(rand.NewPCG(5, 5)).Perm(int(min(size/bs-1, 1<<20))) // not the last block
	reqs := requests(total)
	want := make([]outcome, total)
	var reads, writes, flushes, passed uint64 // what each rule has seen, as it will
	var fired [6]uint64
	for i, r := range reqs {
		switch {
		case i%10 == 9:
			r.Op = ioengine.OpFlush
			if flushes++; flushes%2 == 0 {
				want[i] = wantEIO
				fired[5]++
			}
			continue
		case i%3 == 1:
			r.Op = ioengine.OpWrite
			Fill(bufs.Bufs[i], uint64(i))
		default:
			r.Op = ioengine.OpRead
		}
		r.Offset, r.Buf = int64(perm[i%len(perm)])*bs, bufs.Bufs[i]
		if r.Op == ioengine.OpRead {
			if reads++; reads%4 == 0 {
				want[i] = wantEIO
				fired[1]++
				continue
			}
		} else if writes++; writes%3 == 0 {
			want[i] = wantShort
			fired[2]++
			continue
		}
		if passed++; passed%5 == 0 {
			fired[3]++
			continue
		}
		if r.Op == ioengine.OpWrite {
			want[i] = wantOKorNoSpc
		}
	}
	Exec(t, q, reqs...)

	var errs, shorts, nospc uint64
	for i, r := range reqs {
		err := r.Err()
		var errno syscall.Errno
		switch {
		case want[i] == wantEIO:
			if r.Errno != syscall.EIO || r.N != 0 || !errors.Is(err, syscall.EIO) || !errors.As(err, &errno) {
				t.Errorf("request %d (%v): Errno %v, N %d, Err() %v; want an injected EIO", i, r.Op, r.Errno, r.N, err)
			}
			errs++
		case want[i] == wantShort:
			if r.Errno != 0 || r.N != int64(len(r.Buf)/2) || r.OK() || !errors.Is(err, ioengine.ErrShort) {
				t.Errorf("request %d (%v): Errno %v, N %d of %d, Err() %v; want a short transfer", i, r.Op, r.Errno, r.N, len(r.Buf), err)
			}
			shorts++
		case want[i] == wantOKorNoSpc && r.Errno == syscall.ENOSPC:
			if r.N != 0 || !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("request %d (%v): N %d, Err() %v after an injected ENOSPC", i, r.Op, r.N, err)
			}
			errs++
			nospc++
		default:
			if !r.OK() || err != nil || r.N != r.Size() {
				t.Errorf("request %d (%v of %d at %d), with no fault injected: N %d, Err() %v", i, r.Op, r.Size(), r.Offset, r.N, err)
			}
		}
	}
	fired[4] = nospc
	st := d.Stats()
	if st.Requests != total || st.Errors != errs || st.Shorts != shorts || st.Delays != fired[3]+fired[5] {
		t.Errorf("Stats() = %+v; want %d requests, %d errors, %d shorts, %d delays",
			st, total, errs, shorts, fired[3]+fired[5])
	}
	if len(st.Fired) != len(fired) {
		t.Fatalf("Stats().Fired has %d rules, want %d", len(st.Fired), len(fired))
	}
	for i := range fired {
		if st.Fired[i] != fired[i] {
			t.Errorf("rule %d fired %d times, want %d", i, st.Fired[i], fired[i])
		}
	}
	if nospc == 0 {
		t.Error("the probability rule never fired")
	}

	// A delayed request stays in flight for the delay, then comes back.
	r := requests(1)[0]
	r.Op, r.Offset, r.Buf = ioengine.OpRead, size-bs, bufs.Bufs[0]
	if k := q.Submit([]*ioengine.Request{r}); k != 1 {
		t.Fatalf("Submit accepted %d of 1", k)
	}
	out := make([]*ioengine.Request, 1)
	deadline := time.Now().Add(Timeout)
	polls := 0
	for {
		polls++
		if n := q.Poll(out); n == 1 {
			break
		}
		if q.Inflight() != 1 {
			t.Fatalf("a delayed request: Inflight() = %d during the delay", q.Inflight())
		}
		if time.Now().After(deadline) {
			t.Fatalf("a request delayed by %d polls is not back after %d", delayed, polls)
		}
		runtime.Gosched()
	}
	if polls <= delayed || out[0] != r || !r.OK() {
		t.Errorf("a request delayed by %d polls came back at poll %d (same request %v, Err() %v)", delayed, polls, out[0] == r, r.Err())
	}
}
