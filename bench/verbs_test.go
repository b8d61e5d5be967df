package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/usrpt/usrpt/verbs"
	"github.com/usrpt/usrpt/verbs/loop"
)

func loopPair() (verbs.Device, verbs.Device, string, error) {
	f := loop.NewFabric()
	c, err := f.NewDevice("c")
	if err != nil {
		return nil, nil, "", err
	}
	s, err := f.NewDevice("s")
	return c, s, "bench-test", err
}

func TestRunVerbs(t *testing.T) {
	rep, err := RunVerbs(VerbsConfig{
		Transport: "loop", Open: loopPair, CPUs: []int{0}, Duration: 100 * time.Millisecond,
		MsgSize: 128, Writes: []int{4096, 65536}, Depth: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RoundTrip.Count == 0 || rep.RTPerSec <= 0 || rep.RoundTrip.P50 <= 0 {
		t.Errorf("round trips: %+v", rep.RoundTrip)
	}
	if len(rep.Writes) != 2 {
		t.Fatalf("%d write phases", len(rep.Writes))
	}
	for _, w := range rep.Writes {
		if w.Ops == 0 || w.BytesSec <= 0 {
			t.Errorf("RDMA WRITE %d: %+v", w.Size, w)
		}
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SEND/RECV round trip, 128-byte", "RDMA WRITE, 8 in flight", "64 KiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunVerbsRejects(t *testing.T) {
	for name, cfg := range map[string]VerbsConfig{
		"no transport":  {CPUs: []int{0}},
		"no CPUs":       {Open: loopPair},
		"huge message":  {Open: loopPair, CPUs: []int{0}, MsgSize: 1 << 20},
		"write too big": {Open: loopPair, CPUs: []int{0}, MsgSize: 64, Writes: []int{1 << 20}, Depth: 16},
	} {
		if _, err := RunVerbs(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
