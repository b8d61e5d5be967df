package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
)

// RW is a workload pattern, as fio's rw= names it.
type RW uint8

const (
	RWRead      RW = iota // sequential reads
	RWWrite               // sequential writes
	RWRandRead            // random reads
	RWRandWrite           // random writes
	RWRandRW              // random reads and writes, --rwmixread percent reads
	RWMixed               // sequential reads and writes (fio's rw / readwrite)
)

var rwNames = [...]string{RWRead: "read", RWWrite: "write", RWRandRead: "randread", RWRandWrite: "randwrite", RWRandRW: "randrw", RWMixed: "rw"}

func (m RW) String() string {
	if int(m) < len(rwNames) {
		return rwNames[m]
	}
	return fmt.Sprintf("RW(%d)", uint8(m))
}

// ParseRW accepts fio's names: read, write, randread, randwrite, randrw,
// rw (and its alias readwrite).
func ParseRW(s string) (RW, error) {
	if s == "readwrite" {
		return RWMixed, nil
	}
	for i, n := range rwNames {
		if s == n {
			return RW(i), nil
		}
	}
	return 0, fmt.Errorf("--rw %q: want read, write, randread, randwrite, randrw or rw", s)
}

// Random reports whether offsets are random.
func (m RW) Random() bool { return m == RWRandRead || m == RWRandWrite || m == RWRandRW }

// Mixed reports whether the workload both reads and writes.
func (m RW) Mixed() bool { return m == RWRandRW || m == RWMixed }

// Reads reports whether the workload reads.
func (m RW) Reads() bool { return m != RWWrite && m != RWRandWrite }

// Writes reports whether the workload writes.
func (m RW) Writes() bool { return m != RWRead && m != RWRandRead }

// DefaultVerifyKeep is how many mismatches a job keeps in full.
const DefaultVerifyKeep = 16

// IOConfig configures a block I/O benchmark. Field names follow fio's
// options; see usrpt bench --help.
type IOConfig struct {
	RW        RW
	MixRead   int   // percent of reads for randrw and rw, 0–100
	BlockSize int   // bytes per I/O (bs)
	SizeBytes int64 // bytes of the device to use; 0 or more than the device: all of it
	IODepth   int   // requests in flight per job
	Jobs      int   // workers (numjobs)
	CPUs      []int // reactor CPUs; jobs go round-robin over them

	Runtime time.Duration // measured time; 0: until IOs, or one pass over size
	IOs     uint64        // I/Os per job; 0: no count limit
	Ramp    time.Duration // warm-up before measuring, not counted

	Direct        bool // O_DIRECT was asked for: bs must suit it
	FUA           bool // writes carry FlagFUA (durable on completion; the FUA bit with LayerSCSI)
	Verify        bool // stamp written blocks, check them on read
	VerifyPrefill bool // write every block once before the run, so reads of any block are checked
	VerifyKeep    int  // mismatches kept per job; 0: DefaultVerifyKeep

	// Layer is what the I/O goes through: the engine queue itself, or the
	// SCSI target core (one LU and one nexus shared by every job, one
	// Executor per job). SCSIWriteCache makes the LU write-back (WCE=1);
	// without it the LU is write-through and every WRITE reaches the
	// engine with FUA.
	Layer          Layer
	SCSIWriteCache bool
	// TargetCPUs are the reactors of the in-process SRP target with
	// LayerSRP; TargetCoreMask is the mask as given, for the report.
	TargetCPUs     []int
	TargetCoreMask string

	Idle  poller.IdlePolicy
	Seed  uint64 // per-job generators are seeded from Seed and the job id
	Pages hugemem.PagePolicy

	// Labels for the report: the engine as asked ("auto"), why it was
	// chosen, and the core mask as given.
	EngineAsked, EngineReason, CoreMask string

	// Progress gets a one-line status rewritten every second with \r
	// (a terminal); nil for none.
	Progress io.Writer
	// HistLog gets an HdrHistogram interval log, one interval per second
	// of the measured window; nil for none.
	HistLog io.Writer
	// SampleEvery is the sampling interval of the progress line, the IOPS
	// samples and the interval log; 0 means one second.
	SampleEvery time.Duration
	// Interrupt, when closed, ends the ramp or the measured window early
	// (the report says so); prefill and readback run to their end.
	Interrupt <-chan struct{}
}

// geometry is what validation derives from the config and the device.
type geometry struct {
	sizeBytes   int64 // bytes in use
	blocks      int64 // bs-sized blocks in use
	jobBlocks   int64 // blocks each job works on
	partitioned bool  // each job has its own slice of the blocks (verify)
	lbaSize     int
	ios         uint64
}

// Check validates cfg against a device described by info.
func (cfg *IOConfig) Check(info ioengine.Info) (geometry, error) {
	var g geometry
	if int(cfg.RW) >= len(rwNames) {
		return g, fmt.Errorf("rw %v: unknown", cfg.RW)
	}
	if cfg.MixRead < 0 || cfg.MixRead > 100 {
		return g, fmt.Errorf("--rwmixread %d: want 0 to 100", cfg.MixRead)
	}
	bs := cfg.BlockSize
	if bs <= 0 {
		return g, fmt.Errorf("--bs %d: must be positive", bs)
	}
	if cfg.Direct && bs%512 != 0 {
		return g, fmt.Errorf("--bs %d: O_DIRECT (--direct) needs a multiple of 512 bytes", bs)
	}
	if cfg.Direct && info.BlockSize > 0 && bs%info.BlockSize != 0 {
		return g, fmt.Errorf("--bs %d: O_DIRECT needs a multiple of the device's %d-byte logical block", bs, info.BlockSize)
	}
	if bs > 1<<30 {
		return g, fmt.Errorf("--bs %s: at most 1 GiB", humanize.IBytes(uint64(bs)))
	}
	if cfg.IODepth < 1 || cfg.IODepth > 65536 {
		return g, fmt.Errorf("--iodepth %d: want 1 to 65536", cfg.IODepth)
	}
	if cfg.Jobs < 1 || cfg.Jobs > 4096 {
		return g, fmt.Errorf("--jobs %d: want 1 to 4096", cfg.Jobs)
	}
	if len(cfg.CPUs) == 0 {
		return g, errors.New("no CPUs for reactors")
	}
	if cfg.Runtime < 0 || cfg.Ramp < 0 {
		return g, fmt.Errorf("--runtime %v and --ramp %v: must not be negative", cfg.Runtime, cfg.Ramp)
	}
	if cfg.SizeBytes < 0 {
		return g, fmt.Errorf("--size %d: must not be negative", cfg.SizeBytes)
	}
	if int(cfg.Layer) >= len(layerNames) {
		return g, fmt.Errorf("layer %v: unknown", cfg.Layer)
	}
	if cfg.SCSIWriteCache && cfg.Layer == LayerEngine {
		return g, errors.New("--scsi-wce needs --layer scsi or --target loop")
	}
	if cfg.Layer != LayerEngine && scsiBlockSize(bs, info.BlockSize) == 0 {
		return g, fmt.Errorf("--bs %d: --layer %v needs a multiple of the LU's logical block (512 bytes, or 4096 on an engine of %d-byte blocks)", bs, cfg.Layer, info.BlockSize)
	}
	if cfg.Layer == LayerSRP && len(cfg.TargetCPUs) == 0 {
		return g, errors.New("--target loop: no CPUs for the target's reactors (--target-cores)")
	}
	if cfg.Layer == LayerSRP && cfg.BlockSize > 64<<20 {
		return g, fmt.Errorf("--bs %d: --target loop moves at most 64 MiB per command", cfg.BlockSize)
	}
	if cfg.VerifyPrefill && !cfg.Verify {
		return g, errors.New("--verify-prefill needs --verify")
	}
	if cfg.Verify {
		if info.Engine == "null" {
			return g, errors.New("--verify: the null engine keeps no data; use the mem engine or a file")
		}
		if bs < hdrLen {
			return g, fmt.Errorf("--verify: --bs %d is smaller than the %d-byte verify header", bs, hdrLen)
		}
	}
	g.sizeBytes = info.SizeBytes
	if cfg.SizeBytes > 0 && cfg.SizeBytes < g.sizeBytes {
		g.sizeBytes = cfg.SizeBytes
	}
	if g.sizeBytes < int64(bs) {
		return g, fmt.Errorf("--size %s is smaller than --bs %s (device has %s)",
			humanize.IBytes(uint64(max(cfg.SizeBytes, 0))), humanize.IBytes(uint64(bs)), humanize.IBytes(uint64(max(info.SizeBytes, 0))))
	}
	g.blocks = g.sizeBytes / int64(bs)
	g.jobBlocks = g.blocks
	if cfg.Verify && cfg.Jobs > 1 {
		// Jobs check what they wrote themselves: each gets its own slice.
		g.partitioned = true
		g.jobBlocks = g.blocks / int64(cfg.Jobs)
	}
	if cfg.Verify && g.jobBlocks <= int64(cfg.IODepth) {
		return g, fmt.Errorf("--verify: each job needs more blocks than --iodepth %d, and has %d (size %s, bs %s, %d jobs)",
			cfg.IODepth, g.jobBlocks, humanize.IBytes(uint64(g.sizeBytes)), humanize.IBytes(uint64(bs)), cfg.Jobs)
	}
	g.lbaSize = info.BlockSize
	if g.lbaSize <= 0 {
		g.lbaSize = 512
	}
	g.ios = cfg.IOs
	if cfg.Runtime == 0 && cfg.IOs == 0 {
		g.ios = uint64(g.jobBlocks) // fio's default: one pass over the size
	}
	return g, nil
}

// runConfig is the part of the configuration every job reads on its hot
// path; it is never written once jobs run.
type runConfig struct {
	op      ioengine.Op // for workloads that are not mixed
	mixed   bool
	random  bool
	mixRead int
	bs      int
	lbaSize int
	ios     uint64
	verify  bool
	writes  bool
	wflags  ioengine.Flags // Request.Flags of writes (--fua)
}

func newRunConfig(cfg *IOConfig, geo geometry) *runConfig {
	rc := &runConfig{
		op: ioengine.OpRead, mixed: cfg.RW.Mixed(), random: cfg.RW.Random(), mixRead: cfg.MixRead,
		bs: cfg.BlockSize, lbaSize: geo.lbaSize, ios: geo.ios,
		verify: cfg.Verify, writes: cfg.RW.Writes(),
	}
	if cfg.FUA {
		rc.wflags = ioengine.FlagFUA
	}
	if !cfg.RW.Reads() {
		rc.op = ioengine.OpWrite
	}
	return rc
}

const (
	callTimeout  = 10 * time.Second
	drainTimeout = 60 * time.Second
)

// RunIO runs the workload cfg describes on dev and reports it. dev stays
// open; the caller closes it.
func RunIO(dev ioengine.Device, cfg IOConfig) (*IOReport, error) {
	info := dev.Info()
	geo, err := cfg.Check(info)
	if err != nil {
		return nil, err
	}
	if cfg.VerifyKeep <= 0 {
		cfg.VerifyKeep = DefaultVerifyKeep
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = time.Second
	}
	rc := newRunConfig(&cfg, geo)
	ops := []ioengine.Op{}
	if cfg.RW.Reads() {
		ops = append(ops, ioengine.OpRead)
	}
	if cfg.RW.Writes() || cfg.VerifyPrefill {
		ops = append(ops, ioengine.OpWrite)
	}
	for _, op := range ops {
		if !dev.Supports(op) {
			return nil, fmt.Errorf("engine %s does not support %v", info.Engine, op)
		}
	}

	// One region for every job's buffers, one pool per job on pages of
	// its own.
	bufSize := (cfg.BlockSize + 511) / 512 * 512
	regionLen, err := hugemem.SplitLen(bufSize, cfg.IODepth, cfg.Jobs, hugemem.HugePageSize)
	if err != nil {
		return nil, fmt.Errorf("bench: buffers: %w", err)
	}
	region, err := hugemem.Map(hugemem.RegionConfig{Size: regionLen, Pages: cfg.Pages, Node: -1})
	if err != nil {
		return nil, fmt.Errorf("bench: buffers: %w", err)
	}
	pools, err := region.Split(bufSize, cfg.IODepth, cfg.Jobs)
	if err != nil {
		_ = region.Close()
		return nil, fmt.Errorf("bench: buffers: %w", err)
	}

	var tgt *scsiTarget
	var sb *srpBench
	switch cfg.Layer {
	case LayerSCSI:
		if tgt, err = newSCSITarget(dev, &cfg); err != nil {
			_ = region.Close()
			return nil, err
		}
		defer tgt.close()
	case LayerSRP:
		if sb, err = newSRPBench(dev, &cfg, region.Bytes()); err != nil {
			_ = region.Close()
			return nil, err
		}
		// Closed before the region goes (below): logout first, then the
		// target drains and stops.
	}

	cpus := cfg.CPUs[:min(len(cfg.CPUs), cfg.Jobs)]
	ctl := &control{}
	jobs := make([]*job, cfg.Jobs)
	for i := range jobs {
		jobs[i] = newJob(i, i%len(cpus), cpus[i%len(cpus)], rc, ctl, pools[i], geo, &cfg)
	}
	r := &runner{cfg: &cfg, info: info, geo: geo, dev: dev, region: region, jobs: jobs, ctl: ctl, cpus: cpus, tgt: tgt, srp: sb}
	rep, runErr := r.run()
	if sb != nil {
		sb.close()
	}
	// Every request is back (queues closed, group stopped): the buffers
	// can go home and the region be unmapped.
	for _, j := range jobs {
		for _, b := range j.bufs {
			j.pool.Put(b)
		}
	}
	if err := region.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return nil, runErr
	}
	return rep, nil
}

// newJob sets up job id's requests, buffers and generator (control plane).
func newJob(id, reactor, cpu int, rc *runConfig, ctl *control, pool *hugemem.Pool, geo geometry, cfg *IOConfig) *job {
	depth := cfg.IODepth
	j := &job{
		id: id, reactor: reactor, cpu: cpu, cfg: rc, ctl: ctl, pool: pool,
		bufs:     make([]hugemem.Buf, depth),
		reqs:     make([]ioengine.Request, depth),
		free:     make([]*ioengine.Request, 0, depth),
		sub:      make([]*ioengine.Request, 0, depth),
		out:      make([]*ioengine.Request, depth),
		submitAt: make([]int64, depth),
		epochOf:  make([]uint32, depth),
		blockOf:  make([]int64, depth),
		genOf:    make([]uint32, depth),
		nblocks:  geo.jobBlocks,
		phase:    phaseWait,
	}
	if geo.partitioned {
		j.base = int64(id) * geo.jobBlocks
	}
	// Seeded per job, so runs repeat (fio's randrepeat) and jobs differ.
	j.rng.Seed(cfg.Seed^0x9e3779b97f4a7c15, uint64(id)+1)
	fill := rand.NewPCG(cfg.Seed, uint64(id)+0x5851f42d4c957f2d)
	for k := range depth {
		b, ok := pool.Get()
		if !ok {
			panic("bench: pool smaller than the queue depth") // Split sized it
		}
		// Random contents, so compressing or deduplicating media do not
		// flatter writes.
		for o := 0; o+8 <= len(b.Data); o += 8 {
			binary.LittleEndian.PutUint64(b.Data[o:], fill.Uint64())
		}
		j.bufs[k] = b
		j.reqs[k] = ioengine.Request{User: uint64(k), Buf: b.Data[:cfg.BlockSize]}
		j.free = append(j.free, &j.reqs[k])
	}
	// 221 KB each: only the directions the workload measures, and the
	// interval pair only for the interval log (without it the current
	// interval is the whole window).
	for d := range j.lat {
		if d == dirRead && !cfg.RW.Reads() || d == dirWrite && !cfg.RW.Writes() {
			continue
		}
		j.lat[d] = newHist()
		if cfg.HistLog != nil {
			j.cum[d], j.spare[d] = newHist(), newHist()
		}
	}
	if cfg.Verify {
		j.v = newVerifier(j.nblocks, cfg.VerifyKeep)
		if cfg.VerifyPrefill {
			j.phase = phasePrefill
		}
	}
	return j
}
