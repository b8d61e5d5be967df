package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/dustin/go-humanize"
	"github.com/klauspost/cpuid/v2"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/verbs"
)

// VerbsConfig configures the verbs benchmark: SEND/RECV round trips and
// RDMA WRITE throughput between a client and a server QP, each on its own
// pinned reactor.
type VerbsConfig struct {
	Transport string // for the report
	// Open returns the two devices and the address the server listens on.
	Open     func() (client, server verbs.Device, addr string, err error)
	CPUs     []int         // the first two: client, server
	Duration time.Duration // per phase
	MsgSize  int           // SEND/RECV message bytes
	Writes   []int         // RDMA WRITE sizes
	Depth    int           // RDMA WRITEs in flight
	Idle     poller.IdlePolicy
}

// WriteResult is one RDMA WRITE phase.
type WriteResult struct {
	Size      int     `json:"size"`
	Ops       uint64  `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	BytesSec  float64 `json:"bytes_per_sec"`
}

// VerbsReport is the verbs benchmark's result.
type VerbsReport struct {
	Transport  string        `json:"transport"`
	CPUModel   string        `json:"cpu_model"`
	LogicalCPU int           `json:"logical_cpus"`
	GoVersion  string        `json:"go_version"`
	Reactors   []poller.Pin  `json:"reactors"`
	MsgSize    int           `json:"msg_size"`
	RoundTrip  Latency       `json:"send_recv_round_trip"`
	RTPerSec   float64       `json:"round_trips_per_sec"`
	Writes     []WriteResult `json:"rdma_write"`
	Depth      int           `json:"depth"`
}

// verbsEnd is one side's QP, CQ and registered memory.
type verbsEnd struct {
	pd   verbs.PD
	cq   verbs.CQ
	qp   verbs.QP
	mr   verbs.MR
	reg  *hugemem.Region
	conn verbs.Conn
}

func (v *verbsEnd) close() {
	if v.conn != nil {
		_ = v.conn.Disconnect()
	}
	for _, c := range []interface{ Close() error }{v.qp, v.cq} {
		if c != nil {
			_ = c.Close()
		}
	}
	if v.mr != nil {
		_ = v.mr.Dereg()
	}
	if v.pd != nil {
		_ = v.pd.Close()
	}
	if v.reg != nil {
		_ = v.reg.Close()
	}
}

const verbsMem = 4 << 20

func newVerbsEnd(dev verbs.Device, depth int) (*verbsEnd, error) {
	v := &verbsEnd{}
	var err error
	if v.reg, err = hugemem.Map(hugemem.RegionConfig{Size: verbsMem, Node: -1}); err != nil {
		return nil, err
	}
	if v.pd, err = dev.AllocPD(); err != nil {
		v.close()
		return nil, err
	}
	if v.mr, err = v.pd.RegMR(v.reg.Bytes()[:verbsMem], verbs.AccessLocalWrite|verbs.AccessRemoteWrite|verbs.AccessRemoteRead); err != nil {
		v.close()
		return nil, err
	}
	if v.cq, err = dev.CreateCQ(4 * depth); err != nil {
		v.close()
		return nil, err
	}
	v.qp, err = v.pd.CreateQP(verbs.QPConfig{SendCQ: v.cq, RecvCQ: v.cq, MaxSendWR: depth, MaxRecvWR: depth, MaxSendSGE: 1, MaxRecvSGE: 1})
	if err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

// connectVerbs sets up both ends and connects them.
func connectVerbs(cfg VerbsConfig) (client, server *verbsEnd, err error) {
	cdev, sdev, addr, err := cfg.Open()
	if err != nil {
		return nil, nil, err
	}
	depth := max(cfg.Depth, 2)
	if server, err = newVerbsEnd(sdev, depth); err != nil {
		return nil, nil, err
	}
	if client, err = newVerbsEnd(cdev, depth); err != nil {
		server.close()
		return nil, nil, err
	}
	ln, err := sdev.Listen(addr)
	if err != nil {
		client.close()
		server.close()
		return nil, nil, err
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() {
		req, err := ln.Accept(ctx)
		if err == nil {
			server.conn, err = req.Accept(server.qp, verbs.ConnParam{ResponderResources: 16, InitiatorDepth: 16})
		}
		accepted <- err
	}()
	client.conn, err = cdev.Connect(ctx, addr, client.qp, verbs.ConnParam{ResponderResources: 16, InitiatorDepth: 16, RNRRetryCount: 7})
	if aerr := <-accepted; err == nil {
		err = aerr
	}
	if err != nil {
		client.close()
		server.close()
		return nil, nil, err
	}
	return client, server, nil
}

// RunVerbs measures SEND/RECV round trips, then RDMA WRITE throughput for
// each size.
func RunVerbs(cfg VerbsConfig) (*VerbsReport, error) {
	if cfg.Open == nil || len(cfg.CPUs) == 0 {
		return nil, errors.New("bench: verbs: no transport or no CPUs")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Second
	}
	if cfg.MsgSize <= 0 || cfg.MsgSize > 64<<10 {
		return nil, fmt.Errorf("bench: verbs: message size %d: want 1 to 64 KiB", cfg.MsgSize)
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 16
	}
	for _, s := range cfg.Writes {
		if s <= 0 || s*cfg.Depth > verbsMem {
			return nil, fmt.Errorf("bench: verbs: RDMA WRITE of %d bytes at depth %d does not fit %d bytes", s, cfg.Depth, verbsMem)
		}
	}
	cpus := cfg.CPUs
	if len(cpus) > 2 {
		cpus = cpus[:2]
	}
	client, server, err := connectVerbs(cfg)
	if err != nil {
		return nil, err
	}
	defer client.close()
	defer server.close()
	rep := &VerbsReport{
		Transport: cfg.Transport, CPUModel: cpuid.CPU.BrandName, LogicalCPU: runtime.NumCPU(),
		GoVersion: runtime.Version(), MsgSize: cfg.MsgSize, Depth: cfg.Depth,
	}
	g, err := poller.NewGroup(poller.Config{CPUs: cpus, Idle: cfg.Idle})
	if err != nil {
		return nil, err
	}
	if err := g.Start(); err != nil {
		return nil, err
	}
	defer g.Stop()
	rep.Reactors = g.Pins()
	ra, rb := g.Reactor(0), g.Reactor(g.Len()-1)
	if err := pingPong(cfg, ra, rb, client, server, rep); err != nil {
		return nil, err
	}
	for _, size := range cfg.Writes {
		res, err := writePhase(cfg, ra, client, server, size)
		if err != nil {
			return nil, err
		}
		rep.Writes = append(rep.Writes, res)
	}
	return rep, nil
}

// phase runs f as a poller on r until it reports done or the timeout.
func runPhase(r *poller.Reactor, name string, timeout time.Duration, f func() (poller.Status, bool)) error {
	var done atomic.Bool
	var p *poller.Poller
	ready := make(chan struct{})
	r.Send(func(any) {
		p = r.Register(name, func() poller.Status {
			st, fin := f()
			if fin && !done.Load() {
				done.Store(true)
			}
			return st
		})
		close(ready)
	}, nil)
	<-ready
	deadline := time.Now().Add(timeout)
	for !done.Load() {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	unreg := make(chan struct{})
	r.Send(func(any) { r.Unregister(p); close(unreg) }, nil)
	<-unreg
	if !done.Load() {
		return fmt.Errorf("bench: verbs: %s stalled", name)
	}
	return nil
}

func sge(mr verbs.MR, off, n int) []verbs.SGE {
	return []verbs.SGE{{Addr: mr.Addr() + uint64(off), Len: uint32(n), LKey: mr.LKey()}}
}

func wcErr(side string, wc *verbs.WC) error {
	return fmt.Errorf("bench: verbs: %s completion %d: %v", side, wc.ID, wc.Status)
}

// pingPong: the client SENDs a message, the server answers with one, the
// client records the round trip. Each side keeps a receive posted.
func pingPong(cfg VerbsConfig, ra, rb *poller.Reactor, c, s *verbsEnd, rep *VerbsReport) error {
	n := cfg.MsgSize
	hist := hdrhistogram.New(1, int64(10*time.Second), 3)
	crecv := []verbs.RecvWR{{ID: 1, SGL: sge(c.mr, 0, n)}}
	srecv := []verbs.RecvWR{{ID: 2, SGL: sge(s.mr, 0, n)}}
	csend := []verbs.SendWR{{ID: 3, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: sge(c.mr, n, n)}}
	ssend := []verbs.SendWR{{ID: 4, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: sge(s.mr, n, n)}}
	if _, err := c.qp.PostRecv(crecv); err != nil {
		return err
	}
	if _, err := s.qp.PostRecv(srecv); err != nil {
		return err
	}
	var stop, failed atomic.Bool
	var failure error
	fail := func(err error) { failure = err; failed.Store(true) }
	// The server answers every message, on its own reactor.
	var swc [8]verbs.WC
	var serverDone atomic.Bool
	sp := make(chan *poller.Poller, 1)
	rb.Send(func(any) {
		sp <- rb.Register("verbs-server", func() poller.Status {
			k := s.cq.Poll(swc[:])
			for i := range swc[:k] {
				wc := &swc[i]
				if wc.Status != verbs.WCSuccess {
					if !stop.Load() {
						fail(wcErr("server", wc))
					}
					serverDone.Store(true)
					continue
				}
				if wc.Op == verbs.WCRecv {
					if _, err := s.qp.PostRecv(srecv); err != nil {
						fail(err)
					}
					if _, err := s.qp.PostSend(ssend); err != nil {
						fail(err)
					}
				}
			}
			if k > 0 {
				return poller.Busy
			}
			return poller.Idle
		})
	}, nil)
	serverPoller := <-sp
	defer func() {
		done := make(chan struct{})
		rb.Send(func(any) { rb.Unregister(serverPoller); close(done) }, nil)
		<-done
	}()
	var cwc [8]verbs.WC
	var sentAt int64
	inFlight := false
	awaiting := 0 // completions the current round trip waits for: send and receive
	start := time.Now()
	end := start.Add(cfg.Duration)
	err := runPhase(ra, "verbs-client", cfg.Duration+10*time.Second, func() (poller.Status, bool) {
		if failed.Load() {
			return poller.Idle, true
		}
		if !inFlight {
			if time.Now().After(end) {
				return poller.Idle, true
			}
			sentAt = poller.Monotonic()
			if _, err := c.qp.PostSend(csend); err != nil {
				fail(err)
				return poller.Idle, true
			}
			inFlight, awaiting = true, 2
		}
		k := c.cq.Poll(cwc[:])
		for i := range cwc[:k] {
			wc := &cwc[i]
			if wc.Status != verbs.WCSuccess {
				fail(wcErr("client", wc))
				return poller.Idle, true
			}
			if wc.Op == verbs.WCRecv {
				if _, err := c.qp.PostRecv(crecv); err != nil {
					fail(err)
					return poller.Idle, true
				}
			}
			awaiting--
		}
		if inFlight && awaiting == 0 {
			_ = hist.RecordValue(poller.Monotonic() - sentAt)
			inFlight = false
		}
		return poller.Busy, false
	})
	stop.Store(true)
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	if failed.Load() {
		return failure
	}
	rep.RoundTrip = LatencyOf(hist)
	rep.RTPerSec = float64(hist.TotalCount()) / elapsed.Seconds()
	return nil
}

// writePhase keeps Depth RDMA WRITEs of size bytes in flight from the
// client into the server's region (every one signaled) for the duration.
func writePhase(cfg VerbsConfig, ra *poller.Reactor, c, s *verbsEnd, size int) (WriteResult, error) {
	depth := cfg.Depth
	wrs := make([]verbs.SendWR, depth)
	for i := range wrs {
		wrs[i] = verbs.SendWR{
			ID: uint64(i), Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled,
			SGL: sge(c.mr, i*size, size), RemoteAddr: s.mr.Addr() + uint64(i*size), RKey: s.mr.RKey(),
		}
	}
	wcs := make([]verbs.WC, depth)
	var ops uint64
	var failure error
	posted, inFlight := 0, 0
	var began, ended int64
	end := time.Now().Add(cfg.Duration)
	err := runPhase(ra, "verbs-write", cfg.Duration+10*time.Second, func() (poller.Status, bool) {
		if began == 0 {
			began = poller.Monotonic()
		}
		stopping := time.Now().After(end)
		if !stopping && inFlight < depth {
			// Post the free slots as one chain.
			free := depth - inFlight
			first := posted % depth
			k := min(free, depth-first)
			n, err := c.qp.PostSend(wrs[first : first+k])
			if err != nil && !errors.Is(err, verbs.ErrQueueFull) {
				failure = err
				return poller.Idle, true
			}
			posted += n
			inFlight += n
		}
		k := c.cq.Poll(wcs)
		for i := range wcs[:k] {
			if wcs[i].Status != verbs.WCSuccess {
				failure = wcErr("client", &wcs[i])
				return poller.Idle, true
			}
		}
		inFlight -= k
		ops += uint64(k)
		if stopping && inFlight == 0 {
			ended = poller.Monotonic()
			return poller.Idle, true
		}
		return poller.Busy, false
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		return WriteResult{}, err
	}
	secs := float64(ended-began) / 1e9
	res := WriteResult{Size: size, Ops: ops}
	if secs > 0 {
		res.OpsPerSec = float64(ops) / secs
		res.BytesSec = res.OpsPerSec * float64(size)
	}
	return res, nil
}

// WriteText prints the report.
func (r *VerbsReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "usrpt verbs benchmark — transport %s, %s, %d logical CPUs, %s\n", r.Transport, r.CPUModel, r.LogicalCPU, r.GoVersion)
	for i, p := range r.Reactors {
		side := "client"
		if i > 0 {
			side = "server"
		}
		fmt.Fprintf(tw, "  %s: reactor %d on CPU %d (observed %d)\n", side, p.Reactor, p.CPU, p.Observed)
	}
	l := r.RoundTrip
	fmt.Fprintf(tw, "\nSEND/RECV round trip, %d-byte messages: %s round trips/s\n", r.MsgSize, si(r.RTPerSec))
	fmt.Fprintf(tw, "  lat (ns): min=%d, avg=%.0f, max=%d\n", l.Min, l.Mean, l.Max)
	fmt.Fprintf(tw, "  percentiles (ns): 50th=%d, 90th=%d, 99th=%d, 99.9th=%d, 99.99th=%d\n", l.P50, l.P90, l.P99, l.P999, l.P9999)
	fmt.Fprintf(tw, "\nRDMA WRITE, %d in flight\n  size\tops\tops/s\tbandwidth\n", r.Depth)
	for _, x := range r.Writes {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s/s\n", humanize.IBytes(uint64(x.Size)), x.Ops, si(x.OpsPerSec), humanize.IBytes(uint64(x.BytesSec)))
	}
	return tw.Flush()
}
