package poller

import (
	"math/bits"
	"strings"
	"sync"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// The reactor clock. Reactors read the clock once per poller per loop and
// the bench harness twice per I/O, so its cost is on every hot path: the
// runtime's nanotime is one vDSO call (27 ns through kvm-clock on the
// reference VM), the time-stamp counter is one instruction (about a third of
// that). When the kernel says the TSC ticks at a constant rate through
// power states (constant_tsc and nonstop_tsc), Monotonic converts TSC ticks
// to nanoseconds with a multiplier calibrated against nanotime; otherwise it
// is nanotime. Either way it is monotonic nanoseconds on the runtime
// clock's scale, so values from both can be compared.

type tscClock struct {
	tsc0  uint64 // TSC at calibration
	ns0   int64  // nanotime at calibration
	mult  uint64 // ns per tick as a 32.32 fixed-point number
	valid bool
}

var (
	clockOnce sync.Once
	// clk is written once, by package initialisation, and only read after.
	clk tscClock
	// clockSource names the source for reports: "tsc" or "nanotime".
	clockSource = "nanotime"
)

// calibrationNs is how long calibration (at package init) watches both
// clocks: long enough that the error of one nanotime read (tens of ns) is
// about 10 ppm of it, short enough not to be noticed at start-up.
const calibrationNs = 5_000_000

func initClock() {
	clockOnce.Do(func() {
		if !haveTSC || !tscInvariant(sysfs.New("")) {
			return
		}
		t0, n0 := rdtsc(), nanotime()
		for nanotime()-n0 < calibrationNs {
		}
		t1, n1 := rdtsc(), nanotime()
		if t1 <= t0 || n1 <= n0 {
			return
		}
		ticks, ns := t1-t0, uint64(n1-n0)
		if ns>>32 >= ticks {
			return // under one tick per 4 s: not a clock worth using
		}
		mult, _ := bits.Div64(ns>>32, ns<<32, ticks) // (ns << 32) / ticks
		if mult == 0 {
			return
		}
		clk = tscClock{tsc0: t1, ns0: n1, mult: mult, valid: true}
		clockSource = "tsc"
	})
}

// tscInvariant reports whether the kernel trusts the TSC to tick at one
// rate in every power state (it checks CPUID and, in a VM, what the
// hypervisor says, and clears the flags when the TSC misbehaves).
func tscInvariant(fs sysfs.FS) bool {
	info, err := fs.ReadString("proc/cpuinfo")
	if err != nil {
		return false
	}
	for line := range strings.Lines(info) {
		if flags, ok := strings.CutPrefix(line, "flags"); ok {
			f := " " + strings.TrimSpace(strings.TrimLeft(flags, "\t :")) + " "
			return strings.Contains(f, " constant_tsc ") && strings.Contains(f, " nonstop_tsc ")
		}
	}
	return false
}

// tscNow converts the TSC to nanoseconds: ns0 + (tsc - tsc0) * mult >> 32,
// with a 128-bit product so hours of ticks cannot overflow.
func tscNow() int64 {
	d := rdtsc() - clk.tsc0
	hi, lo := bits.Mul64(d, clk.mult)
	return clk.ns0 + int64(hi<<32|lo>>32)
}

// Monotonic returns the clock reactors use, in nanoseconds.
func Monotonic() int64 {
	if clk.valid {
		return tscNow()
	}
	return nanotime()
}

// ClockSource names the clock Monotonic reads: "tsc" or "nanotime".
func ClockSource() string {
	initClock()
	return clockSource
}

func init() { initClock() }
