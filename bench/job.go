package bench

import (
	"math/bits"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"
)

// Latency histograms cover 1 ns to 60 s with 3 significant digits; a
// latency beyond the top is recorded as the top and counted (latClamped).
const (
	histMinNs  = 1
	histMaxNs  = 60_000_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMinNs, histMaxNs, histDigits) }

// Directions a completion is counted under.
const (
	dirRead = iota
	dirWrite
	numDirs
)

// errnoSlots bounds the per-errno counters; errnos at or above the last
// slot are counted there (Linux errnos stop at 133).
const errnoSlots = 256

// A job's phases. Prefill and readback are verify's own passes and are
// never measured; run and drain are the workload.
type phase uint8

const (
	phasePrefill  phase = iota // writing every block of the region once (--verify-prefill)
	phaseWait                  // waiting for the control plane's go
	phaseRun                   // the workload: ramp, then measured
	phaseDrain                 // stopped issuing; reaping what is in flight
	phaseReadback              // reading back every block written (--verify on a writing workload)
	phaseDone
)

// control is what the control plane tells every job. Jobs load these once
// per poll; each is stored once per run, so the line stays clean and shared.
type control struct {
	start atomic.Bool // leave phaseWait
	stop  atomic.Bool // runtime is over: stop issuing
}

// published are a job's counters for the control plane's sampler: all-time
// totals (ramp included), stored once per poll batch with completions, read
// without locks by the progress line and the IOPS-over-time samples.
type published struct {
	_        cpu.CacheLinePad
	ios      [numDirs]atomic.Uint64
	bytes    atomic.Uint64
	measured atomic.Bool // run and drain are over; the measured counters are final
	prefill  atomic.Bool // prefill is over
	done     atomic.Bool // every phase is over and nothing is in flight
	_        cpu.CacheLinePad
}

// dirCounts are one direction's measured counters.
type dirCounts struct {
	ios, bytes, errs, short uint64
}

// job is one worker: a poller on one reactor with its own queue, requests,
// buffers, generator and histograms. Everything but pub and ctl belongs to
// the reactor's goroutine while the job runs; the control plane reads the
// rest after a message round trip (Group.Call) or after the group stopped.
type job struct {
	id      int
	reactor int // index in the group
	cpu     int
	cfg     *runConfig
	ctl     *control
	pub     published

	q    ioengine.Queue
	pool *hugemem.Pool
	bufs []hugemem.Buf
	reqs []ioengine.Request
	free []*ioengine.Request // requests not in flight
	sub  []*ioengine.Request // prepared, waiting for Submit to accept them
	out  []*ioengine.Request // Poll's output

	// Per slot (Request.User): when and in which epoch it was submitted,
	// which block of the region it covers, and for verify its generation.
	submitAt []int64
	epochOf  []uint32
	blockOf  []int64
	genOf    []uint32

	rng     rand.PCG
	base    int64 // first block of the job's region, in bs units
	nblocks int64 // blocks in the region
	seq     int64 // next sequential block
	cursor  int64 // prefill and readback position

	phase    phase
	epoch    uint32 // bumped when measuring starts; older completions are not counted
	counting bool
	issued   uint64          // requests prepared in this epoch (for --ios)
	allIOs   [numDirs]uint64 // completions ever, for pub
	allBytes uint64

	// Measured results, reset when measuring starts.
	cnt        [numDirs]dirCounts
	errnos     [errnoSlots]uint64
	latClamped uint64
	startNs    int64
	endNs      int64
	lat        [numDirs]*hdrhistogram.Histogram // the current interval (nil: a direction the workload lacks)

	v verifier

	// The control plane's: the poller to unregister and, with an interval
	// log, the histograms of the measured window so far and the interval
	// histograms not in use (swapped with lat by a message on the reactor).
	poller *poller.Poller
	cum    [numDirs]*hdrhistogram.Histogram
	spare  [numDirs]*hdrhistogram.Histogram
}

// poll is the job's poller: issue up to iodepth, reap what finished. It
// allocates nothing and takes no lock.
func (j *job) poll() poller.Status {
	switch j.phase {
	case phaseWait:
		if !j.ctl.start.Load() {
			return poller.Idle
		}
		j.phase = phaseRun
		if j.counting {
			j.startNs = poller.Monotonic() // measured from the first I/O
		}
	case phaseDone:
		return poller.Idle
	case phaseRun:
		if j.ctl.stop.Load() {
			j.phase = phaseDrain
		}
	}
	busy := false
	if j.phase != phaseDrain {
		busy = j.issue()
	} else if len(j.sub) > 0 {
		// Prepared but never accepted: they were never in flight.
		for _, r := range j.sub {
			j.release(r)
		}
		j.sub = j.sub[:0]
	}
	if len(j.free) < len(j.reqs) {
		// Poll even right after Submit: engines send a loop's submissions
		// to the kernel in Poll, one system call for both.
		if n := j.q.Poll(j.out); n > 0 {
			j.complete(j.out[:n], poller.Monotonic())
			busy = true
		}
	}
	j.advance()
	if busy {
		return poller.Busy
	}
	return poller.Idle
}

// advance moves the job to its next phase when the current one is over.
func (j *job) advance() {
	if len(j.free) < len(j.reqs) || len(j.sub) > 0 {
		return
	}
	switch j.phase {
	case phasePrefill:
		if j.cursor >= j.nblocks {
			j.phase = phaseWait
			j.pub.prefill.Store(true)
		}
	case phaseRun:
		if !(j.counting && j.cfg.ios > 0 && j.issued >= j.cfg.ios) {
			return
		}
		j.finishRun()
	case phaseDrain:
		j.finishRun()
	case phaseReadback:
		if j.cursor >= j.nblocks {
			j.finish()
		}
	}
}

func (j *job) finishRun() {
	j.endNs = poller.Monotonic()
	j.pub.measured.Store(true)
	if j.cfg.verify && j.cfg.writes {
		j.phase = phaseReadback
		j.cursor = 0
		return
	}
	j.finish()
}

func (j *job) finish() {
	j.phase = phaseDone
	j.pub.done.Store(true)
}

// issue prepares requests into every free slot the phase allows and submits
// them in one batch. It reports whether anything was accepted.
func (j *job) issue() bool {
	sub := j.sub
	for len(j.free) > 0 {
		r := j.prepNext()
		if r == nil {
			break
		}
		sub = append(sub, r)
	}
	if len(sub) == 0 {
		j.sub = sub
		return false
	}
	now := poller.Monotonic()
	n := j.q.Submit(sub)
	for _, r := range sub[:n] {
		j.submitAt[r.User] = now
	}
	// Whatever Submit refused stays prepared, first in line next time.
	j.sub = sub[:copy(sub, sub[n:])]
	return n > 0
}

// prepNext takes a free request and prepares the phase's next operation in
// it, or returns nil when the phase has nothing more to issue.
func (j *job) prepNext() *ioengine.Request {
	switch j.phase {
	case phasePrefill:
		if j.cursor >= j.nblocks {
			return nil
		}
		r := j.take()
		j.prepAt(r, ioengine.OpWrite, j.cursor)
		j.cursor++
		return r
	case phaseReadback:
		for j.cursor < j.nblocks && j.v.gen[j.cursor] == 0 {
			j.cursor++ // never written by this run: nothing to check
		}
		if j.cursor >= j.nblocks {
			return nil
		}
		r := j.take()
		j.prepAt(r, ioengine.OpRead, j.cursor)
		j.cursor++
		return r
	case phaseRun:
		if j.counting && j.cfg.ios > 0 && j.issued >= j.cfg.ios {
			return nil
		}
		r := j.take()
		j.prep(r)
		j.issued++
		return r
	}
	return nil
}

func (j *job) take() *ioengine.Request {
	r := j.free[len(j.free)-1]
	j.free = j.free[:len(j.free)-1]
	return r
}

func (j *job) release(r *ioengine.Request) {
	if j.cfg.verify {
		j.v.unbusy(j.blockOf[r.User])
	}
	j.free = append(j.free, r)
}

// prep fills r with the workload's next operation and offset.
func (j *job) prep(r *ioengine.Request) {
	op := j.cfg.op
	if j.cfg.mixed {
		// Lemire's multiply maps 64 random bits onto [0, 100).
		if hi, _ := bits.Mul64(j.rng.Uint64(), 100); int(hi) < j.cfg.mixRead {
			op = ioengine.OpRead
		} else {
			op = ioengine.OpWrite
		}
	}
	blk := j.next()
	if j.cfg.verify {
		// Never two requests on one block at once: the order they reach
		// the medium is unknown, so neither could be checked. The region
		// has more blocks than the queue is deep, so this ends.
		for j.v.isBusy(blk) {
			blk = j.next()
		}
	}
	j.prepAt(r, op, blk)
}

// next is the next block of the region, random or sequential.
func (j *job) next() int64 {
	if j.cfg.random {
		hi, _ := bits.Mul64(j.rng.Uint64(), uint64(j.nblocks))
		return int64(hi)
	}
	b := j.seq
	if j.seq++; j.seq == j.nblocks {
		j.seq = 0
	}
	return b
}

func (j *job) prepAt(r *ioengine.Request, op ioengine.Op, blk int64) {
	slot := r.User
	r.Op = op
	r.Flags = 0
	if op == ioengine.OpWrite {
		r.Flags = j.cfg.wflags
	}
	r.Offset = (j.base + blk) * int64(j.cfg.bs)
	r.N, r.Errno = 0, 0
	j.blockOf[slot] = blk
	j.epochOf[slot] = j.epoch
	if j.cfg.verify {
		j.v.busy(blk)
		if op == ioengine.OpWrite {
			j.v.next++
			if j.v.next == 0 {
				j.v.next = 1 // 0 means "unknown"
			}
			j.genOf[slot] = j.v.next
			j.v.stamp(r.Buf, j.lba(r.Offset), j.v.next, uint32(j.id))
		} else {
			// A read that moves no data must not pass on what the
			// slot's last write left in the buffer.
			clear(r.Buf[:hdrLen])
		}
	}
}

func (j *job) lba(off int64) uint64 { return uint64(off) / uint64(j.cfg.lbaSize) }

// complete accounts finished requests and frees their slots. now is when
// Poll returned them: latency is completion minus submission, both read
// once per batch.
func (j *job) complete(done []*ioengine.Request, now int64) {
	for _, r := range done {
		slot := r.User
		d := dirRead
		if r.Op == ioengine.OpWrite {
			d = dirWrite
		}
		ok := r.Errno == 0 && r.N == int64(len(r.Buf))
		j.allIOs[d]++
		if r.Errno == 0 {
			j.allBytes += uint64(r.N)
		}
		if j.counting && j.epochOf[slot] == j.epoch && j.phase <= phaseDrain {
			lat := now - j.submitAt[slot]
			if lat > histMaxNs {
				lat = histMaxNs
				j.latClamped++
			}
			_ = j.lat[d].RecordValue(lat) // in range by construction
			c := &j.cnt[d]
			c.ios++
			switch {
			case r.Errno != 0:
				c.errs++
				j.errnos[min(int(r.Errno), errnoSlots-1)]++
			case r.N != int64(len(r.Buf)):
				c.errs++
				c.short++
				c.bytes += uint64(r.N)
			default:
				c.bytes += uint64(r.N)
			}
		}
		if j.cfg.verify {
			blk := j.blockOf[slot]
			switch {
			case d == dirWrite && ok:
				j.v.gen[blk] = j.genOf[slot]
			case d == dirWrite:
				j.v.gen[blk] = 0 // what the medium holds now is unknown
			case ok && j.v.gen[blk] != 0:
				j.v.check(r.Buf, j.lba(r.Offset), r.Offset, j.v.gen[blk], uint32(j.id))
			}
		}
		j.release(r)
	}
	// Stores once per batch: plain moves on amd64 and arm64, read by the
	// sampler without a lock.
	j.pub.ios[dirRead].Store(j.allIOs[dirRead])
	j.pub.ios[dirWrite].Store(j.allIOs[dirWrite])
	j.pub.bytes.Store(j.allBytes)
}

// begin starts the measured window (on the job's reactor): counters and
// histograms start over, and completions of requests issued before now are
// no longer counted.
func (j *job) begin(now int64) {
	j.epoch++
	j.counting = true
	j.issued = 0
	j.cnt = [numDirs]dirCounts{}
	j.errnos = [errnoSlots]uint64{}
	j.latClamped = 0
	for _, h := range j.lat {
		if h != nil {
			h.Reset()
		}
	}
	j.startNs = now // re-read at the start when the job still waits for it
}

// errnoName is the symbolic name of an errno ("EIO"), or its number.
func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}
