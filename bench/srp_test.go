package bench

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
)

// otherCPU is an online CPU for the target's reactor: the second when
// there is one.
func otherCPU(t testing.TB) []int {
	t.Helper()
	cpus, err := sysfs.New("").OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	return cpus[len(cpus)-1:]
}

// A verified randrw run over SRP: two jobs on two channels of one session
// to an in-process target, every block written through SRP first, every
// read checked.
func TestSRPVerifyRandRW(t *testing.T) {
	for _, wce := range []bool{false, true} {
		cfg := baseConfig(t)
		cfg.RW, cfg.Jobs, cfg.IOs, cfg.SizeBytes = RWRandRW, 2, 3000, 8<<20
		cfg.Verify, cfg.VerifyPrefill = true, true
		cfg.Layer, cfg.SCSIWriteCache, cfg.TargetCPUs, cfg.TargetCoreMask = LayerSRP, wce, otherCPU(t), "test"
		// Spinning reactors: the loop fabric cannot wake a sleeping one, so
		// adaptive reactors would answer at their sleep's pace.
		cfg.Idle = poller.IdlePolicy{Mode: poller.IdleBusy}
		rep := run(t, openMem(t, 8<<20), cfg)
		if rep.Total.IOs != 6000 || rep.Total.Errors != 0 {
			t.Errorf("wce=%v: ios=%d errors=%d %v, want 6000 and 0", wce, rep.Total.IOs, rep.Total.Errors, rep.Total.ErrorsByErrno)
		}
		if rep.Verify == nil || rep.Verify.Checked < 3000 || rep.Verify.Mismatches != 0 {
			t.Errorf("wce=%v: verify %+v", wce, rep.Verify)
		}
		if o := rep.Options; o.Layer != "srp" || o.Target != "loop" || o.SCSIWriteCache != wce || o.SCSIBlockSize != 4096 {
			t.Errorf("options %+v", o)
		}
		if rep.Target == nil || len(rep.Target.Reactors) != 1 || rep.Target.BusyNsPerIO <= 0 {
			t.Errorf("target stats %+v", rep.Target)
		}
		var b bytes.Buffer
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if s := b.String(); !strings.Contains(s, "layer=srp (target=loop") || !strings.Contains(s, "ns of reactor busy time per I/O") {
			t.Errorf("report does not show the target:\n%s", s)
		}
	}
}

// The initiator side of a job over SRP allocates nothing per I/O: the
// srpQueue, the initiator channel, and (counted too, in the same process)
// the target's reactor.
func TestSRPAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: one for the job, one for the target")
	}
	for _, rw := range []RW{RWRandRead, RWRandWrite} {
		cfg := baseConfig(t)
		cfg.RW, cfg.IOs, cfg.IODepth = rw, 0, 8
		cfg.Layer, cfg.TargetCPUs = LayerSRP, otherCPU(t)
		// The target's reactor spins: an adaptive one asleep would answer
		// no I/O within a few thousand polls of this goroutine.
		cfg.Idle = poller.IdlePolicy{Mode: poller.IdleBusy}
		j := newTestJob(t, cfg, newFakeNull(64<<20))
		_ = j.q.Close()
		sb, err := newSRPBench(openMem(t, 64<<20), &cfg, j.pool.Region().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		q, err := sb.newQueue(0, cfg.IODepth)
		if err != nil {
			sb.close()
			t.Fatal(err)
		}
		j.q = q
		// The job runs on a reactor pinned to another CPU than the
		// target's: an unpinned test goroutine may share the target's
		// spinning core and wait for time slices.
		g, err := poller.NewGroup(poller.Config{CPUs: firstCPU(t), Idle: cfg.Idle})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		var ios, allocs uint64
		err = g.Call(0, 30*time.Second, func(*poller.Reactor) {
			j.poll() // leave phaseWait
			j.begin(poller.Monotonic())
			done := func() uint64 { return j.cnt[dirRead].ios + j.cnt[dirWrite].ios }
			deadline := time.Now().Add(10 * time.Second)
			for done() < 5000 && time.Now().Before(deadline) { // warm up
				j.poll()
			}
			// AllocsPerRun's GOMAXPROCS(1) would starve the target's
			// reactor: count the whole process's allocations instead.
			var m0, m1 runtime.MemStats
			before := done()
			runtime.ReadMemStats(&m0)
			for done()-before < 20000 && time.Now().Before(deadline) {
				j.poll()
			}
			runtime.ReadMemStats(&m1)
			ios = done() - before
			allocs = m1.Mallocs - m0.Mallocs
		})
		g.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if ios < 20000 {
			t.Errorf("%v: %d I/Os in 10 s", rw, ios)
		}
		if per := float64(allocs) / float64(max(ios, 1)); per >= 0.05 {
			t.Errorf("%v: %.2f allocations per I/O (%d in %d I/Os)", rw, per, allocs, ios)
		}
		if j.cnt[dirRead].errs+j.cnt[dirWrite].errs != 0 {
			t.Errorf("%v: errors %+v", rw, j.cnt)
		}
		_ = q.Close()
		sb.close()
	}
}
