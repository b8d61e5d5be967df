package poller_test

import (
	"encoding/binary"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
	"golang.org/x/sys/unix"
)

func onlineCPUs(t testing.TB) []int {
	t.Helper()
	cpus, err := sysfs.New("").OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	return cpus
}

func startGroup(t testing.TB, cfg poller.Config) *poller.Group {
	t.Helper()
	g, err := poller.NewGroup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return g
}

func TestGroupPinsReactors(t *testing.T) {
	cpus := onlineCPUs(t)
	before := runtime.GOMAXPROCS(0)
	g, err := poller.NewGroup(poller.Config{CPUs: cpus, Idle: poller.IdlePolicy{Mode: poller.IdleAdaptive}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got < len(cpus)+2 {
		t.Errorf("GOMAXPROCS %d while %d reactors run, want at least %d", got, len(cpus), len(cpus)+2)
	}
	for i, p := range g.Pins() {
		if p.Reactor != i || p.CPU != cpus[i] || p.Observed != cpus[i] || p.TID <= 0 {
			t.Errorf("pin %d = %+v, want reactor %d on CPU %d", i, p, i, cpus[i])
		}
	}
	// Each reactor reports the CPU it runs on from inside a message.
	for i := range g.Len() {
		var where int
		if err := g.Call(i, 10*time.Second, func(r *poller.Reactor) { where = observedCPU(t) }); err != nil {
			t.Fatal(err)
		}
		if where != cpus[i] {
			t.Errorf("reactor %d runs on CPU %d, want %d", i, where, cpus[i])
		}
	}
	g.Stop()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after Stop, want %d restored", got, before)
	}
	if err := g.Start(); err == nil {
		t.Error("a stopped group started again")
	}
}

func TestGroupRejectsBadConfig(t *testing.T) {
	if _, err := poller.NewGroup(poller.Config{}); err == nil {
		t.Error("group with no CPUs accepted")
	}
	if _, err := poller.NewGroup(poller.Config{CPUs: []int{0, 0}}); err == nil {
		t.Error("group with a CPU twice accepted")
	}
}

func TestGroupPinFailureStopsEverything(t *testing.T) {
	// CPU 4095 exists on no machine this runs on; pinning fails and Start
	// reports it after stopping the reactor that did pin.
	cpus := []int{onlineCPUs(t)[0], 4095}
	g, err := poller.NewGroup(poller.Config{CPUs: cpus})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Start()
	if err == nil {
		g.Stop()
		t.Fatal("pinning to CPU 4095 succeeded")
	}
	t.Logf("expected error: %v", err)
}

// Messages between running reactors, across threads, arrive exactly once.
func TestGroupPingPong(t *testing.T) {
	cpus := onlineCPUs(t)
	if len(cpus) < 2 {
		cpus = []int{cpus[0]}
	}
	g := startGroup(t, poller.Config{CPUs: cpus, Idle: poller.IdlePolicy{Mode: poller.IdleAdaptive}})
	a, b := g.Reactor(0), g.Reactor(g.Len()-1)
	const rounds = 2000
	var pongs atomic.Int64
	done := make(chan struct{})
	var ping, pong func(any)
	ping = func(any) { // runs on b
		for !a.Send(pong, nil) {
		}
	}
	pong = func(any) { // runs on a
		if pongs.Add(1) == rounds {
			close(done)
			return
		}
		for !b.Send(ping, nil) {
		}
	}
	b.Send(ping, nil)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of %d round trips in 30s", pongs.Load(), rounds)
	}
	stats, err := g.Stats(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var msgs uint64
	for _, s := range stats {
		msgs += s.Messages
	}
	// rounds pongs + rounds pings, plus the Stats requests themselves on
	// reactors whose snapshot came after their own stats message ran.
	if msgs < 2*rounds {
		t.Errorf("reactors counted %d messages, want at least %d", msgs, 2*rounds)
	}
}

// Under the adaptive policy an idle reactor sleeps, and a message wakes it
// long before MaxSleep runs out.
func TestAdaptiveSleepsAndWakes(t *testing.T) {
	cpu := onlineCPUs(t)[0]
	g, err := poller.NewGroup(poller.Config{CPUs: []int{cpu}, Idle: poller.IdlePolicy{
		Mode: poller.IdleAdaptive, SpinFor: 100 * time.Microsecond, MaxSleep: time.Minute,
	}})
	if err != nil {
		t.Fatal(err)
	}
	var polls atomic.Int64
	g.Reactor(0).Register("count", func() poller.Status { polls.Add(1); return poller.Idle })
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	woke := make(chan struct{})
	g.Reactor(0).Send(func(any) { close(woke) }, nil)
	select {
	case <-woke:
	case <-time.After(20 * time.Second):
		t.Fatal("a sleeping reactor did not wake for a message within 20s (MaxSleep is a minute)")
	}
	t.Logf("woke in %v after %d polls", time.Since(start), polls.Load())
	g.Stop()
	s, _ := g.Stats(time.Second)
	if s[0].Sleeps == 0 || s[0].Sleep < 100*time.Millisecond {
		t.Fatalf("idle reactor slept %d times for %v, want at least once for 100ms", s[0].Sleeps, s[0].Sleep)
	}
	if s[0].BusyPercent() > 50 {
		t.Fatalf("an idle reactor reported %.1f%% busy", s[0].BusyPercent())
	}
}

// A sleeping reactor still fires its timers on time: the sleep is bounded by
// the next deadline, not by MaxSleep.
func TestAdaptiveWakesOnTimer(t *testing.T) {
	cpu := onlineCPUs(t)[0]
	g, err := poller.NewGroup(poller.Config{CPUs: []int{cpu}, Idle: poller.IdlePolicy{
		Mode: poller.IdleAdaptive, SpinFor: 50 * time.Microsecond, MaxSleep: time.Minute,
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int64
	g.Reactor(0).RegisterTimer("tick", 5*time.Millisecond, func() poller.Status { ticks.Add(1); return poller.Busy })
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for ticks.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := ticks.Load(); n < 10 {
		t.Fatalf("a sleeping reactor fired its 5ms timer %d times in 20s", n)
	}
}

// A readable wait fd wakes a sleeping reactor: a poller whose source is a file
// descriptor (here an eventfd standing in for a completion channel).
func TestAdaptiveWakesOnWaitFD(t *testing.T) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	g, err := poller.NewGroup(poller.Config{CPUs: onlineCPUs(t)[:1], Idle: poller.IdlePolicy{
		Mode: poller.IdleAdaptive, SpinFor: 50 * time.Microsecond, MaxSleep: time.Minute,
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 1)
	r := g.Reactor(0)
	r.AddWaitFD(efd)
	r.Register("fd", func() poller.Status {
		var b [8]byte
		if n, _ := unix.Read(efd, b[:]); n == 8 {
			got <- binary.NativeEndian.Uint64(b[:])
			return poller.Busy
		}
		return poller.Idle
	})
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	time.Sleep(100 * time.Millisecond) // long past SpinFor: asleep
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 7)
	if _, err := unix.Write(efd, b[:]); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != 7 {
			t.Fatalf("poller read %d, want 7", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a readable wait fd did not wake the reactor within 20s (MaxSleep is a minute)")
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// Sending to a stopped group is harmless (the message never runs), and the
// eventfds of adaptive reactors are closed once the group is garbage, not at
// Stop, when a sender might still write to them.
func TestStoppedGroupReleasesWakers(t *testing.T) {
	cpus := onlineCPUs(t)[:1]
	before := openFDs(t)
	for range 20 {
		// Not startGroup: its t.Cleanup would keep every group reachable.
		g, err := poller.NewGroup(poller.Config{CPUs: cpus, Idle: poller.IdlePolicy{Mode: poller.IdleAdaptive}})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		r := g.Reactor(0)
		g.Stop()
		ran := false
		if !r.Send(func(any) { ran = true }, nil) {
			t.Fatal("send to a stopped reactor refused with an empty inbox")
		}
		r.Wake()
		if ran {
			t.Fatal("a message ran on a stopped reactor")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) > before+2 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := openFDs(t); n > before+2 {
		t.Fatalf("%d fds open after 20 dropped adaptive groups, %d before: eventfds leak", n, before)
	}
}
