package bench

import (
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/dustin/go-humanize"
	"github.com/klauspost/cpuid/v2"
	"github.com/usrpt/usrpt/internal/ring"
	"github.com/usrpt/usrpt/poller"
)

// ReactorConfig configures the reactor benchmark.
type ReactorConfig struct {
	CPUs     []int         // the first two are used (one is enough, but then both ends share a core)
	Duration time.Duration // per phase
	Batches  []int         // ring transfer batch sizes
	Idle     poller.IdlePolicy
}

// RingResult is one ring-transfer phase.
type RingResult struct {
	Batch       int     `json:"batch"`
	Items       uint64  `json:"items"`
	Seconds     float64 `json:"seconds"`
	ItemsPerSec float64 `json:"items_per_sec"`
	NsPerItem   float64 `json:"ns_per_item"`
}

// Latency is a latency distribution in nanoseconds, fio's percentile set.
type Latency struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min_ns"`
	Mean  float64 `json:"mean_ns"`
	Max   int64   `json:"max_ns"`
	P50   int64   `json:"p50_ns"`
	P90   int64   `json:"p90_ns"`
	P99   int64   `json:"p99_ns"`
	P999  int64   `json:"p99_9_ns"`
	P9999 int64   `json:"p99_99_ns"`
}

// LatencyOf summarises an HdrHistogram of nanoseconds.
func LatencyOf(h *hdrhistogram.Histogram) Latency {
	return Latency{
		Count: h.TotalCount(), Min: h.Min(), Mean: h.Mean(), Max: h.Max(),
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), P9999: h.ValueAtQuantile(99.99),
	}
}

// ReactorReport is the reactor benchmark's result.
type ReactorReport struct {
	CPUModel   string                `json:"cpu_model"`
	LogicalCPU int                   `json:"logical_cpus"`
	GoVersion  string                `json:"go_version"`
	Reactors   []poller.Pin          `json:"reactors"`
	Idle       string                `json:"idle_policy"`
	Rings      []RingResult          `json:"ring_transfer"`
	RoundTrip  Latency               `json:"message_round_trip"`
	RTPerSec   float64               `json:"round_trips_per_sec"`
	Stats      []poller.ReactorStats `json:"reactor_stats"`
}

// RunReactor measures ring transfer between two pinned reactors for each
// batch size, then message round trips with a latency histogram.
func RunReactor(cfg ReactorConfig) (*ReactorReport, error) {
	if len(cfg.CPUs) == 0 {
		return nil, fmt.Errorf("bench: no CPUs")
	}
	cpus := cfg.CPUs
	if len(cpus) > 2 {
		cpus = cpus[:2]
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Second
	}
	if len(cfg.Batches) == 0 {
		cfg.Batches = []int{1, 32}
	}
	rep := &ReactorReport{
		CPUModel:   cpuid.CPU.BrandName,
		LogicalCPU: runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		Idle:       cfg.Idle.Mode.String(),
	}
	for _, batch := range cfg.Batches {
		if batch < 1 || batch > 4096 {
			return nil, fmt.Errorf("bench: batch %d out of range 1-4096", batch)
		}
		res, err := ringPhase(cpus, cfg, batch)
		if err != nil {
			return nil, err
		}
		rep.Rings = append(rep.Rings, res)
	}
	if err := roundTripPhase(cpus, cfg, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

func newGroup(cpus []int, cfg ReactorConfig) (*poller.Group, *poller.Reactor, *poller.Reactor, error) {
	g, err := poller.NewGroup(poller.Config{CPUs: cpus, Idle: cfg.Idle})
	if err != nil {
		return nil, nil, nil, err
	}
	return g, g.Reactor(0), g.Reactor(g.Len() - 1), nil
}

func ringPhase(cpus []int, cfg ReactorConfig, batch int) (RingResult, error) {
	g, prod, cons, err := newGroup(cpus, cfg)
	if err != nil {
		return RingResult{}, err
	}
	q := ring.NewSPSC[uint64](4096)
	out := make([]uint64, batch)
	in := make([]uint64, batch)
	var sent, recvd uint64
	var start, end int64
	var stopped, done atomic.Bool
	var bad atomic.Uint64
	prod.Register("produce", func() poller.Status {
		if stopped.Load() {
			return poller.Idle
		}
		for i := range out {
			out[i] = sent + uint64(i)
		}
		n := q.PushBatch(out)
		if n == 0 {
			return poller.Idle // ring full: waiting on the consumer is not work
		}
		sent += uint64(n)
		return poller.Busy
	})
	cons.Register("consume", func() poller.Status {
		n := q.PopBatch(in)
		if n == 0 {
			if stopped.Load() && !done.Load() {
				end = poller.Monotonic()
				done.Store(true)
			}
			return poller.Idle
		}
		if start == 0 {
			start = poller.Monotonic()
		}
		if in[0] != recvd {
			bad.Store(in[0] + 1)
		}
		recvd += uint64(n)
		return poller.Busy
	})
	if err := g.Start(); err != nil {
		return RingResult{}, err
	}
	time.Sleep(cfg.Duration)
	stopped.Store(true)
	for !done.Load() {
		time.Sleep(time.Millisecond)
	}
	g.Stop()
	if v := bad.Load(); v != 0 {
		return RingResult{}, fmt.Errorf("bench: ring delivered item %d out of order", v-1)
	}
	secs := float64(end-start) / 1e9
	res := RingResult{Batch: batch, Items: recvd, Seconds: secs}
	if recvd > 0 && secs > 0 {
		res.ItemsPerSec = float64(recvd) / secs
		res.NsPerItem = float64(end-start) / float64(recvd)
	}
	return res, nil
}

// roundTrip is the state of the ping-pong, owned by reactor a except for
// the send timestamp b echoes back inside the message argument.
type roundTrip struct {
	a, b    *poller.Reactor
	hist    *hdrhistogram.Histogram
	sentAt  int64
	stopped atomic.Bool
	done    chan struct{}
	pong    func(any)
	ping    func(any)
	lost    atomic.Uint64
}

func roundTripPhase(cpus []int, cfg ReactorConfig, rep *ReactorReport) error {
	g, a, b, err := newGroup(cpus, cfg)
	if err != nil {
		return err
	}
	rt := &roundTrip{a: a, b: b, hist: hdrhistogram.New(1, int64(10*time.Second), 3), done: make(chan struct{})}
	rt.ping = func(any) { // on b
		if !rt.a.Send(rt.pong, nil) {
			rt.lost.Add(1)
		}
	}
	rt.pong = func(any) { // on a
		now := poller.Monotonic()
		_ = rt.hist.RecordValue(now - rt.sentAt)
		if rt.stopped.Load() {
			close(rt.done)
			return
		}
		rt.sentAt = poller.Monotonic()
		if !rt.b.Send(rt.ping, nil) {
			rt.lost.Add(1)
		}
	}
	if err := g.Start(); err != nil {
		return err
	}
	rep.Reactors = g.Pins()
	start := time.Now()
	a.Send(func(any) {
		rt.sentAt = poller.Monotonic()
		rt.b.Send(rt.ping, nil)
	}, nil)
	time.Sleep(cfg.Duration)
	rt.stopped.Store(true)
	select {
	case <-rt.done:
	case <-time.After(10 * time.Second):
		g.Stop()
		return fmt.Errorf("bench: round trips stalled")
	}
	elapsed := time.Since(start)
	stats, err := g.Stats(time.Second)
	g.Stop()
	if err != nil {
		return err
	}
	if n := rt.lost.Load(); n > 0 {
		return fmt.Errorf("bench: %d messages refused by a full inbox", n)
	}
	rep.Stats = stats
	rep.RoundTrip = LatencyOf(rt.hist)
	rep.RTPerSec = float64(rt.hist.TotalCount()) / elapsed.Seconds()
	return nil
}

// WriteText prints the report in the manner of fio's terse human output.
func (r *ReactorReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "usrpt reactor benchmark — %s, %d logical CPUs, %s, idle=%s\n", r.CPUModel, r.LogicalCPU, r.GoVersion, r.Idle)
	for _, p := range r.Reactors {
		fmt.Fprintf(tw, "  reactor %d: CPU %d (observed %d, tid %d)\n", p.Reactor, p.CPU, p.Observed, p.TID)
	}
	fmt.Fprintf(tw, "\nring transfer (SPSC, reactor 0 → reactor %d)\n", len(r.Reactors)-1)
	fmt.Fprintf(tw, "  batch\titems\titems/s\tns/item\n")
	for _, x := range r.Rings {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%.2f\n", x.Batch, x.Items, si(x.ItemsPerSec), x.NsPerItem)
	}
	l := r.RoundTrip
	fmt.Fprintf(tw, "\nmessage round trip (MPSC inboxes): %d round trips, %s/s\n", l.Count, si(r.RTPerSec))
	fmt.Fprintf(tw, "  lat (nsec): min=%d, max=%d, avg=%.1f\n", l.Min, l.Max, l.Mean)
	fmt.Fprintf(tw, "  lat percentiles (nsec):\n")
	fmt.Fprintf(tw, "   |  50.00th=[%d], 90.00th=[%d], 99.00th=[%d],\n", l.P50, l.P90, l.P99)
	fmt.Fprintf(tw, "   |  99.90th=[%d], 99.99th=[%d]\n", l.P999, l.P9999)
	fmt.Fprintf(tw, "\nreactors during the round-trip phase\n")
	fmt.Fprintf(tw, "  reactor\tcpu\tbusy%%\titerations\tmessages\tsleeps\n")
	for _, s := range r.Stats {
		fmt.Fprintf(tw, "  %d\t%d\t%.1f\t%d\t%d\t%d\n", s.ID, s.CPU, s.BusyPercent(), s.Iterations, s.Messages, s.Sleeps)
	}
	return tw.Flush()
}

func si(v float64) string { return humanize.SIWithDigits(v, 2, "") }
