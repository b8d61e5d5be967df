package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
)

func firstCPU(t testing.TB) []int {
	t.Helper()
	cpus, err := sysfs.New("").OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	return cpus[:1]
}

// baseConfig is a small, fast workload on the first online CPU. Adaptive
// idling keeps a 2-CPU test machine usable while reactors run.
func baseConfig(t testing.TB) IOConfig {
	return IOConfig{
		RW: RWRandRead, MixRead: 50, BlockSize: 4096, SizeBytes: 64 << 20,
		IODepth: 8, Jobs: 1, CPUs: firstCPU(t), IOs: 2000,
		Idle: poller.IdlePolicy{Mode: poller.IdleAdaptive}, Pages: hugemem.PagesSmall,
	}
}

func run(t *testing.T, dev ioengine.Device, cfg IOConfig) *IOReport {
	t.Helper()
	rep, err := RunIO(dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func checkOrdered(t *testing.T, what string, l LatNs) {
	t.Helper()
	vals := append([]int64{l.Min}, l.Values()...)
	vals = append(vals, l.Max)
	if !slices.IsSorted(vals) || l.Max <= 0 {
		t.Errorf("%s: latency not ordered min ≤ p1 ≤ … ≤ p99.99 ≤ max: %+v", what, l)
	}
	if l.Mean < float64(l.Min) || l.Mean > float64(l.Max) {
		t.Errorf("%s: mean %v outside [%d, %d]", what, l.Mean, l.Min, l.Max)
	}
}

func TestRunIOExactCount(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Jobs, cfg.IOs = 3, 3000
	// Two reactors when the machine has two CPUs: jobs 0 and 2 share one.
	if cpus, _ := sysfs.New("").OnlineCPUs(); len(cpus) > 1 {
		cfg.CPUs = cpus[:2]
	}
	dev := newFakeNull(64 << 20)
	rep := run(t, dev, cfg)
	if got := dev.queues.Load(); got != 3 {
		t.Errorf("%d queues made, want one per job", got)
	}
	if rep.Total.IOs != 9000 || rep.Total.Errors != 0 || rep.Total.Bytes != 9000*4096 {
		t.Fatalf("total ios=%d errors=%d bytes=%d, want 9000, 0, %d", rep.Total.IOs, rep.Total.Errors, rep.Total.Bytes, 9000*4096)
	}
	if rep.Total.Read == nil || rep.Total.Read.IOs != 9000 || rep.Total.Write != nil {
		t.Errorf("randread split read=%+v write=%+v", rep.Total.Read, rep.Total.Write)
	}
	if h := rep.Histogram(); h.TotalCount() != 9000 {
		t.Errorf("merged histogram holds %d values, want 9000", h.TotalCount())
	}
	checkOrdered(t, "total", rep.Total.Lat)
	if rep.Total.IOPS <= 0 || rep.Total.BWBytes <= 0 || rep.Total.RuntimeNs <= 0 {
		t.Errorf("rates %+v", rep.Total.DirStats)
	}
	if len(rep.Jobs) != 3 {
		t.Fatalf("%d jobs reported", len(rep.Jobs))
	}
	var sum uint64
	for i, j := range rep.Jobs {
		if j.Job != i || j.IOs != 3000 || j.Errors != 0 {
			t.Errorf("job %d: id %d ios %d errors %d", i, j.Job, j.IOs, j.Errors)
		}
		if want := i % len(cfg.CPUs); j.Reactor != want || j.CPU != cfg.CPUs[want] {
			t.Errorf("job %d on reactor %d cpu %d, want round-robin reactor %d", i, j.Reactor, j.CPU, want)
		}
		checkOrdered(t, "job", j.Lat)
		sum += j.IOs
	}
	if len(rep.CPU) != len(cfg.CPUs) {
		t.Errorf("%d reactors reported for %d CPUs", len(rep.CPU), len(cfg.CPUs))
	}
	var coreIOs uint64
	for _, c := range rep.CPU {
		coreIOs += c.IOs
		if c.BusyPct < 0 || c.BusyPct > 100 {
			t.Errorf("reactor %d busy %v%%", c.Reactor, c.BusyPct)
		}
	}
	if coreIOs != sum {
		t.Errorf("reactors counted %d I/Os, jobs %d", coreIOs, sum)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"read: IOPS=", "clat percentiles (usec):", " 1.00th=[", "99.99th=[", "all jobs (3)", "reactor 0", "errors       : none", "ns of CPU per I/O"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
	if testing.Verbose() {
		t.Log("\n" + out.String())
	}
}

func TestRunIOMixRatio(t *testing.T) {
	for _, rw := range []RW{RWRandRW, RWMixed} {
		cfg := baseConfig(t)
		cfg.RW, cfg.MixRead, cfg.IOs = rw, 70, 20000
		rep := run(t, newFakeNull(64<<20), cfg)
		tot := rep.Total
		if tot.Read == nil || tot.Write == nil {
			t.Fatalf("%v: no read/write split", rw)
		}
		if tot.Read.IOs+tot.Write.IOs != 20000 || tot.IOs != 20000 {
			t.Fatalf("%v: read %d + write %d != 20000", rw, tot.Read.IOs, tot.Write.IOs)
		}
		// Binomial: σ of the share is sqrt(.7·.3/20000) ≈ 0.003.
		if share := float64(tot.Read.IOs) / 20000; math.Abs(share-0.7) > 0.02 {
			t.Errorf("%v: read share %.3f, want 0.70 ± 0.02", rw, share)
		}
		checkOrdered(t, "read", tot.Read.Lat)
		checkOrdered(t, "write", tot.Write.Lat)
		if got := rep.DirHistogram(false).TotalCount() + rep.DirHistogram(true).TotalCount(); got != 20000 {
			t.Errorf("%v: direction histograms hold %d", rw, got)
		}
	}
}

func TestRunIOSequentialWraps(t *testing.T) {
	cfg := baseConfig(t)
	cfg.RW, cfg.SizeBytes, cfg.IOs, cfg.IODepth = RWRead, 16*4096, 100, 4
	var offs [16]int
	dev := newFakeNull(1 << 20) // larger than --size: size wins
	dev.fail = func(r *ioengine.Request) (syscall.Errno, int64) {
		offs[r.Offset/4096]++ // one reactor, one job: no race
		return 0, -1
	}
	rep := run(t, dev, cfg)
	if rep.Total.IOs != 100 {
		t.Fatalf("ios %d", rep.Total.IOs)
	}
	// Every block of the 16 is read 6 or 7 times (ramp-free, one job).
	for b, n := range offs {
		if n < 6 || n > 7 {
			t.Errorf("block %d read %d times, want 6 or 7: %v", b, n, offs)
		}
	}
}

func TestRunIORuntimeAndRamp(t *testing.T) {
	cfg := baseConfig(t)
	cfg.IOs, cfg.Runtime, cfg.Ramp = 0, 200*time.Millisecond, 100*time.Millisecond
	cfg.SampleEvery = 50 * time.Millisecond
	start := time.Now()
	rep := run(t, newFakeNull(64<<20), cfg)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("run took %v, want ramp + runtime at least", took)
	}
	rt := time.Duration(rep.Total.RuntimeNs)
	if rt < 190*time.Millisecond || rt > 2*time.Second {
		t.Errorf("measured runtime %v, want about 200ms", rt)
	}
	if rep.Total.IOs == 0 || rep.Total.Errors != 0 {
		t.Errorf("ios %d errors %d", rep.Total.IOs, rep.Total.Errors)
	}
	if len(rep.Samples) < 2 {
		t.Errorf("%d samples over 200ms at 50ms", len(rep.Samples))
	}
	// A busy reactor for 200ms: the process spent CPU on every I/O.
	if rep.Total.CPUNsPerIO <= 0 || rep.Total.CPUUsrPct+rep.Total.CPUSysPct <= 0 {
		t.Errorf("cpu_ns_per_io %v, usr %v%%, sys %v%%", rep.Total.CPUNsPerIO, rep.Total.CPUUsrPct, rep.Total.CPUSysPct)
	}
	for _, s := range rep.Samples {
		if s.T <= 0 || s.T > 5 {
			t.Errorf("sample at %vs outside the measured window", s.T)
		}
	}
}

func TestRunIOCountsErrors(t *testing.T) {
	cfg := baseConfig(t)
	cfg.IOs = 1000
	n := 0
	dev := newFakeNull(64 << 20)
	dev.fail = func(r *ioengine.Request) (syscall.Errno, int64) {
		n++
		switch n % 10 {
		case 3:
			return syscall.EIO, 0
		case 7:
			return 0, 512 // short
		}
		return 0, -1
	}
	rep := run(t, dev, cfg)
	tot := rep.Total
	if tot.IOs != 1000 {
		t.Fatalf("ios %d", tot.IOs)
	}
	eio := tot.ErrorsByErrno["EIO"]
	if eio < 90 || eio > 110 || tot.Short < 90 || tot.Short > 110 || tot.Errors != eio+tot.Short {
		t.Errorf("errors %d (EIO %d, short %d), want about 100 each", tot.Errors, eio, tot.Short)
	}
	var out bytes.Buffer
	_ = rep.WriteText(&out)
	if !strings.Contains(out.String(), "EIO=") || !strings.Contains(out.String(), "short=") {
		t.Errorf("text does not break errors down:\n%s", out.String())
	}
}

func TestVerifyCatchesCorruption(t *testing.T) {
	const bad = 7 * 4096 // the block whose reads come back with a flipped byte
	cfg := baseConfig(t)
	cfg.RW, cfg.SizeBytes, cfg.IODepth, cfg.IOs = RWRandRW, 64*4096, 4, 3000
	cfg.Verify, cfg.VerifyPrefill, cfg.VerifyKeep = true, true, 4
	dev := newFakeMem(64 * 4096)
	dev.corrupt = func(off int64, buf []byte) {
		if off == bad {
			buf[1000] ^= 0x40
		}
	}
	rep := run(t, dev, cfg)
	v := rep.Verify
	if v == nil || v.Checked == 0 || v.Mismatches == 0 {
		t.Fatalf("verify %+v: want checks and mismatches", v)
	}
	if len(v.First) == 0 || len(v.First) > 4 {
		t.Fatalf("kept %d mismatches, want 1 to 4", len(v.First))
	}
	for _, m := range v.First {
		if m.Offset != bad || m.LBA != bad/512 || m.Field != "crc" || m.Expected == m.Found {
			t.Errorf("mismatch %+v, want a crc mismatch at offset %d (LBA %d)", m, bad, bad/512)
		}
	}
	var out bytes.Buffer
	_ = rep.WriteText(&out)
	if !strings.Contains(out.String(), "mismatches") || !strings.Contains(out.String(), "lba 56") {
		t.Errorf("text does not report the mismatch:\n%s", out.String())
	}

	// The same run on an honest device finds nothing.
	dev = newFakeMem(64 * 4096)
	rep = run(t, dev, cfg)
	if v := rep.Verify; v.Checked == 0 || v.Mismatches != 0 {
		t.Errorf("clean device: %+v", v)
	}
}

func TestVerifyLostWriteAndReadback(t *testing.T) {
	// A write-only workload is read back after the run. One block's writes
	// are dropped on the floor: its reads show a stale generation or none.
	cfg := baseConfig(t)
	cfg.RW, cfg.SizeBytes, cfg.IODepth, cfg.IOs, cfg.Jobs = RWWrite, 32*4096, 4, 64, 2
	cfg.Verify = true
	dev := newFakeMem(32 * 4096)
	lost := 0
	dev.fail = func(r *ioengine.Request) (syscall.Errno, int64) {
		if r.Op == ioengine.OpWrite && r.Offset == 20*4096 && lost > 0 {
			return 0, int64(len(r.Buf)) // claims success, writes nothing
		}
		if r.Op == ioengine.OpWrite && r.Offset == 20*4096 {
			lost++
		}
		return 0, -1
	}
	rep := run(t, dev, cfg)
	v := rep.Verify
	// 2 jobs × 16 blocks each, every one written (64 sequential writes
	// over 16 blocks) and read back once.
	if v.Checked != 32 {
		t.Errorf("checked %d blocks, want 32", v.Checked)
	}
	if v.Mismatches != 1 || len(v.First) != 1 || v.First[0].Field != "generation" || v.First[0].Job != 1 {
		t.Errorf("mismatches %+v, want one stale generation in job 1", v)
	}
	if rep.Total.IOs != 128 {
		t.Errorf("readback counted: ios %d, want 128", rep.Total.IOs)
	}
}

func TestJSONFieldNames(t *testing.T) {
	cfg := baseConfig(t)
	cfg.RW, cfg.IOs = RWRandRW, 500
	rep := run(t, newFakeNull(64<<20), cfg)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (any, bool) {
		var cur any = m
		for _, k := range strings.Split(path, ".") {
			switch c := cur.(type) {
			case map[string]any:
				v, ok := c[k]
				if !ok {
					return nil, false
				}
				cur = v
			case []any:
				if len(c) == 0 {
					return nil, false
				}
				cur = c[0].(map[string]any)[k]
				if cur == nil {
					return nil, false
				}
			default:
				return nil, false
			}
		}
		return cur, true
	}
	paths := []string{
		"total.iops", "total.bw_bytes", "total.ios", "total.bytes", "total.runtime_ns", "total.errors",
		"total.errors_by_errno", "total.short", "total.cpu_ns_per_io", "total.cpu_usr_pct", "total.cpu_sys_pct",
		"total.read.iops", "total.read.lat_ns.p99", "total.write.bw_bytes", "total.write.lat_ns.p50",
		"jobs.job", "jobs.reactor", "jobs.cpu", "jobs.iops", "jobs.bw_bytes", "jobs.lat_ns.p999", "jobs.errors",
		"cpu.reactor", "cpu.cpu", "cpu.busy_pct",
		"env.cpu_model", "env.logical_cpus", "env.kernel", "env.go_version", "env.engine.name", "env.engine.options",
		"options.rw", "options.bs", "options.iodepth", "options.jobs", "options.rwmixread", "options.size_bytes",
		"options.runtime_ns", "options.ios", "options.direct", "options.verify", "options.idle", "samples",
	}
	for _, p := range []string{"min", "mean", "max", "stddev", "p1", "p5", "p10", "p20", "p30", "p40", "p50",
		"p60", "p70", "p80", "p90", "p95", "p99", "p995", "p999", "p9995", "p9999"} {
		paths = append(paths, "total.lat_ns."+p)
	}
	for _, p := range paths {
		if _, ok := get(p); !ok {
			t.Errorf("JSON lacks %s", p)
		}
	}
	if v, _ := get("total.errors"); v != float64(0) {
		t.Errorf("total.errors = %v, want the number 0", v)
	}
}

func TestHistLogParsesBack(t *testing.T) {
	cfg := baseConfig(t)
	cfg.RW, cfg.IOs, cfg.Runtime = RWRandRW, 0, 350*time.Millisecond
	cfg.SampleEvery = 100 * time.Millisecond
	var log bytes.Buffer
	cfg.HistLog = &log
	rep := run(t, newFakeNull(64<<20), cfg)
	text := log.String()
	for _, want := range []string{"#[Histogram log format version 1.3]", "#[StartTime: ", `"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`, "Tag=read,", "Tag=write,"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	rd := hdrhistogram.NewHistogramLogReader(strings.NewReader(text))
	var untagged, tagged, intervals int64
	lastEnd := -1.0
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		if h.Tag() == "" {
			intervals++
			untagged += h.TotalCount()
			if s := float64(h.StartTimeMs()); s < lastEnd-1 {
				t.Errorf("interval starts at %vms before the last ended (%vms)", s, lastEnd)
			}
			lastEnd = float64(h.EndTimeMs())
		} else {
			tagged += h.TotalCount()
		}
	}
	if intervals < 2 {
		t.Errorf("%d intervals over 350ms at 100ms", intervals)
	}
	if untagged != int64(rep.Total.IOs) || tagged != untagged {
		t.Errorf("log holds %d untagged and %d tagged values, the run %d I/Os", untagged, tagged, rep.Total.IOs)
	}
	if rep.Histogram().TotalCount() != int64(rep.Total.IOs) {
		t.Errorf("swapped intervals lost values: histogram %d, ios %d", rep.Histogram().TotalCount(), rep.Total.IOs)
	}
}

func TestPlot(t *testing.T) {
	cfg := baseConfig(t)
	cfg.RW, cfg.IOs, cfg.Runtime = RWRandRW, 0, 150*time.Millisecond
	cfg.SampleEvery = 50 * time.Millisecond
	rep := run(t, newFakeNull(64<<20), cfg)
	for _, tc := range []struct {
		name, magic string
	}{{"x.svg", "<svg"}, {"x.PNG", "\x89PNG\r\n\x1a\n"}} {
		format, err := PlotFormat(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := rep.WritePlot(&b, format); err != nil {
			t.Fatal(err)
		}
		head := b.String()
		if i := strings.Index(head, "<svg"); format == "svg" && i >= 0 {
			head = head[i:] // after the XML declaration
		}
		if !strings.HasPrefix(head, tc.magic) || b.Len() < 1000 {
			t.Errorf("%s: %d bytes starting %q", tc.name, b.Len(), b.String()[:min(b.Len(), 16)])
		}
	}
	if _, err := PlotFormat("x.pdf"); err == nil {
		t.Error("a .pdf plot accepted")
	}
}

func TestCheckRejects(t *testing.T) {
	info := ioengine.Info{Engine: "mem", SizeBytes: 1 << 20, BlockSize: 512}
	cases := []struct {
		name string
		mod  func(*IOConfig)
		info func(*ioengine.Info)
		want string
	}{
		{"bs not a multiple of 512 with direct", func(c *IOConfig) { c.BlockSize, c.Direct = 1000, true }, nil, "multiple of 512"},
		{"bs not a multiple of the logical block", func(c *IOConfig) { c.BlockSize, c.Direct = 1024, true }, func(i *ioengine.Info) { i.BlockSize = 4096 }, "logical block"},
		{"size smaller than bs", func(c *IOConfig) { c.SizeBytes = 2048 }, nil, "smaller than --bs"},
		{"device smaller than bs", nil, func(i *ioengine.Info) { i.SizeBytes = 1024 }, "smaller than --bs"},
		{"bad rw", func(c *IOConfig) { c.RW = RW(42) }, nil, "rw"},
		{"rwmixread above 100", func(c *IOConfig) { c.MixRead = 101 }, nil, "rwmixread"},
		{"rwmixread negative", func(c *IOConfig) { c.MixRead = -1 }, nil, "rwmixread"},
		{"zero iodepth", func(c *IOConfig) { c.IODepth = 0 }, nil, "iodepth"},
		{"zero jobs", func(c *IOConfig) { c.Jobs = 0 }, nil, "jobs"},
		{"no CPUs", func(c *IOConfig) { c.CPUs = nil }, nil, "CPUs"},
		{"negative runtime", func(c *IOConfig) { c.Runtime = -time.Second }, nil, "runtime"},
		{"verify on null", func(c *IOConfig) { c.Verify = true }, func(i *ioengine.Info) { i.Engine = "null" }, "null engine"},
		{"prefill without verify", func(c *IOConfig) { c.VerifyPrefill = true }, nil, "--verify-prefill"},
		{"verify region too small for the depth", func(c *IOConfig) { c.Verify, c.SizeBytes, c.IODepth = true, 8*4096, 8 }, nil, "more blocks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			in := info
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			if tc.info != nil {
				tc.info(&in)
			}
			_, err := cfg.Check(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check = %v, want an error about %q", err, tc.want)
			}
		})
	}
	cfg := baseConfig(t)
	cfg.BlockSize, cfg.Direct = 1000, false // buffered I/O takes any size
	if g, err := cfg.Check(info); err != nil || g.blocks != (1<<20)/1000 {
		t.Errorf("buffered bs 1000: %v, %d blocks", err, g.blocks)
	}
	cfg = baseConfig(t)
	cfg.IOs, cfg.Runtime = 0, 0
	if g, err := cfg.Check(info); err != nil || g.ios != (1<<20)/4096 {
		t.Errorf("no --ios or --runtime: %d I/Os per job (%v), want one pass over the size", g.ios, err)
	}
}

func TestRunIORejectsUnsupported(t *testing.T) {
	cfg := baseConfig(t)
	cfg.RW = RWRandWrite
	dev := &readOnlyDev{newFakeNull(1 << 20)}
	if _, err := RunIO(dev, cfg); err == nil || !strings.Contains(err.Error(), "does not support write") {
		t.Errorf("RunIO = %v, want unsupported write", err)
	}
}

type readOnlyDev struct{ *fakeDev }

func (d *readOnlyDev) Supports(op ioengine.Op) bool { return op == ioengine.OpRead }

func TestParseRW(t *testing.T) {
	for _, s := range []string{"read", "write", "randread", "randwrite", "randrw", "rw"} {
		m, err := ParseRW(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseRW(%q) = %v, %v", s, m, err)
		}
	}
	if m, err := ParseRW("readwrite"); err != nil || m != RWMixed {
		t.Errorf("readwrite = %v, %v", m, err)
	}
	if _, err := ParseRW("trim"); err == nil {
		t.Error("trim accepted")
	}
}

func TestKfmt(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1.00k"}, {12345, "12.3k"}, {123456, "123k"}, {1.5e6, "1.50M"}, {999_600, "1.00M"}} {
		if got := kfmt(tc.v); got != tc.want {
			t.Errorf("kfmt(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// newTestJob makes a job outside any reactor, with a fake queue, ready to
// be polled from the test's goroutine.
func newTestJob(t testing.TB, cfg IOConfig, dev *fakeDev) *job {
	t.Helper()
	geo, err := cfg.Check(dev.Info())
	if err != nil {
		t.Fatal(err)
	}
	region, err := hugemem.Map(hugemem.RegionConfig{Size: cfg.IODepth * 4096 * 2, Pages: hugemem.PagesSmall, Node: -1})
	if err != nil {
		t.Fatal(err)
	}
	pools, err := region.Split(4096, cfg.IODepth, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRunConfig(&cfg, geo)
	rc.ios = 0 // unlimited: the test polls as long as it likes
	j := newJob(0, 0, 0, rc, &control{}, pools[0], geo, &cfg)
	q, _ := dev.NewQueue(ioengine.QueueConfig{Depth: cfg.IODepth})
	j.q = q
	j.ctl.start.Store(true)
	t.Cleanup(func() {
		for _, b := range j.bufs {
			j.pool.Put(b)
		}
		if err := region.Close(); err != nil && !errors.Is(err, hugemem.ErrInUse) {
			t.Error(err)
		}
	})
	return j
}

// The per-I/O step — prepare, submit, poll, time, record, verify, free —
// allocates nothing.
func TestPollAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range []struct {
		name   string
		rw     RW
		verify bool
	}{{"randread", RWRandRead, false}, {"randrw", RWRandRW, false}, {"write", RWWrite, false}, {"randrw verify", RWRandRW, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.RW, cfg.Verify, cfg.IOs, cfg.SizeBytes = tc.rw, tc.verify, 0, 1<<20
			dev := newFakeNull(1 << 20)
			if tc.verify {
				dev = newFakeMem(1 << 20)
			}
			j := newTestJob(t, cfg, dev)
			checkPollAllocs(t, j, cfg.IODepth)
			if tc.verify && (j.v.checked == 0 || j.v.mismatches != 0) {
				t.Errorf("verify checked %d, mismatches %d", j.v.checked, j.v.mismatches)
			}
		})
	}
}

func BenchmarkPoll(b *testing.B) {
	cfg := baseConfig(b)
	cfg.IOs, cfg.IODepth = 0, 32
	j := newTestJob(b, cfg, newFakeNull(64<<20))
	j.poll()
	j.begin(poller.Monotonic())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		j.poll()
	}
	ios := j.cnt[dirRead].ios
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ios), "ns/io")
}

// checkPollAllocs warms j up and checks its poll allocates nothing while
// keeping depth I/Os in flight every poll.
func checkPollAllocs(t *testing.T, j *job, depth int) {
	t.Helper()
	j.poll() // leave phaseWait
	j.begin(poller.Monotonic())
	for range 100 {
		j.poll()
	}
	before := j.cnt[dirRead].ios + j.cnt[dirWrite].ios
	allocs := testing.AllocsPerRun(1000, func() { j.poll() })
	after := j.cnt[dirRead].ios + j.cnt[dirWrite].ios
	if allocs != 0 {
		t.Errorf("%v allocations per poll", allocs)
	}
	if after-before < 1000*uint64(depth) {
		t.Errorf("%d I/Os in 1001 polls at depth %d", after-before, depth)
	}
}
