package poller

import (
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
)

// Monotonic must agree with the runtime clock (it is calibrated against it)
// and never go backwards, whichever source it uses.
func TestMonotonicTracksRuntimeClock(t *testing.T) {
	t.Logf("clock source: %s", ClockSource())
	prev := Monotonic()
	for range 100000 {
		now := Monotonic()
		if now < prev {
			t.Fatalf("clock went backwards: %d after %d", now, prev)
		}
		prev = now
	}
	// Over a sleep, both clocks measure the same interval within 0.1 %
	// plus the few microseconds between the paired reads.
	m0, n0 := Monotonic(), nanotime()
	time.Sleep(50 * time.Millisecond)
	m1, n1 := Monotonic(), nanotime()
	dm, dn := m1-m0, n1-n0
	if diff := dm - dn; diff > dn/1000+20_000 || -diff > dn/1000+20_000 {
		t.Fatalf("Monotonic measured %v while the runtime clock measured %v", time.Duration(dm), time.Duration(dn))
	}
	if d := Monotonic() - nanotime(); d > 1_000_000 || d < -1_000_000 {
		t.Fatalf("Monotonic is %v away from the runtime clock", time.Duration(d))
	}
}

func TestTSCInvariantFlags(t *testing.T) {
	for flags, want := range map[string]bool{
		"fpu tsc constant_tsc nonstop_tsc rdtscp": true,
		"fpu tsc constant_tsc rdtscp":             false, // stops in deep C-states
		"fpu tsc nonstop_tsc":                     false,
		"fpu tsc constant_tsc_x nonstop_tsc":      false,
	} {
		spec := sysfstest.SmallVM()
		spec.Files = sysfstest.FileMap{"proc/cpuinfo": "processor\t: 0\nflags\t\t: " + flags + "\n"}
		root := sysfstest.Tree(t, spec)
		if got := tscInvariant(sysfs.New(root)); got != want {
			t.Errorf("flags %q: invariant %v, want %v", flags, got, want)
		}
	}
	if tscInvariant(sysfs.New(t.TempDir())) {
		t.Error("no /proc/cpuinfo read as an invariant TSC")
	}
}

func BenchmarkMonotonic(b *testing.B) {
	var s int64
	for b.Loop() {
		s += Monotonic()
	}
	_ = s
}

func BenchmarkNanotime(b *testing.B) {
	var s int64
	for b.Loop() {
		s += nanotime()
	}
	_ = s
}
