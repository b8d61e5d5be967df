package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/usrpt/usrpt/bench"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/engines"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/server"
	"golang.org/x/sys/unix"
)

// benchIOFlags are usrpt bench's workload flags, named after fio's options.
type benchIOFlags struct {
	engine, filename, size, rw, bs string
	rwmixread, iodepth, jobs       int
	cores, idle, format, output    string
	histLog, plot, pages           string
	layer, target, targetCores     string
	scsiWCE, fua                   bool
	runtime, ramp                  secondsValue
	ios, seed                      uint64
	direct, verify, verifyPrefill  bool
	idleSpin                       time.Duration
	// Engine options, under fio's names where fio has one.
	sqpoll, hipri bool
	sqpollCPU     int
	workers       int
	sampleEvery   time.Duration
}

func newBenchCmd() *cobra.Command {
	f := &benchIOFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "benchmark harness: block I/O through an engine, like fio; reactor runtime floors",
		Long: `Without a subcommand, run a block I/O workload on an engine (ioengine) and
report it the way fio does: IOPS, bandwidth, and completion latency
percentiles per job and in total, from per-job HdrHistograms merged (never
averaged); each reactor's busy share; the process's CPU time per I/O; errors
by errno; the environment.

Each job is a poller on a reactor pinned to a CPU of --cores (jobs are dealt
round-robin over them), with its own engine queue, --iodepth requests and
buffers. Latency is completion time minus submission time.

With --layer scsi the same jobs send every I/O through the SCSI target core
instead: a READ(16) or WRITE(16) per I/O on one logical unit over the
engine, through one I_T nexus, with one executor per job, so the report
shows what the SCSI layer adds per command (no transport involved). The LU
is write-through, as a SCSI disk without a write cache is: every WRITE
reaches the engine with FUA, so compare it with an engine run with --fua,
or make the LU write-back with --scsi-wce.

With --target loop the I/O goes all the way through SRP: an in-process
usrpt target (its reactors pinned to --target-cores, one LU over the
engine, write-through unless --scsi-wce) and the user-space SRP initiator
(one channel per job) on the in-process loop verbs fabric. Every I/O is an
SRP_CMD with READ(16) or WRITE(16); data-out travels by RDMA READ and
data-in by RDMA WRITE, as on a wire. The report adds the target reactors'
busy share and their busy time per I/O: the target's CPU cost of a
command.

Sizes take fio's units: k, m, g, t, p are powers of 1024 whether written
4k, 4KB or 4KiB (4096 bytes), as in fio. --runtime and --ramp take a Go
duration (10s, 1m) or, as in fio, a number of seconds.

Workload subcommands measure other things; see "reactor".`,
		Example: `  usrpt bench                                   # null engine, 4k sequential reads, QD1, one pass over 1GiB
  usrpt bench --engine uring --filename /var/tmp/usrpt.dat --rw randread --bs 4k --iodepth 32 --runtime 10s
  usrpt bench --engine mem --size 256m --rw randrw --rwmixread 70 --jobs 2 --cores 0-1 --verify --verify-prefill
  usrpt bench --engine null --iodepth 1 --ios 1000000 --output-format json --output run.json
  usrpt bench --engine null --rw randread --iodepth 32 --runtime 10s --layer scsi
  usrpt bench --engine mem --size 256m --rw randwrite --runtime 10s --layer scsi --scsi-wce
  usrpt bench --target loop --engine null --rw randread --iodepth 32 --runtime 10s --cores 0 --target-cores 1
  usrpt bench --engine uring --filename /dev/nvme0n1 --rw randread --runtime 30 --hist-log lat.hlog --plot lat.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchIO(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.engine, "engine", "null", "I/O engine: "+strings.Join(engines.Names, ", "))
	fl.StringVar(&f.filename, "filename", "", "file or block device (uring, psync, auto)")
	fl.StringVar(&f.size, "size", "1GiB", "bytes of the device to use (and a new file's size)")
	fl.StringVar(&f.rw, "rw", "read", "read, write, randread, randwrite, randrw or rw")
	fl.IntVar(&f.rwmixread, "rwmixread", 50, "percent of reads for randrw and rw")
	fl.StringVar(&f.bs, "bs", "4k", "block size of each I/O")
	fl.IntVar(&f.iodepth, "iodepth", 1, "requests in flight per job")
	fl.IntVar(&f.jobs, "jobs", 1, "jobs (workers), dealt round-robin over the reactors of --cores")
	fl.StringVar(&f.cores, "cores", "", "core mask for the reactors (default: the first online CPU)")
	fl.Var(&f.runtime, "runtime", "measured time (default: until --ios, or one pass over --size)")
	fl.Uint64Var(&f.ios, "ios", 0, "I/Os per job (default: until --runtime, or one pass over --size)")
	fl.Var(&f.ramp, "ramp", "warm-up before measuring, not counted")
	fl.BoolVar(&f.direct, "direct", true, "O_DIRECT: bypass the page cache")
	fl.BoolVar(&f.fua, "fua", false, "writes with force unit access: durable when they complete (RWF_DSYNC on files and devices; the FUA bit with --layer scsi)")
	fl.StringVar(&f.layer, "layer", "engine", "what the I/O goes through: engine (the engine queue itself) or scsi (a CDB per I/O on the SCSI target core)")
	fl.BoolVar(&f.scsiWCE, "scsi-wce", false, "with --layer scsi or --target loop: a write-back LU (WCE=1); without it the LU is write-through and every WRITE goes with FUA")
	fl.StringVar(&f.target, "target", "", "loop: send every I/O over SRP to an in-process usrpt target on the loop fabric")
	fl.StringVar(&f.targetCores, "target-cores", "", "with --target loop: core mask for the target's reactors (default: the first online CPU not in --cores)")
	fl.BoolVar(&f.sqpoll, "sqthread_poll", false, "uring: a kernel thread polls the submission ring (needs a spare core; see docs/tuning.md)")
	fl.IntVar(&f.sqpollCPU, "sqthread_poll_cpu", -1, "uring: pin the SQPOLL thread to this CPU (-1: not pinned)")
	fl.BoolVar(&f.hipri, "hipri", false, "uring: IOPOLL, polled completions (NVMe with poll queues only)")
	fl.IntVar(&f.workers, "psync-workers", 0, "psync: worker threads per queue (0: the engine's default, 2)")
	fl.BoolVar(&f.verify, "verify", false, "stamp every written block with a CRC32C, its LBA and a generation; check reads of blocks this run wrote")
	fl.BoolVar(&f.verifyPrefill, "verify-prefill", false, "with --verify: write every block once before the run so every read is checked")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the per-job generators (offsets, read/write mix, buffer contents)")
	fl.StringVarP(&f.format, "output-format", "o", "text", "text or json")
	fl.StringVar(&f.output, "output", "", "write the report to this file instead of standard output")
	fl.StringVar(&f.histLog, "hist-log", "", "write an HdrHistogram interval log (one interval per second) to this file")
	fl.StringVar(&f.plot, "plot", "", "draw latency percentiles and IOPS over time to this .svg or .png file")
	fl.StringVar(&f.idle, "idle", "busy", "reactor idle policy: busy or adaptive")
	fl.DurationVar(&f.idleSpin, "idle-spin", poller.DefaultSpinFor, "adaptive policy: how long a reactor spins after its last work before it sleeps")
	fl.StringVar(&f.pages, "hugepages", "auto", "buffer pages: auto (2 MiB hugepages when reserved), huge or small")
	fl.DurationVar(&f.sampleEvery, "sample-every", time.Second, "sampling interval of the progress line, IOPS samples and interval log")
	_ = fl.MarkHidden("sample-every")
	// fio's spellings, for muscle memory.
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "numjobs":
			name = "jobs"
		case "ramp_time", "ramp-time":
			name = "ramp"
		case "number_ios", "number-ios":
			name = "ios"
		case "blocksize":
			name = "bs"
		}
		return pflag.NormalizedName(name)
	})
	cmd.AddCommand(newBenchReactorCmd())
	cmd.AddCommand(newBenchVerbsCmd())
	return cmd
}

// benchPlan is everything runBenchIO derives from the flags before it
// opens the device.
type benchPlan struct {
	cfg       bench.IOConfig
	sizeBytes int64
	engine    engines.Config
	plotFmt   string
}

// planBenchIO validates the flags and builds the run's configuration. Every
// error names the flag at fault.
func planBenchIO(f *benchIOFlags, online []int) (*benchPlan, error) {
	if err := outputFormat(f.format); err != nil {
		return nil, err
	}
	rw, err := bench.ParseRW(f.rw)
	if err != nil {
		return nil, err
	}
	size, err := parseSize("--size", f.size)
	if err != nil {
		return nil, err
	}
	bs, err := parseSize("--bs", f.bs)
	if err != nil {
		return nil, err
	}
	if bs > 1<<30 {
		return nil, fmt.Errorf("--bs %s: at most 1GiB", f.bs)
	}
	layer, err := bench.ParseLayer(f.layer)
	if err != nil {
		return nil, err
	}
	mode, err := poller.ParseIdleMode(f.idle)
	if err != nil {
		return nil, fmt.Errorf("--idle: %w", err)
	}
	pages, err := hugemem.ParsePagePolicy(f.pages)
	if err != nil {
		return nil, fmt.Errorf("--hugepages: %w", err)
	}
	if f.idleSpin < 0 {
		return nil, fmt.Errorf("--idle-spin %v: must not be negative", f.idleSpin)
	}
	if len(online) == 0 {
		return nil, errors.New("no online CPUs")
	}
	cpus := online[:1]
	if f.cores != "" {
		if cpus, err = poller.ParseCoreMask(f.cores, online); err != nil {
			return nil, fmt.Errorf("--cores: %w", err)
		}
	}
	var tcpus []int
	switch f.target {
	case "":
		if f.targetCores != "" {
			return nil, errors.New("--target-cores needs --target loop")
		}
	case "loop":
		if f.layer != "engine" {
			return nil, fmt.Errorf("--target loop sends I/O through SRP and SCSI itself; leave --layer %s out", f.layer)
		}
		layer = bench.LayerSRP
		if f.targetCores != "" {
			if tcpus, err = poller.ParseCoreMask(f.targetCores, online); err != nil {
				return nil, fmt.Errorf("--target-cores: %w", err)
			}
		} else {
			tcpus = []int{spareCPU(online, cpus)}
		}
	default:
		return nil, fmt.Errorf("--target %q: want loop (roce:// and ibv come with those transports)", f.target)
	}
	p := &benchPlan{sizeBytes: int64(size)}
	if f.plot != "" {
		if p.plotFmt, err = bench.PlotFormat(f.plot); err != nil {
			return nil, err
		}
	}
	p.cfg = bench.IOConfig{
		RW: rw, MixRead: f.rwmixread, BlockSize: int(bs), SizeBytes: int64(size),
		IODepth: f.iodepth, Jobs: f.jobs, CPUs: cpus,
		Runtime: time.Duration(f.runtime), IOs: f.ios, Ramp: time.Duration(f.ramp),
		Direct: f.direct, FUA: f.fua, Layer: layer, SCSIWriteCache: f.scsiWCE, Verify: f.verify, VerifyPrefill: f.verifyPrefill,
		Idle: poller.IdlePolicy{Mode: mode, SpinFor: f.idleSpin}, Seed: f.seed, Pages: pages,
		EngineAsked: f.engine, CoreMask: f.cores, SampleEvery: f.sampleEvery,
		TargetCPUs: tcpus, TargetCoreMask: f.targetCores,
	}
	if layer == bench.LayerSRP && p.cfg.TargetCoreMask == "" {
		p.cfg.TargetCoreMask = poller.FormatCoreMaskHex(tcpus)
	}
	if p.cfg.CoreMask == "" {
		p.cfg.CoreMask = poller.FormatCoreMaskHex(cpus)
	}
	// Check what can be checked before anything is opened or created: the
	// device will have --size (or more, which the run does not use).
	if _, err := p.cfg.Check(ioengine.Info{Engine: f.engine, SizeBytes: int64(size)}); err != nil {
		return nil, err
	}
	if f.workers < 0 || f.workers > 64 {
		return nil, fmt.Errorf("--psync-workers %d: want 0 (default) to 64", f.workers)
	}
	if (f.sqpoll || f.hipri || f.sqpollCPU >= 0) && f.engine != "uring" && f.engine != "auto" {
		return nil, fmt.Errorf("--sqthread_poll, --sqthread_poll_cpu and --hipri are uring options; --engine is %s", f.engine)
	}
	p.engine = engines.Config{Engine: f.engine, Path: f.filename, SizeBytes: int64(size), Direct: f.direct,
		SQPoll:    f.sqpoll || f.sqpollCPU >= 0, // as in fio, a CPU implies SQPOLL
		SQPollCPU: f.sqpollCPU, IOPoll: f.hipri, Workers: f.workers}
	if f.filename != "" {
		st, err := os.Stat(f.filename)
		switch {
		case err == nil && st.Mode()&os.ModeDevice != 0:
			// A device is used as it is, read-only when nothing writes.
			p.engine.ReadOnly = !rw.Writes() && !f.verifyPrefill
		case err == nil && st.Mode().IsRegular():
			p.engine.ReadOnly = !rw.Writes() && !f.verifyPrefill && st.Size() >= int64(size)
			p.engine.Create = !p.engine.ReadOnly // extend a short file to --size
		case errors.Is(err, os.ErrNotExist):
			p.engine.Create = true
		case err != nil:
			return nil, fmt.Errorf("--filename: %w", err)
		}
	}
	return p, nil
}

func runBenchIO(cmd *cobra.Command, f *benchIOFlags) error {
	online, err := sysfs.New("").OnlineCPUs()
	if err != nil {
		return err
	}
	p, err := planBenchIO(f, online)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.output != "" {
		o, err := os.Create(f.output)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer o.Close()
		out = o
	}
	if f.histLog != "" {
		h, err := os.Create(f.histLog)
		if err != nil {
			return fmt.Errorf("--hist-log: %w", err)
		}
		defer h.Close()
		p.cfg.HistLog = h
	}
	if f.format == "text" && isTerminal(cmd.ErrOrStderr()) {
		p.cfg.Progress = cmd.ErrOrStderr()
	}
	// The first interrupt ends the run early with a report; the second
	// one, with the default action back, ends the process.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	p.cfg.Interrupt = ctx.Done()

	dev, choice, err := engines.Open(p.engine)
	if err != nil {
		return fmt.Errorf("--engine %s: %w", f.engine, err)
	}
	p.cfg.EngineReason = choice.Reason
	rep, err := bench.RunIO(dev, p.cfg)
	if cerr := dev.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", f.engine, cerr)
	}
	if err != nil {
		return err
	}
	if f.histLog != "" {
		if err := p.cfg.HistLog.(*os.File).Close(); err != nil {
			return fmt.Errorf("--hist-log: %w", err)
		}
	}
	if f.plot != "" {
		if err := writePlot(rep, f.plot, p.plotFmt); err != nil {
			return err
		}
	}
	if f.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(out)
	}
	if err != nil {
		return err
	}
	if o, ok := out.(*os.File); ok && f.output != "" {
		if err := o.Close(); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	return nil
}

func writePlot(rep *bench.IOReport, path, format string) error {
	w, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := rep.WritePlot(w, format); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a terminal (TCGETS succeeds on it):
// progress lines with \r are for people, never for pipes or files.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// parseSize reads a size as fio does with its default kb_base=1024: a bare
// number is bytes, and k, m, g, t, p — alone or spelled kb, KB, KiB — are
// powers of 1024, so 4k and 4KB are both 4096 (humanize.ParseBytes alone
// would read them as 4000). The number may have a fraction (1.5g).
func parseSize(flag, s string) (uint64, error) {
	n, err := server.ParseSize(s)
	if err != nil {
		// server's message starts "size %q": name the flag instead.
		return 0, errors.New(flag + strings.TrimPrefix(err.Error(), "size"))
	}
	return n, nil
}

// secondsValue is a duration flag that also takes fio's bare seconds.
type secondsValue time.Duration

func (v *secondsValue) String() string {
	if *v == 0 {
		return "0" // pflag's zero for help: "(default 0s)" stays off it
	}
	return time.Duration(*v).String()
}

func (v *secondsValue) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("%q: must not be negative", s)
		}
		*v = secondsValue(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want a duration (10s, 1m30s) or a number of seconds", s)
	}
	if d < 0 {
		return fmt.Errorf("%q: must not be negative", s)
	}
	*v = secondsValue(d)
	return nil
}

func (v *secondsValue) Type() string { return "duration" }

func newBenchReactorCmd() *cobra.Command {
	var (
		f       pairFlags
		batches []int
	)
	cmd := &cobra.Command{
		Use:   "reactor",
		Short: "measure the poller runtime: ring transfer and message round trips between pinned reactors",
		Long: `Start two reactors pinned to the first two CPUs of --cores and measure:
  - SPSC ring transfer throughput from one to the other, per batch size;
  - message round trips over the reactors' MPSC inboxes, with a latency
    histogram (HdrHistogram) reported as fio-style percentiles;
  - each reactor's busy share while it ran.
These are the floors every cross-core hand-off in the target pays.`,
		Example: `  usrpt bench reactor
  usrpt bench reactor --cores 0x3 --time 5s --batch 1,8,32
  usrpt bench reactor --idle adaptive --output-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cpus, pol, err := f.resolve()
			if err != nil {
				return err
			}
			rep, err := bench.RunReactor(bench.ReactorConfig{
				CPUs: cpus, Duration: f.duration, Batches: batches, Idle: pol,
			})
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), rep)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().IntSliceVar(&batches, "batch", []int{1, 32}, "ring transfer batch sizes")
	return cmd
}

// spareCPU is the first online CPU not in used, or used[0] when every CPU
// is used (then target and initiator share a core, which the report shows).
func spareCPU(online, used []int) int {
	for _, c := range online {
		if !slices.Contains(used, c) {
			return c
		}
	}
	return used[0]
}
