package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/dustin/go-humanize"
	"github.com/klauspost/cpuid/v2"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
)

// Percentiles are the latency percentiles reported, fio's clat set.
var Percentiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99}

// LatNs is a latency distribution in nanoseconds with fio's percentiles.
// JSON names drop the percentile's dot: p99.9 is p999, p99.95 is p9995.
type LatNs struct {
	Min    int64   `json:"min"`
	Mean   float64 `json:"mean"`
	Max    int64   `json:"max"`
	Stddev float64 `json:"stddev"`
	P1     int64   `json:"p1"`
	P5     int64   `json:"p5"`
	P10    int64   `json:"p10"`
	P20    int64   `json:"p20"`
	P30    int64   `json:"p30"`
	P40    int64   `json:"p40"`
	P50    int64   `json:"p50"`
	P60    int64   `json:"p60"`
	P70    int64   `json:"p70"`
	P80    int64   `json:"p80"`
	P90    int64   `json:"p90"`
	P95    int64   `json:"p95"`
	P99    int64   `json:"p99"`
	P995   int64   `json:"p995"`
	P999   int64   `json:"p999"`
	P9995  int64   `json:"p9995"`
	P9999  int64   `json:"p9999"`
}

// pcts points at the percentile fields in the order of Percentiles.
func (l *LatNs) pcts() []*int64 {
	return []*int64{&l.P1, &l.P5, &l.P10, &l.P20, &l.P30, &l.P40, &l.P50, &l.P60, &l.P70, &l.P80,
		&l.P90, &l.P95, &l.P99, &l.P995, &l.P999, &l.P9995, &l.P9999}
}

// Values are the percentiles in the order of Percentiles.
func (l LatNs) Values() []int64 {
	out := make([]int64, 0, len(Percentiles))
	for _, p := range l.pcts() {
		out = append(out, *p)
	}
	return out
}

// LatNsOf summarises an HdrHistogram of nanoseconds.
func LatNsOf(h *hdrhistogram.Histogram) LatNs {
	var l LatNs
	if h.TotalCount() == 0 {
		return l
	}
	l.Min, l.Mean, l.Max, l.Stddev = h.Min(), h.Mean(), h.Max(), h.StdDev()
	for i, p := range l.pcts() {
		*p = h.ValueAtQuantile(Percentiles[i])
	}
	return l
}

// DirStats are the results of one direction, or of both.
type DirStats struct {
	IOs     uint64  `json:"ios"`
	Bytes   uint64  `json:"bytes"`
	IOPS    float64 `json:"iops"`
	BWBytes float64 `json:"bw_bytes"` // bytes per second
	Lat     LatNs   `json:"lat_ns"`   // completion minus submission
	Errors  uint64  `json:"errors"`   // failed with an errno, or short
	Short   uint64  `json:"short"`    // completed with fewer bytes than asked
}

// IOStats are a job's or the whole run's results: both directions together,
// and each direction the workload has.
type IOStats struct {
	DirStats
	RuntimeNs     int64             `json:"runtime_ns"`
	ErrorsByErrno map[string]uint64 `json:"errors_by_errno"`
	LatOverRange  uint64            `json:"lat_over_range,omitempty"` // latencies above 60 s, recorded as 60 s
	Read          *DirStats         `json:"read,omitempty"`
	Write         *DirStats         `json:"write,omitempty"`
}

// TotalStats are the whole run's results with the process's CPU cost over
// the measured window (getrusage before and after).
type TotalStats struct {
	IOStats
	CPUNsPerIO float64 `json:"cpu_ns_per_io"` // user + system CPU time per I/O
	CPUUsrPct  float64 `json:"cpu_usr_pct"`   // of one CPU, over the window
	CPUSysPct  float64 `json:"cpu_sys_pct"`
}

// JobStats are one job's results.
type JobStats struct {
	Job     int `json:"job"`
	Reactor int `json:"reactor"`
	CPU     int `json:"cpu"`
	IOStats
	Verify *VerifyStats `json:"verify,omitempty"`
}

// CoreStats are one reactor's share of the run: how busy its pollers were
// over the measured window (poller accounting), and its jobs' latency.
type CoreStats struct {
	Reactor int     `json:"reactor"`
	CPU     int     `json:"cpu"`
	BusyPct float64 `json:"busy_pct"`
	SleepNs int64   `json:"sleep_ns"`
	Jobs    []int   `json:"jobs"`
	IOs     uint64  `json:"ios"`
	Lat     LatNs   `json:"lat_ns"`
}

// VerifyStats are what verification found.
type VerifyStats struct {
	Checked    uint64     `json:"checked"`
	Mismatches uint64     `json:"mismatches"`
	First      []Mismatch `json:"first"`
}

// Sample is one interval of the IOPS-over-time series.
type Sample struct {
	T         float64 `json:"t_s"` // end of the interval, seconds into the measured window
	IOPS      float64 `json:"iops"`
	ReadIOPS  float64 `json:"read_iops"`
	WriteIOPS float64 `json:"write_iops"`
	BWBytes   float64 `json:"bw_bytes"`
}

// Options echo the run's configuration.
type Options struct {
	Engine string `json:"engine"`
	// Layer is what the I/O went through: "engine" (the engine queue
	// itself) or "scsi" (a CDB per I/O on the SCSI target core).
	Layer string `json:"layer"`
	// SCSIBlockSize is the LU's logical block size and SCSIWriteCache its
	// WCE (false: write-through, every WRITE with FUA), with layer scsi.
	SCSIBlockSize  int    `json:"scsi_block_size,omitempty"`
	SCSIWriteCache bool   `json:"scsi_wce"`
	FUA            bool   `json:"fua"`
	Filename       string `json:"filename"`
	SizeBytes      int64  `json:"size_bytes"`
	RW             string `json:"rw"`
	RWMixRead      int    `json:"rwmixread"`
	BS             int    `json:"bs"`
	IODepth        int    `json:"iodepth"`
	Jobs           int    `json:"jobs"`
	Cores          string `json:"cores"`
	CPUs           []int  `json:"cpus"`
	RuntimeNs      int64  `json:"runtime_ns"`
	IOs            uint64 `json:"ios"`
	RampNs         int64  `json:"ramp_ns"`
	Direct         bool   `json:"direct"`
	Verify         bool   `json:"verify"`
	VerifyPrefill  bool   `json:"verify_prefill"`
	Idle           string `json:"idle"`
	Seed           uint64 `json:"seed"`
	// Target is "loop" when the I/O went to an in-process SRP target
	// (layer srp), whose reactors ran on TargetCPUs.
	Target      string `json:"target,omitempty"`
	TargetCores string `json:"target_cores,omitempty"`
	TargetCPUs  []int  `json:"target_cpus,omitempty"`
}

// TargetStats are the in-process SRP target's reactors over the measured
// window (layer srp): how busy each was, and the busy time per I/O, which
// is the target's CPU cost of a command when its reactors spin.
type TargetStats struct {
	Reactors    []CoreStats `json:"reactors"`
	BusyNsPerIO float64     `json:"busy_ns_per_io"`
}

// IOReport is a block I/O benchmark's result.
type IOReport struct {
	Options Options      `json:"options"`
	Env     Env          `json:"env"`
	Total   TotalStats   `json:"total"`
	Jobs    []JobStats   `json:"jobs"`
	CPU     []CoreStats  `json:"cpu"`
	Target  *TargetStats `json:"target,omitempty"`
	Verify  *VerifyStats `json:"verify,omitempty"`
	Samples []Sample     `json:"samples"`
	// Interrupted: the run was cut short (SIGINT); the numbers cover
	// the window up to then.
	Interrupted bool `json:"interrupted,omitempty"`

	// The merged histograms of the measured window (read, write, both),
	// for plots.
	hist [numDirs + 1]*hdrhistogram.Histogram
}

// Histogram is the merged latency histogram of the measured window in
// nanoseconds, all I/O of every job; nil for a report read back from JSON.
func (r *IOReport) Histogram() *hdrhistogram.Histogram { return r.hist[numDirs] }

// DirHistogram is Histogram for reads only (write false) or writes only.
func (r *IOReport) DirHistogram(write bool) *hdrhistogram.Histogram {
	if write {
		return r.hist[dirWrite]
	}
	return r.hist[dirRead]
}

func (r *runner) options() Options {
	o := Options{
		Engine: r.cfg.EngineAsked, Layer: r.cfg.Layer.String(), SCSIWriteCache: r.cfg.SCSIWriteCache, FUA: r.cfg.FUA, Filename: r.info.Path, SizeBytes: r.geo.sizeBytes,
		RW: r.cfg.RW.String(), RWMixRead: r.cfg.MixRead, BS: r.cfg.BlockSize, IODepth: r.cfg.IODepth,
		Jobs: r.cfg.Jobs, Cores: r.cfg.CoreMask, CPUs: r.cpus,
		RuntimeNs: int64(r.cfg.Runtime), IOs: r.geo.ios, RampNs: int64(r.cfg.Ramp),
		Direct: r.cfg.Direct, Verify: r.cfg.Verify, VerifyPrefill: r.cfg.VerifyPrefill,
		Idle: r.cfg.Idle.Mode.String(), Seed: r.cfg.Seed,
	}
	if r.tgt != nil {
		o.SCSIBlockSize = r.tgt.lu.BlockSize()
	}
	if r.srp != nil {
		o.SCSIBlockSize = r.srp.lu.BlockSize()
		o.Target, o.TargetCores, o.TargetCPUs = "loop", r.cfg.TargetCoreMask, r.cfg.TargetCPUs
	}
	return o
}

// report builds the report once the reactors have stopped. Totals come from
// merged histograms and summed counters, never from averaged percentiles.
func (r *runner) report(pins []poller.Pin) *IOReport {
	rep := &IOReport{Options: r.options(), Env: r.env(pins), Samples: r.samples, Interrupted: r.wasInterrupted}
	if rep.Options.Engine == "" {
		rep.Options.Engine = r.info.Engine
	}
	if rep.Samples == nil {
		rep.Samples = []Sample{}
	}
	var (
		tot      [numDirs]*hdrhistogram.Histogram
		totCnt   [numDirs]dirCounts
		totErrno [errnoSlots]uint64
		clamped  uint64
		start    = int64(1<<63 - 1)
		end      int64
		ver      VerifyStats
	)
	for d := range tot {
		tot[d] = newHist()
	}
	empty := newHist()
	window := make([][numDirs]*hdrhistogram.Histogram, len(r.jobs)) // per job: the whole measured window
	for k, j := range r.jobs {
		for d, h := range j.lat {
			switch {
			case h == nil:
				h = empty
			case j.cum[d] != nil:
				j.cum[d].Merge(h)
				h = j.cum[d]
			}
			window[k][d] = h
			tot[d].Merge(h)
			totCnt[d].add(j.cnt[d])
		}
		for e, n := range j.errnos {
			totErrno[e] += n
		}
		clamped += j.latClamped
		start, end = min(start, j.startNs), max(end, j.endNs)
		js := JobStats{Job: j.id, Reactor: j.reactor, CPU: j.cpu,
			IOStats: r.ioStats(window[k], j.cnt, &j.errnos, j.endNs-j.startNs, j.latClamped, nil)}
		if r.cfg.Verify {
			v := &VerifyStats{Checked: j.v.checked, Mismatches: j.v.mismatches, First: j.v.first}
			js.Verify = v
			ver.Checked += v.Checked
			ver.Mismatches += v.Mismatches
			ver.First = append(ver.First, v.First...)
		}
		rep.Jobs = append(rep.Jobs, js)
	}
	if r.cfg.Verify {
		if len(ver.First) > r.cfg.VerifyKeep {
			ver.First = ver.First[:r.cfg.VerifyKeep]
		}
		if ver.First == nil {
			ver.First = []Mismatch{}
		}
		rep.Verify = &ver
	}
	rep.Total.IOStats = r.ioStats(tot, totCnt, &totErrno, end-start, clamped, &rep.hist)

	if ios := rep.Total.IOs; ios > 0 {
		rep.Total.CPUNsPerIO = float64(r.ru1.total()-r.ru0.total()) / float64(ios)
	}
	if w := r.endWall.Sub(r.startWall); w > 0 {
		rep.Total.CPUUsrPct = 100 * float64(r.ru1.utime-r.ru0.utime) / float64(w)
		rep.Total.CPUSysPct = 100 * float64(r.ru1.stime-r.ru0.stime) / float64(w)
	}

	for i, cpu := range r.cpus {
		c := CoreStats{Reactor: i, CPU: cpu, Jobs: []int{}}
		if i < len(r.stats0) && i < len(r.stats1) {
			a, b := r.stats0[i], r.stats1[i]
			d := poller.ReactorStats{Busy: b.Busy - a.Busy, Idle: b.Idle - a.Idle, Sleep: b.Sleep - a.Sleep}
			c.BusyPct = d.BusyPercent()
			c.SleepNs = int64(d.Sleep)
		}
		h := newHist()
		for k, j := range r.jobs {
			if j.reactor == i {
				c.Jobs = append(c.Jobs, j.id)
				for d, jh := range window[k] {
					h.Merge(jh)
					c.IOs += j.cnt[d].ios
				}
			}
		}
		c.Lat = LatNsOf(h)
		rep.CPU = append(rep.CPU, c)
	}
	if r.srp != nil {
		rep.Target = r.targetStats(rep.Total.IOs)
	}
	return rep
}

// targetStats sums the SRP target's reactors over the measured window.
func (r *runner) targetStats(ios uint64) *TargetStats {
	ts := &TargetStats{Reactors: []CoreStats{}}
	var busy time.Duration
	for i := range min(len(r.srp.stats0), len(r.srp.stats1)) {
		a, b := r.srp.stats0[i], r.srp.stats1[i]
		d := poller.ReactorStats{Busy: b.Busy - a.Busy, Idle: b.Idle - a.Idle, Sleep: b.Sleep - a.Sleep}
		busy += d.Busy
		ts.Reactors = append(ts.Reactors, CoreStats{Reactor: i, CPU: b.CPU, BusyPct: d.BusyPercent(), SleepNs: int64(d.Sleep), Jobs: []int{}})
	}
	if ios > 0 {
		ts.BusyNsPerIO = float64(busy) / float64(ios)
	}
	return ts
}

func (c *dirCounts) add(o dirCounts) {
	c.ios += o.ios
	c.bytes += o.bytes
	c.errs += o.errs
	c.short += o.short
}

// ioStats summarises histograms and counters over runtimeNs. keep, when
// set, receives the read, write and merged histograms.
func (r *runner) ioStats(h [numDirs]*hdrhistogram.Histogram, cnt [numDirs]dirCounts, errnos *[errnoSlots]uint64,
	runtimeNs int64, clamped uint64, keep *[numDirs + 1]*hdrhistogram.Histogram) IOStats {
	both := newHist()
	var all dirCounts
	for d := range h {
		both.Merge(h[d])
		all.add(cnt[d])
	}
	s := IOStats{
		DirStats:      dirStats(both, all, runtimeNs),
		RuntimeNs:     runtimeNs,
		ErrorsByErrno: map[string]uint64{},
		LatOverRange:  clamped,
	}
	if r.cfg.RW.Reads() {
		d := dirStats(h[dirRead], cnt[dirRead], runtimeNs)
		s.Read = &d
	}
	if r.cfg.RW.Writes() {
		d := dirStats(h[dirWrite], cnt[dirWrite], runtimeNs)
		s.Write = &d
	}
	for e, n := range errnos {
		if n > 0 {
			s.ErrorsByErrno[errnoName(syscall.Errno(e))] += n
		}
	}
	if keep != nil {
		keep[dirRead], keep[dirWrite], keep[numDirs] = h[dirRead], h[dirWrite], both
	}
	return s
}

func dirStats(h *hdrhistogram.Histogram, c dirCounts, runtimeNs int64) DirStats {
	s := DirStats{IOs: c.ios, Bytes: c.bytes, Lat: LatNsOf(h), Errors: c.errs, Short: c.short}
	if runtimeNs > 0 {
		secs := float64(runtimeNs) / 1e9
		s.IOPS = float64(c.ios) / secs
		s.BWBytes = float64(c.bytes) / secs
	}
	return s
}

// Env describes where the run happened.
type Env struct {
	Time        string `json:"time"`
	Hostname    string `json:"hostname"`
	CPUModel    string `json:"cpu_model"`
	Cores       int    `json:"cores"` // physical cores with an online CPU (sysfs; cpuid's count if sysfs fails)
	NUMANodes   int    `json:"numa_nodes"`
	LogicalCPUs int    `json:"logical_cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"go_version"`
	Clock       string `json:"clock"` // what latencies are timed with: "tsc" or "nanotime"

	Reactors  []poller.Pin `json:"reactors"`
	Idle      string       `json:"idle_policy"`
	Engine    EngineEnv    `json:"engine"`
	Buffers   string       `json:"buffers"`
	Hugepages bool         `json:"hugepages"`
}

// EngineEnv is the opened engine as it describes itself.
type EngineEnv struct {
	Name      string `json:"name"`
	Asked     string `json:"asked"`
	Reason    string `json:"reason,omitempty"`
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
	BlockSize int    `json:"block_size"`
	Direct    bool   `json:"direct"`
	Options   string `json:"options"`
	Ops       string `json:"ops"`
}

func (r *runner) env(pins []poller.Pin) Env {
	host, _ := os.Hostname()
	cores, nodes := cpuid.CPU.PhysicalCores, 0
	if t, err := sysfs.New("").Topology(); err == nil {
		type core struct{ pkg, id int }
		seen := map[core]bool{}
		for _, c := range t.CPUs {
			seen[core{c.Package, c.Core}] = true
		}
		cores, nodes = len(seen), len(t.Nodes)
	}
	asked := r.cfg.EngineAsked
	if asked == "" {
		asked = r.info.Engine
	}
	return Env{
		Time:        r.startWall.UTC().Format(time.RFC3339),
		Hostname:    host,
		CPUModel:    cpuid.CPU.BrandName,
		Cores:       cores,
		NUMANodes:   nodes,
		LogicalCPUs: runtime.NumCPU(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		Kernel:      kernel(),
		GoVersion:   runtime.Version(),
		Clock:       poller.ClockSource(),
		Reactors:    pins,
		Idle:        r.cfg.Idle.Mode.String(),
		Engine: EngineEnv{
			Name: r.info.Engine, Asked: asked, Reason: r.cfg.EngineReason, Path: r.info.Path,
			SizeBytes: r.info.SizeBytes, BlockSize: r.info.BlockSize, Direct: r.info.Direct,
			Options: r.info.Options, Ops: r.info.Ops.String(),
		},
		Buffers:   r.region.String(),
		Hugepages: r.region.Huge(),
	}
}

// WriteText prints the report in the manner of fio's human output: per job,
// then the whole run, latency in microseconds.
func (r *IOReport) WriteText(w io.Writer) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "usrpt bench: rw=%s", o.RW)
	if o.RW == "randrw" || o.RW == "rw" {
		fmt.Fprintf(&b, " (rwmixread=%d)", o.RWMixRead)
	}
	fmt.Fprintf(&b, ", bs=%s, iodepth=%d, jobs=%d, size=%s, engine=%s, direct=%d",
		isize(uint64(o.BS)), o.IODepth, o.Jobs, isize(uint64(o.SizeBytes)), r.Env.Engine.Name, b2i(o.Direct))
	if o.FUA {
		b.WriteString(", fua=1")
	}
	if o.Verify {
		b.WriteString(", verify=crc32c")
	}
	b.WriteString(", layer=" + o.Layer)
	if o.Target != "" {
		fmt.Fprintf(&b, " (target=%s on cores %s)", o.Target, o.TargetCores)
	}
	if o.Layer != LayerEngine.String() {
		mode := "write-through"
		if o.SCSIWriteCache {
			mode = "write-back"
		}
		fmt.Fprintf(&b, " (LU %d-byte blocks, %s)", o.SCSIBlockSize, mode)
	}
	b.WriteString("\n")
	if r.Interrupted {
		b.WriteString("interrupted: the numbers cover the run up to the interrupt\n")
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(&b, "job %d: reactor %d (cpu %d): ios=%d, runtime=%s\n", j.Job, j.Reactor, j.CPU, j.IOs, dur(j.RuntimeNs))
		writeIOStats(&b, j.IOStats)
		if j.Verify != nil {
			fmt.Fprintf(&b, "  verify: %d blocks checked, %d mismatches\n", j.Verify.Checked, j.Verify.Mismatches)
		}
	}
	t := r.Total
	fmt.Fprintf(&b, "\nall jobs (%d): ios=%d, runtime=%s\n", len(r.Jobs), t.IOs, dur(t.RuntimeNs))
	writeIOStats(&b, t.IOStats)
	fmt.Fprintf(&b, "  cpu          : usr=%.2f%%, sys=%.2f%%, %.0f ns of CPU per I/O (process, measured window)\n",
		t.CPUUsrPct, t.CPUSysPct, t.CPUNsPerIO)
	for _, c := range r.CPU {
		fmt.Fprintf(&b, "  reactor %d    : cpu %d, busy=%.1f%%, jobs=%v, ios=%d, clat p50=%s p99=%s usec\n",
			c.Reactor, c.CPU, c.BusyPct, c.Jobs, c.IOs, usec(c.Lat.P50), usec(c.Lat.P99))
	}
	if tg := r.Target; tg != nil {
		fmt.Fprintf(&b, "  target       : %.0f ns of reactor busy time per I/O\n", tg.BusyNsPerIO)
		for _, c := range tg.Reactors {
			fmt.Fprintf(&b, "  target %d     : cpu %d, busy=%.1f%%\n", c.Reactor, c.CPU, c.BusyPct)
		}
	}
	if v := r.Verify; v != nil {
		fmt.Fprintf(&b, "\nverify: %d blocks checked, %d mismatches\n", v.Checked, v.Mismatches)
		if v.Checked == 0 {
			b.WriteString("  (reads are checked only on blocks this run wrote: add --verify-prefill to write them all first)\n")
		}
		for _, m := range v.First {
			fmt.Fprintf(&b, "  job %d lba %d (offset %d): %s expected %#x, found %#x\n", m.Job, m.LBA, m.Offset, m.Field, m.Expected, m.Found)
		}
		if uint64(len(v.First)) < v.Mismatches {
			fmt.Fprintf(&b, "  ... %d more\n", v.Mismatches-uint64(len(v.First)))
		}
	}
	e := r.Env
	fmt.Fprintf(&b, "\nenv: %s (%d cores, %d logical CPUs, %d NUMA nodes), %s, %s, GOMAXPROCS %d, idle=%s, clock=%s\n",
		e.CPUModel, e.Cores, e.LogicalCPUs, e.NUMANodes, e.Kernel, e.GoVersion, e.GOMAXPROCS, e.Idle, e.Clock)
	eng := e.Engine
	fmt.Fprintf(&b, "engine: %s", eng.Name)
	if eng.Asked != "" && eng.Asked != eng.Name {
		fmt.Fprintf(&b, " (asked %s", eng.Asked)
		if eng.Reason != "" {
			fmt.Fprintf(&b, ": %s", eng.Reason)
		}
		b.WriteString(")")
	}
	if eng.Path != "" {
		fmt.Fprintf(&b, ", %s", eng.Path)
	}
	fmt.Fprintf(&b, ", %s, %d-byte blocks, direct=%d", isize(uint64(eng.SizeBytes)), eng.BlockSize, b2i(eng.Direct))
	if eng.Options != "" {
		fmt.Fprintf(&b, ", options %s", eng.Options)
	}
	fmt.Fprintf(&b, "; buffers %s\n", e.Buffers)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeIOStats(b *strings.Builder, s IOStats) {
	dirs := []struct {
		name string
		d    *DirStats
	}{{"read", s.Read}, {"write", s.Write}}
	for _, x := range dirs {
		if x.d == nil {
			continue
		}
		d := x.d
		fmt.Fprintf(b, "  %5s: IOPS=%s, BW=%s/s (%s/s)(%s/%s)\n", x.name, kfmt(d.IOPS),
			ibytes(uint64(d.BWBytes)), sibytes(uint64(d.BWBytes)), ibytes(d.Bytes), dur(s.RuntimeNs))
		writeLat(b, d.Lat)
	}
	if s.Read != nil && s.Write != nil {
		fmt.Fprintf(b, "   both: IOPS=%s, BW=%s/s (%s/s)\n", kfmt(s.IOPS), ibytes(uint64(s.BWBytes)), sibytes(uint64(s.BWBytes)))
		writeLat(b, s.Lat)
	}
	if s.Errors == 0 {
		b.WriteString("  errors       : none\n")
	} else {
		names := make([]string, 0, len(s.ErrorsByErrno))
		for n := range s.ErrorsByErrno {
			names = append(names, n)
		}
		slices.Sort(names)
		parts := []string{}
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s=%d", n, s.ErrorsByErrno[n]))
		}
		if s.Short > 0 {
			parts = append(parts, fmt.Sprintf("short=%d", s.Short))
		}
		fmt.Fprintf(b, "  errors       : %d (%s)\n", s.Errors, strings.Join(parts, ", "))
	}
	if s.LatOverRange > 0 {
		fmt.Fprintf(b, "  note         : %d latencies above 60 s were recorded as 60 s\n", s.LatOverRange)
	}
}

// writeLat prints fio's clat lines and percentile block in microseconds,
// each value to three significant digits (so 60 ns and 75 µs both keep
// their resolution).
func writeLat(b *strings.Builder, l LatNs) {
	fmt.Fprintf(b, "    clat (usec): min=%s, max=%s, avg=%s, stdev=%s\n",
		usec(l.Min), usec(l.Max), usec(int64(l.Mean)), usec(int64(l.Stddev)))
	b.WriteString("    clat percentiles (usec):\n")
	vals := l.Values()
	width := 0
	for _, v := range vals {
		width = max(width, len(usec(v)))
	}
	for i, v := range vals {
		if i%4 == 0 {
			b.WriteString("     |")
		}
		fmt.Fprintf(b, " %6.2fth=[%*s]", Percentiles[i], width, usec(v))
		switch {
		case i == len(vals)-1:
			b.WriteString("\n")
		case i%4 == 3:
			b.WriteString(",\n")
		default:
			b.WriteString(",")
		}
	}
}

// kfmt prints a rate as fio does: 3 significant digits and k, M or G.
func kfmt(v float64) string {
	units := []string{"", "k", "M", "G"}
	u := 0
	for v >= 999.5 && u < len(units)-1 {
		v /= 1000
		u++
	}
	switch {
	case u == 0 || v >= 99.95:
		return fmt.Sprintf("%.0f%s", v, units[u])
	case v >= 9.995:
		return fmt.Sprintf("%.1f%s", v, units[u])
	}
	return fmt.Sprintf("%.2f%s", v, units[u])
}

// usec prints nanoseconds as microseconds to three significant digits.
func usec(ns int64) string {
	v := float64(ns) / 1e3
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// dur prints a runtime as fio does, in msec, or usec below 10 ms.
func dur(ns int64) string {
	if ns < 10_000_000 {
		return fmt.Sprintf("%dusec", ns/1e3)
	}
	return fmt.Sprintf("%dmsec", ns/1e6)
}

func ibytes(n uint64) string  { return strings.ReplaceAll(humanize.IBytes(n), " ", "") }
func sibytes(n uint64) string { return strings.ReplaceAll(humanize.Bytes(n), " ", "") }
func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// isize prints a size exactly: 4KiB, 1GiB, 1536B.
func isize(n uint64) string {
	for _, u := range []struct {
		div  uint64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.div && n%u.div == 0 {
			return fmt.Sprintf("%d%s", n/u.div, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}
