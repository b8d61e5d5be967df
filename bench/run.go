package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
)

// runner drives one run from the control plane. It talks to the jobs only
// through their published atomics, the control flags, and messages run on
// their reactors (Group.Call); it reads the rest of a job after a message
// round trip or after the group stopped.
type runner struct {
	cfg    *IOConfig
	info   ioengine.Info
	geo    geometry
	dev    ioengine.Device
	tgt    *scsiTarget // --layer scsi: the LU and nexus every job shares; nil otherwise
	srp    *srpBench   // --target loop: the target and the initiator session; nil otherwise
	region *hugemem.Region
	jobs   []*job
	ctl    *control
	cpus   []int
	g      *poller.Group

	// The measured window.
	measuring        bool
	startWall        time.Time
	endWall          time.Time
	stats0, stats1   []poller.ReactorStats
	ru0, ru1         rusage
	phaseName        string
	phaseStart       time.Time
	progressUntil    time.Time // the end of the phase, for "left"; zero when unknown
	progressTotalIOs uint64    // the measured window's I/O target, for "left" under --ios
	beginIOs         uint64    // published completions when the window began
	wasInterrupted   bool

	// Sampling: the last sample's published counters and time.
	lastIOs   [numDirs]uint64
	lastBytes uint64
	lastAt    time.Time
	samples   []Sample
	wrote     bool // a progress line is on the terminal

	// The interval log.
	hlog    *hdrhistogram.HistogramLogWriter
	lastLog time.Time
	logIntv [numDirs + 1]*hdrhistogram.Histogram // read, write, both
}

func (r *runner) run() (*IOReport, error) {
	g, err := poller.NewGroup(poller.Config{CPUs: r.cpus, Idle: r.cfg.Idle})
	if err != nil {
		return nil, err
	}
	r.g = g
	if err := g.Start(); err != nil {
		return nil, err
	}
	pins := g.Pins()
	err = r.drive()
	if cerr := r.teardown(); err == nil {
		err = cerr
	}
	g.Stop()
	r.clearProgress()
	if err != nil {
		return nil, err
	}
	// The reactors are gone: every job's state is ours to read.
	return r.report(pins), nil
}

// drive runs the phases: queues, prefill, start, ramp, measure, readback.
func (r *runner) drive() error {
	if err := r.openQueues(); err != nil {
		return err
	}
	r.lastAt = time.Now()
	if r.cfg.VerifyPrefill {
		r.setPhase("prefill", time.Time{})
		if err := r.waitAll(func(j *job) bool { return j.pub.prefill.Load() }, time.Time{}); err != nil {
			return err
		}
	}
	if r.cfg.Ramp > 0 {
		r.ctl.start.Store(true)
		r.wake()
		r.setPhase("ramp", time.Now().Add(r.cfg.Ramp))
		r.sleep(r.cfg.Ramp)
		if err := r.begin(); err != nil {
			return err
		}
	} else {
		// No warm-up: jobs count from their first I/O.
		if err := r.begin(); err != nil {
			return err
		}
		r.ctl.start.Store(true)
		r.wake()
	}
	var deadline time.Time
	if r.cfg.Runtime > 0 {
		deadline = r.startWall.Add(r.cfg.Runtime)
	}
	if err := r.waitAll(func(j *job) bool { return j.pub.measured.Load() }, deadline); err != nil {
		return err
	}
	if err := r.end(); err != nil {
		return err
	}
	if r.cfg.Verify && r.cfg.RW.Writes() {
		r.setPhase("verify", time.Time{})
		if err := r.waitAll(func(j *job) bool { return j.pub.done.Load() }, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// openQueues makes each job's queue on its reactor's thread and registers
// the job's poller there.
func (r *runner) openQueues() error {
	adaptive := r.cfg.Idle.Mode == poller.IdleAdaptive
	buffers := [][]byte{r.region.Bytes()}
	for _, j := range r.jobs {
		var qerr error
		err := r.g.Call(j.reactor, callTimeout, func(re *poller.Reactor) {
			// On the reactor's own thread: io_uring with SINGLE_ISSUER
			// accepts submissions only from the thread that made it.
			if r.srp != nil {
				sq, err := r.srp.newQueue(j.id, r.cfg.IODepth)
				if err != nil {
					qerr = fmt.Errorf("bench: job %d: %w", j.id, err)
					return
				}
				j.q = sq
				j.poller = re.Register(fmt.Sprintf("job%d", j.id), j.poll)
				return
			}
			q, err := r.dev.NewQueue(ioengine.QueueConfig{Depth: r.cfg.IODepth, Buffers: buffers})
			if err != nil {
				qerr = fmt.Errorf("bench: job %d: queue: %w", j.id, err)
				return
			}
			if r.tgt != nil {
				sq, err := newSCSIQueue(r.tgt, q, r.cfg.IODepth)
				if err != nil {
					_ = q.Close()
					qerr = fmt.Errorf("bench: job %d: %w", j.id, err)
					return
				}
				q = sq
			}
			j.q = q
			if adaptive {
				if fd := q.WaitFD(); fd >= 0 {
					re.AddWaitFD(fd)
				}
			}
			j.poller = re.Register(fmt.Sprintf("job%d", j.id), j.poll)
		})
		if err == nil {
			err = qerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// begin opens the measured window: process CPU time and reactor counters
// are taken, then every job starts counting on its own reactor.
func (r *runner) begin() error {
	var err error
	if r.ru0, err = getrusage(); err != nil {
		return err
	}
	if r.srp != nil {
		if r.srp.stats0, err = r.srp.targetStats(); err != nil {
			return err
		}
	}
	if r.stats0, err = r.g.Stats(callTimeout); err != nil {
		return err
	}
	r.startWall = time.Now()
	for i := range r.cpus {
		if err := r.g.Call(i, callTimeout, func(*poller.Reactor) {
			now := poller.Monotonic()
			for _, j := range r.jobs {
				if j.reactor == i {
					j.begin(now)
				}
			}
		}); err != nil {
			return err
		}
	}
	// Samples count from here: ramp completions published so far are
	// left out.
	r.lastIOs, r.lastBytes = r.published()
	r.beginIOs = r.lastIOs[dirRead] + r.lastIOs[dirWrite]
	r.lastAt = r.startWall
	r.measuring = true
	var until time.Time
	if r.cfg.Runtime > 0 {
		until = r.startWall.Add(r.cfg.Runtime)
	}
	r.setPhase(r.cfg.RW.String(), until)
	r.phaseStart = r.startWall
	r.progressTotalIOs = r.geo.ios * uint64(len(r.jobs))
	if r.cfg.HistLog != nil {
		return r.startLog()
	}
	return nil
}

// end closes the measured window once every job has finished it.
func (r *runner) end() error {
	var err error
	if r.ru1, err = getrusage(); err != nil {
		return err
	}
	r.endWall = time.Now()
	if r.stats1, err = r.g.Stats(callTimeout); err != nil {
		return err
	}
	if r.srp != nil {
		if r.srp.stats1, err = r.srp.targetStats(); err != nil {
			return err
		}
	}
	r.tickAt(r.endWall, true)
	r.measuring = false
	if r.hlog != nil {
		return r.logInterval(r.endWall)
	}
	return nil
}

// wake wakes reactors that may sleep under the adaptive idle policy, after
// a store to the control flags.
func (r *runner) wake() {
	for i := range r.cpus {
		r.g.Reactor(i).Wake()
	}
}

// sleep waits d, keeping the progress line up.
func (r *runner) sleep(d time.Duration) {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 || r.interrupted() {
			return
		}
		time.Sleep(min(left, 10*time.Millisecond))
		_ = r.tick() // nothing is logged outside the measured window
	}
}

// waitAll waits until cond holds for every job, sampling as it goes. With
// a non-zero stopAt it stops the jobs then, and gives them drainTimeout to
// finish what is in flight.
func (r *runner) waitAll(cond func(*job) bool, stopAt time.Time) error {
	var stoppedAt time.Time
	for {
		all := true
		for _, j := range r.jobs {
			all = all && cond(j)
		}
		if all {
			return nil
		}
		now := time.Now()
		if stoppedAt.IsZero() && (!stopAt.IsZero() && !now.Before(stopAt) || r.measuring && r.interrupted()) {
			r.ctl.stop.Store(true)
			r.wake()
			stoppedAt = now
		}
		if !stoppedAt.IsZero() && now.Sub(stoppedAt) > drainTimeout {
			return fmt.Errorf("bench: jobs did not finish their in-flight I/O within %v of the end of the run", drainTimeout)
		}
		time.Sleep(2 * time.Millisecond)
		if err := r.tick(); err != nil {
			return err
		}
	}
}

// interrupted reports whether the caller asked the run to end early.
func (r *runner) interrupted() bool {
	select {
	case <-r.cfg.Interrupt:
		r.wasInterrupted = true
		return true
	default:
		return false
	}
}

// published sums the jobs' all-time counters.
func (r *runner) published() (ios [numDirs]uint64, bytes uint64) {
	for _, j := range r.jobs {
		for d := range ios {
			ios[d] += j.pub.ios[d].Load()
		}
		bytes += j.pub.bytes.Load()
	}
	return ios, bytes
}

// tick samples once per SampleEvery: progress, the IOPS sample, and the
// interval log.
func (r *runner) tick() error {
	now := time.Now()
	if now.Sub(r.lastAt) < r.cfg.SampleEvery {
		return nil
	}
	r.tickAt(now, false)
	if r.measuring && r.hlog != nil && now.Sub(r.lastLog) >= r.cfg.SampleEvery {
		return r.logInterval(now)
	}
	return nil
}

func (r *runner) tickAt(now time.Time, last bool) {
	ios, bytes := r.published()
	dt := now.Sub(r.lastAt).Seconds()
	if dt <= 0 {
		return
	}
	var s Sample
	s.ReadIOPS = float64(ios[dirRead]-r.lastIOs[dirRead]) / dt
	s.WriteIOPS = float64(ios[dirWrite]-r.lastIOs[dirWrite]) / dt
	s.IOPS = s.ReadIOPS + s.WriteIOPS
	s.BWBytes = float64(bytes-r.lastBytes) / dt
	if r.measuring {
		s.T = now.Sub(r.startWall).Seconds()
		// A last partial interval far shorter than the period would be a
		// noisy point; keep it only when it covers half a period.
		if !last || now.Sub(r.lastAt) >= r.cfg.SampleEvery/2 {
			r.samples = append(r.samples, s)
		}
	}
	if !last {
		r.progress(now, s, ios)
	}
	r.lastIOs, r.lastBytes, r.lastAt = ios, bytes, now
}

// teardown unregisters every job and closes its queue on its reactor
// (Close waits for whatever is still in flight).
func (r *runner) teardown() error {
	var errs []error
	for _, j := range r.jobs {
		if j.q == nil {
			continue
		}
		var cerr error
		err := r.g.Call(j.reactor, callTimeout, func(re *poller.Reactor) {
			re.Unregister(j.poller)
			if err := j.q.Close(); err != nil {
				cerr = fmt.Errorf("bench: job %d: close queue: %w", j.id, err)
			}
		})
		errs = append(errs, err, cerr)
	}
	return errors.Join(errs...)
}

// swapIntervals hands every job a fresh interval histogram on its reactor
// and returns with the finished ones in j.spare, the control plane's until
// the next swap.
func (r *runner) swapIntervals() error {
	for i := range r.cpus {
		if err := r.g.Call(i, callTimeout, func(*poller.Reactor) {
			for _, j := range r.jobs {
				if j.reactor == i {
					j.lat, j.spare = j.spare, j.lat
				}
			}
		}); err != nil {
			return err
		}
	}
	return nil
}
