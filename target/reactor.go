package target

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
)

// tmfLocalBit marks a Task.User that names a tmfLocal rather than a request.
const tmfLocalBit = 1 << 63

// reactor is one core's share of the target: the channels placed on it,
// its Executor (one queue per LU), its data buffers. Everything here is
// owned by the reactor's goroutine; the control plane reaches it only
// through messages (poller.Reactor.Send, Group.Call).
type reactor struct {
	t    *Target
	pr   *poller.Reactor
	id   int
	exec *scsi.Executor

	region       *hugemem.Region
	small, large *hugemem.Pool
	bufWait      reqList // requests waiting for data buffers, in arrival order
	kick         bool    // a buffer came back: retry bufWait

	chans  []*channel
	reqTab []*request // Task.User → request
	freeID []uint32
	tmfs   []*tmfLocal // Task.User&^tmfLocalBit → task management part
	outbox []*tmfFan   // answers to other reactors that did not fit their inbox yet
	tasks  [64]*scsi.Task

	lunStats []LUNStats   // indexed by LUN number
	now      int64        // the reactor clock: at the start of the iteration, then before the completions
	gone     ChannelStats // counters of the channels drained here

	nchan int // channels placed here (control plane, under Target.mu)
}

// LUNStats are one LUN's counters, per reactor and summed by Stats.
type LUNStats struct {
	Commands   uint64 `json:"commands"`
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
	Errors     uint64 `json:"errors"` // not GOOD
	// Latency of commands from their receive to their completion by the
	// SCSI core, in LatencyBuckets: Latency[i] counts those of at most
	// LatencyBounds()[i] ns (the last bucket: everything above). The
	// clock is read twice per reactor iteration, not per command, so a
	// command is timed from the start of the iteration that received it
	// to the engine poll that completed it.
	Latency   [LatencyBuckets]uint64 `json:"latency_buckets"`
	LatencyNs uint64                 `json:"latency_sum_ns"`
}

// LatencyBuckets is the number of latency buckets: powers of two from
// 1 µs (2^10 ns) to 2^32 ns (4.3 s), and one for longer.
const LatencyBuckets = 24

// LatencyBounds returns the upper bound of each latency bucket in ns; the
// last is math.MaxUint64.
func LatencyBounds() [LatencyBuckets]uint64 {
	var b [LatencyBuckets]uint64
	for i := range b {
		b[i] = 1 << (10 + i)
	}
	b[LatencyBuckets-1] = math.MaxUint64
	return b
}

func (s *LUNStats) observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	// Bucket i holds (2^(9+i), 2^(10+i)]; bits.Len gives the power above.
	i := 0
	if ns > 1<<10 {
		i = bits.Len64(uint64(ns-1)) - 10
	}
	s.Latency[min(i, LatencyBuckets-1)]++
	s.LatencyNs += uint64(ns)
}

func (s *LUNStats) add(o *LUNStats) {
	s.Commands += o.Commands
	s.ReadBytes += o.ReadBytes
	s.WriteBytes += o.WriteBytes
	s.Errors += o.Errors
	for i := range s.Latency {
		s.Latency[i] += o.Latency[i]
	}
	s.LatencyNs += o.LatencyNs
}

func newReactor(t *Target, pr *poller.Reactor) (*reactor, error) {
	cfg := &t.cfg
	smallLen := roundUp(cfg.SmallBuf, 4096) * cfg.SmallBufs
	largeLen := roundUp(cfg.MaxDataLen, 4096) * cfg.LargeBufs
	region, err := hugemem.Map(hugemem.RegionConfig{Size: smallLen + largeLen, Pages: cfg.Pages, Node: -1})
	if err != nil {
		return nil, fmt.Errorf("target: reactor %d buffers: %w", pr.ID(), err)
	}
	rx := &reactor{t: t, pr: pr, id: pr.ID(), region: region}
	if rx.small, err = hugemem.NewPool(region, 0, cfg.SmallBuf, cfg.SmallBufs); err == nil {
		rx.large, err = hugemem.NewPool(region, smallLen, cfg.MaxDataLen, cfg.LargeBufs)
	}
	if err == nil {
		rx.exec, err = scsi.NewExecutor(cfg.ReactorDepth)
	}
	if err == nil {
		// startFence carries PREEMPT AND ABORT's aborts to every reactor.
		rx.exec.AcceptFences()
	}
	if err != nil {
		_ = region.Close()
		return nil, fmt.Errorf("target: reactor %d: %w", pr.ID(), err)
	}
	pr.Register("srpt", rx.poll)
	return rx, nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// poll is the reactor's one poller: completions of every channel, then
// the engines, then whatever waited for resources, then one post of each
// channel's batch.
func (rx *reactor) poll() poller.Status {
	busy := false
	rx.now = rx.pr.Now()
	for _, ch := range rx.chans {
		if ch.poll() {
			busy = true
		}
	}
	// The clock once more, for the completions: two reads per iteration,
	// whatever the number of commands.
	rx.now = rx.pr.Now()
	for {
		n := rx.exec.Poll(rx.tasks[:])
		for _, t := range rx.tasks[:n] {
			rx.taskDone(t)
		}
		if n > 0 {
			busy = true
		}
		if n < len(rx.tasks) {
			break
		}
	}
	if rx.kick {
		rx.retryBuffers()
	}
	gone := false
	for _, ch := range rx.chans {
		if ch.readWait.n > 0 || ch.sqWait.n > 0 {
			ch.retryWaits()
		}
		if ch.delta > 0 {
			ch.maybeCredReq()
		}
		ch.flush()
		if ch.state == chClosing && ch.drained() {
			gone = true
		}
	}
	if gone {
		rx.removeDrained()
	}
	if len(rx.outbox) > 0 {
		rx.flushOutbox()
	}
	if busy {
		return poller.Busy
	}
	return poller.Idle
}

// taskDone takes a finished task back from the Executor.
func (rx *reactor) taskDone(t *scsi.Task) {
	if t.User&tmfLocalBit != 0 {
		i := t.User &^ tmfLocalBit
		tl := rx.tmfs[i]
		rx.tmfs[i] = nil
		rx.answerFan(tl.fan)
		return
	}
	r := rx.reqTab[t.User]
	r.ch.executed(r)
}

// countLUN adds r's finished command to its LUN's counters.
func (rx *reactor) countLUN(r *request) {
	n, ok := scsi.DecodeLUN(r.task.LUN)
	if !ok || int(n) >= len(rx.lunStats) {
		return
	}
	s := &rx.lunStats[n]
	s.Commands++
	s.observe(rx.now - r.t0)
	if r.task.Status != scsi.StatusGood {
		s.Errors++
		return
	}
	if r.dataIn {
		s.ReadBytes += uint64(r.task.Xfer)
	} else {
		s.WriteBytes += uint64(r.dataLen)
	}
}

// --- buffers --------------------------------------------------------------

// needBuffer gets r its data buffer (and the buffer for an external
// descriptor table), or queues it behind those already waiting.
func (rx *reactor) needBuffer(r *request) {
	r.state = reqNeedBuffer
	if rx.bufWait.n > 0 || !rx.takeBuffers(r) {
		r.ch.stats.BufferWaits++
		rx.bufWait.push(r)
		return
	}
	r.ch.gotBuffer(r)
}

func (rx *reactor) takeBuffers(r *request) bool {
	if r.table.Len != 0 && r.tblPool == nil {
		b, ok := rx.small.Get()
		if !ok {
			return false
		}
		r.tblPool, r.tblBuf = rx.small, b
	}
	if r.dataLen > 0 && r.pool == nil {
		p := rx.small
		if r.dataLen > p.BufSize() {
			p = rx.large
		}
		b, ok := p.Get()
		if !ok {
			return false
		}
		r.pool, r.buf, r.data = p, b, b.Data[:r.dataLen]
	}
	return true
}

func (rx *reactor) retryBuffers() {
	rx.kick = false
	for rx.bufWait.head != nil && rx.takeBuffers(rx.bufWait.head) {
		r := rx.bufWait.pop()
		r.ch.gotBuffer(r)
	}
}

func (rx *reactor) putBuffer(r *request) {
	if r.pool != nil {
		r.pool.Put(r.buf)
		r.pool, r.buf = nil, hugemem.Buf{}
		rx.kick = true
	}
}

func (rx *reactor) putTable(r *request) {
	if r.tblPool != nil {
		r.tblPool.Put(r.tblBuf)
		r.tblPool, r.tblBuf = nil, hugemem.Buf{}
		rx.kick = true
	}
}

// retryWaits gives waiting requests the read and send slots that came back.
func (ch *channel) retryWaits() {
	for r := ch.readWait.head; r != nil && ch.rdFree > 0 && ch.sqFree > 0; {
		next := r.next
		ch.postReads(r)
		if r.listed == &ch.readWait {
			break
		}
		r = next
	}
	for r := ch.sqWait.head; r != nil && ch.sqFree > 1; {
		next := r.next
		ch.respond(r)
		if r.listed == &ch.sqWait {
			break
		}
		r = next
	}
}

// --- channels -------------------------------------------------------------

// addChannel runs on the reactor when a login placed ch here.
func addChannel(arg any) {
	ch := arg.(*channel)
	rx := ch.rx
	for i := range ch.reqs {
		r := &ch.reqs[i]
		var id uint32
		if k := len(rx.freeID); k > 0 {
			id = rx.freeID[k-1]
			rx.freeID = rx.freeID[:k-1]
			rx.reqTab[id] = r
		} else {
			id = uint32(len(rx.reqTab))
			rx.reqTab = append(rx.reqTab, r)
		}
		r.id = id
		r.task.User = uint64(id)
	}
	rx.chans = append(rx.chans, ch)
}

// peerGone runs on the reactor when ch's connection ended.
func peerGone(arg any) {
	ch := arg.(*channel)
	if ch.state == chLive {
		ch.close(0, false)
	}
}

// closeChannel runs on the reactor to end ch with an SRP_T_LOGOUT.
type closeMsg struct {
	ch     *channel
	reason srp.TLogoutReason
}

func closeChannel(arg any) {
	m := arg.(*closeMsg)
	m.ch.close(m.reason, true)
}

// removeDrained hands drained channels back to the control plane.
func (rx *reactor) removeDrained() {
	k := 0
	for _, ch := range rx.chans {
		if ch.state == chClosing && ch.drained() {
			ch.state = chGone
			for i := range ch.reqs {
				id := ch.reqs[i].id
				rx.reqTab[id] = nil
				rx.freeID = append(rx.freeID, id)
			}
			stats := ch.stats
			// The counters move to gone in the same step that takes
			// the channel off rx.chans: Stats never counts them twice
			// or not at all.
			rx.gone.add(&stats)
			go rx.t.channelGone(ch, stats)
			continue
		}
		rx.chans[k] = ch
		k++
	}
	clear(rx.chans[k:])
	rx.chans = rx.chans[:k]
}

// --- task management across reactors --------------------------------------

// tmfFan is one task management function spread over every reactor: the
// origin runs it in full, the others as TMFLocal. It is answered when
// every part is back.
type tmfFan struct {
	origin  *reactor
	req     *request
	fn      scsi.TMF
	nx      *nexus
	lun     uint64
	tag     uint64
	fence   *scsi.Fence // TMFFence: the abort half of r's PREEMPT AND ABORT
	resp    scsi.TMFResponse
	pending int // parts not back yet; touched only on the origin
}

// startFence carries out the abort half of r's PREEMPT AND ABORT on every
// reactor, this one included (each as TMFLocal), and answers r, the
// PERSISTENT RESERVE OUT command, when all are back.
func (rx *reactor) startFence(r *request, f *scsi.Fence) {
	r.state = reqTMF
	fan := &tmfFan{origin: rx, req: r, fn: scsi.TMFFence, nx: r.ch.nx, lun: r.task.LUN, fence: f}
	r.tmf = fan
	for _, o := range rx.t.rs {
		fan.pending++
		if o == rx {
			runTMFLocal(&tmfLocal{fan: fan, rx: o})
			continue
		}
		if !o.pr.Send(runTMFLocal, &tmfLocal{fan: fan, rx: o}) {
			fan.pending--
			rx.t.tmfDropped.Add(1)
		}
	}
}

// tmfLocal is the part of a tmfFan that runs on another reactor.
type tmfLocal struct {
	fan  *tmfFan
	rx   *reactor
	task scsi.Task
}

// startTMF runs r's task management function here and on every other
// reactor: tasks of the I_T nexus (or of every nexus, for CLEAR TASK SET
// and LUN RESET) may be anywhere.
func (rx *reactor) startTMF(r *request) {
	t := &r.task
	fan := &tmfFan{origin: rx, req: r, fn: t.TMF, nx: r.ch.nx, lun: t.LUN, tag: t.RefTag, pending: 1}
	r.tmf = fan
	rx.abortWaiting(fan)
	for _, o := range rx.t.rs {
		if o == rx {
			continue
		}
		fan.pending++
		if !o.pr.Send(runTMFLocal, &tmfLocal{fan: fan, rx: o}) {
			// The reactor's inbox is full of control messages: it cannot
			// take part. Its tasks, if any, finish normally.
			fan.pending--
			rx.t.tmfDropped.Add(1)
		}
	}
	rx.exec.Start(t)
}

// abortWaiting aborts, on this reactor, the tasks fan's function covers
// that have not reached the Executor.
func (rx *reactor) abortWaiting(fan *tmfFan) {
	if fan.fn == scsi.TMFClearACA {
		return
	}
	for _, ch := range rx.chans {
		if ch.state == chLive {
			ch.abortWaiting(fan)
		}
	}
}

func runTMFLocal(arg any) {
	tl := arg.(*tmfLocal)
	rx := tl.rx
	rx.abortWaiting(tl.fan)
	i := len(rx.tmfs)
	for k, p := range rx.tmfs {
		if p == nil {
			i = k
			break
		}
	}
	if i == len(rx.tmfs) {
		rx.tmfs = append(rx.tmfs, tl)
	} else {
		rx.tmfs[i] = tl
	}
	f := tl.fan
	tl.task = scsi.Task{Nexus: f.nx.sn, LUN: f.lun, TMF: f.fn, RefTag: f.tag, TMFLocal: true, Fence: f.fence, User: tmfLocalBit | uint64(i)}
	rx.exec.Start(&tl.task)
}

// answerFan reports a part of fan done to its origin.
func (rx *reactor) answerFan(fan *tmfFan) {
	if fan.origin == rx {
		fan.partDone()
		return
	}
	if !fan.origin.pr.Send(fanPartDone, fan) {
		rx.outbox = append(rx.outbox, fan)
	}
}

func (rx *reactor) flushOutbox() {
	k := 0
	for _, fan := range rx.outbox {
		if !fan.origin.pr.Send(fanPartDone, fan) {
			rx.outbox[k] = fan
			k++
		}
	}
	clear(rx.outbox[k:])
	rx.outbox = rx.outbox[:k]
}

func fanPartDone(arg any) { arg.(*tmfFan).partDone() }

// partDone runs on the origin for each part that is back.
func (fan *tmfFan) partDone() {
	fan.pending--
	if fan.pending > 0 {
		return
	}
	r := fan.req
	if fan.fn == scsi.TMFFence {
		r.tmf = nil
		if r.ch.state != chLive {
			r.ch.dropResponse(r)
			return
		}
		r.ch.answer(r) // the PERSISTENT RESERVE OUT's own status
		return
	}
	r.ch.tmfAnswered(r, fan.resp)
}
