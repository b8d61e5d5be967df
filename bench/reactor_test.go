package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
)

func TestRunReactor(t *testing.T) {
	cpus, err := sysfs.New("").OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunReactor(ReactorConfig{
		CPUs: cpus, Duration: 100 * time.Millisecond, Batches: []int{1, 8},
		// Adaptive keeps a 2-CPU test machine usable while this runs.
		Idle: poller.IdlePolicy{Mode: poller.IdleAdaptive},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rings) != 2 || rep.Rings[0].Batch != 1 || rep.Rings[1].Batch != 8 {
		t.Fatalf("ring phases %+v, want batches 1 and 8", rep.Rings)
	}
	for _, r := range rep.Rings {
		if r.Items == 0 || r.ItemsPerSec <= 0 || r.NsPerItem <= 0 {
			t.Errorf("ring phase %+v moved nothing", r)
		}
	}
	l := rep.RoundTrip
	if l.Count == 0 || rep.RTPerSec <= 0 {
		t.Fatalf("no round trips: %+v", l)
	}
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.P9999 && l.P9999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
	if len(rep.Reactors) != min(2, len(cpus)) || len(rep.Stats) != len(rep.Reactors) {
		t.Errorf("reactors %+v stats %d", rep.Reactors, len(rep.Stats))
	}
	var msgs uint64
	for _, s := range rep.Stats {
		msgs += s.Messages
	}
	if msgs < uint64(2*l.Count) {
		t.Errorf("reactors counted %d messages for %d round trips", msgs, l.Count)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ring transfer", "message round trip", "50.00th=[", "99.99th=[", "busy%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunReactorRejectsBadConfig(t *testing.T) {
	if _, err := RunReactor(ReactorConfig{}); err == nil {
		t.Error("no CPUs accepted")
	}
	if _, err := RunReactor(ReactorConfig{CPUs: []int{0}, Batches: []int{0}}); err == nil {
		t.Error("batch 0 accepted")
	}
}

func TestLatencyOf(t *testing.T) {
	h := hdrhistogram.New(1, 1e9, 3)
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 1000)
	}
	l := LatencyOf(h)
	// HdrHistogram with 3 significant digits: values within 0.1 %.
	near := func(got, want int64) bool { return got >= want*999/1000 && got <= want*1001/1000 }
	if l.Count != 1000 || !near(l.P50, 500_000) || !near(l.P99, 990_000) || !near(l.Max, 1_000_000) || l.Min != 1000 {
		t.Fatalf("latency %+v", l)
	}
}
