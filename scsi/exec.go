package scsi

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/usrpt/usrpt/ioengine"
)

// Attr is a task attribute (SAM-5 8.6).
type Attr uint8

const (
	AttrSimple      Attr = 0
	AttrHeadOfQueue Attr = 1
	AttrOrdered     Attr = 2
	AttrACA         Attr = 4 // refused: NACA is not supported, so no ACA is ever established
)

// Resid says which way a transfer differed from the initiator's expected
// length (SAM-5 5.3.2, SRP_RSP DIOVER/DIUNDER, DOOVER/DOUNDER).
type Resid uint8

const (
	ResidNone  Resid = 0
	ResidOver  Resid = 1 // the command wanted more than DataLen; Residual bytes were not moved
	ResidUnder Resid = 2 // the command moved Residual bytes less than DataLen
)

// Task is one SCSI command, or one task management function when TMF is
// set, and, once complete, its outcome. The caller owns it and its Data;
// between Start and the Poll that returns it the Executor holds both.
type Task struct {
	Nexus *Nexus // the I_T nexus it came through; required
	LUN   uint64 // the 8-byte SAM LUN, as in SRP_CMD (see DecodeLUN)
	Tag   uint64 // the initiator's task tag, which ABORT TASK names
	CDB   []byte // 1 to MaxCDBLen bytes
	Attr  Attr
	// Data is the buffer: for a write, the data-out, already filled; for a
	// read or an emulated command, where the data-in goes. It must hold at
	// least DataLen bytes.
	Data []byte
	// DataLen is the initiator's expected transfer length in bytes.
	DataLen int
	User    uint64 // the caller's cookie

	// TMF, when not 0, makes the task a task management function on LUN
	// (and RefTag, for ABORT TASK) instead of a command.
	TMF    TMF
	RefTag uint64
	// TMFLocal limits the function to the tasks in this Executor and skips
	// its side effects (unit attentions, reservation release). A transport
	// whose nexus spans reactors starts the function normally on one
	// reactor and as TMFLocal on the others, and answers when all are back.
	TMFLocal bool

	// Results.
	Status   Status
	Sense    [MaxSenseLen]byte
	SenseLen int
	Xfer     int // data-in bytes written to Data
	Resid    Resid
	Residual uint32
	Reason   Reason // why, when Status is CHECK CONDITION (for counters)
	// Aborted says a task management function ended the task: Status is
	// TASK ABORTED and the transport sends no response for it (TAS=0),
	// only returns its credit.
	Aborted bool
	// Response is a task management function's service response.
	Response TMFResponse
	// Fence, on a finished PERSISTENT RESERVE OUT with PREEMPT AND ABORT,
	// is the abort the transport must carry out on every Executor before
	// it answers (see Fence); with TMF TMFFence it is that abort.
	Fence *Fence

	// The executor's bookkeeping, valid from Start to completion.
	b       *binding
	u       *unit
	cmd     command
	slot    int32 // index in Executor.slots while it holds one, else -1
	flags   taskFlags
	step    uint8  // progress of a multi-request command (sbc.go)
	pos     uint64 // blocks done, or descriptor index (sbc.go)
	cawSlot int8   // COMPARE AND WRITE range held (sbc.go), -1 when none
}

type taskFlags uint8

const (
	tfEnabled  taskFlags = 1 << iota // counted in its unit's task set
	tfAborted                        // a TMF has aborted it
	tfWriting                        // counted in unit.writes (sbc.go)
	tfParked                         // waiting in unit.parked for a COMPARE AND WRITE range
	tfInEngine                       // its slot's request is queued or in the engine
)

// unit is one LU as one Executor drives it: the reactor's engine queue,
// and the task set of the commands that came to the LU through it.
type unit struct {
	lu      *LU
	q       ioengine.Queue
	backlog []*ioengine.Request // accepted by Start, not yet by the queue

	// Task set (SAM-5 8.6): enabled counts tasks started and not done,
	// ordered the ORDERED ones among them; blocked waits in order.
	enabled int
	ordered int
	blocked []*Task
	// parked tasks wait for a COMPARE AND WRITE range (sbc.go).
	parked []*Task

	// Read by the COMPARE AND WRITE of other reactors (sbc.go).
	writes atomic.Int32            // write commands of this unit in progress
	acks   [cawSlots]atomic.Uint64 // per CAW slot: the generation this unit has cleared
}

type slot struct {
	req  ioengine.Request
	task *Task
}

// Executor runs tasks on one reactor: it is not safe for concurrent use.
type Executor struct {
	units   map[*LU]*unit
	order   []*unit // attach order, for polling
	slots   []slot
	free    []int32
	done    []*Task
	doneAt  int
	reqs    []*ioengine.Request
	scratch []byte  // emulated data-in
	chunk   []byte  // WRITE SAME pattern, VERIFY read-back (sbc.go)
	chunkBy *Task   // the task using chunk
	cawBuf  []byte  // COMPARE AND WRITE read (sbc.go)
	cawBy   *Task   // the task using cawBuf
	tmfs    []*Task // task management functions waiting for aborted tasks
	aborted int     // aborted tasks still in an engine
	retry   []*Task // reused by Poll to retry parked tasks
	fences  bool    // the transport carries out Task.Fence (AcceptFences)
}

var errNoLU = errors.New("scsi: executor: LU not attached")

// NewExecutor makes an executor with at most maxInflight tasks in engines
// at once (beyond it, Start answers TASK SET FULL). Attach its LUs before
// the first task.
func NewExecutor(maxInflight int) (*Executor, error) {
	if maxInflight <= 0 {
		return nil, fmt.Errorf("scsi: executor: max inflight %d: want 1 or more", maxInflight)
	}
	e := &Executor{units: make(map[*LU]*unit)}
	e.slots = make([]slot, maxInflight)
	e.free = make([]int32, maxInflight)
	for i := range e.free {
		e.free[i] = int32(maxInflight - 1 - i)
		e.slots[i].req.User = uint64(i)
	}
	e.done = make([]*Task, 0, 2*maxInflight)
	e.reqs = make([]*ioengine.Request, maxInflight)
	e.scratch = make([]byte, emulateMax)
	e.chunk = alignedBuf(chunkBytes)
	e.cawBuf = alignedBuf(cawBytes)
	return e, nil
}

// alignedBuf is n bytes at a 4096-byte boundary, so O_DIRECT engines take
// it. It comes from the Go heap, which does not move.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % 4096); r != 0 {
		off = 4096 - r
	}
	return b[off : off+n : off+n]
}

// Attach makes lu runnable here through q, the reactor's queue on the LU's
// engine. Call it on the reactor, before any task for lu.
func (e *Executor) Attach(lu *LU, q ioengine.Queue) error {
	if lu == nil || q == nil {
		return errors.New("scsi: executor: attach: no LU or no queue")
	}
	if e.units[lu] != nil {
		return fmt.Errorf("scsi: executor: LU %s attached twice", lu.cfg.Serial)
	}
	u := &unit{lu: lu, q: q, backlog: make([]*ioengine.Request, 0, len(e.slots))}
	u.blocked = make([]*Task, 0, len(e.slots))
	u.parked = make([]*Task, 0, 8)
	e.units[lu] = u
	e.order = append(e.order, u)
	lu.caw.addUnit(u)
	return nil
}

// Detach lets go of lu, returning its queue for the caller to close. It
// fails while tasks for the LU are still here; abort them (LUN RESET with
// TMFLocal) and poll until they are back first.
func (e *Executor) Detach(lu *LU) (ioengine.Queue, error) {
	u := e.units[lu]
	if u == nil {
		return nil, errNoLU
	}
	if u.enabled > 0 || len(u.blocked) > 0 || len(u.parked) > 0 || u.q.Inflight() > 0 {
		return nil, fmt.Errorf("scsi: executor: LU %s still has tasks", lu.cfg.Serial)
	}
	lu.caw.removeUnit(u)
	delete(e.units, lu)
	e.order = slices.DeleteFunc(e.order, func(x *unit) bool { return x == u })
	return u.q, nil
}

// Inflight is the number of tasks holding an engine slot.
func (e *Executor) Inflight() int { return len(e.slots) - len(e.free) }

// Pending is the number of finished tasks waiting for Poll.
func (e *Executor) Pending() int { return len(e.done) - e.doneAt }

// finish hands t back through Poll, gives back what it held (engine slot,
// buffers, COMPARE AND WRITE range) and lets the task set move on.
func (e *Executor) finish(t *Task) {
	e.releaseSlot(t)
	if e.chunkBy == t {
		e.chunkBy = nil
	}
	if e.cawBy == t {
		e.cawBy = nil
	}
	if t.flags&tfWriting != 0 {
		t.flags &^= tfWriting
		t.u.writes.Add(-1)
	}
	if t.cawSlot >= 0 {
		t.b.lu.caw.release(t)
	}
	e.done = append(e.done, t)
	if t.flags&tfEnabled != 0 {
		t.flags &^= tfEnabled
		u := t.u
		u.enabled--
		if t.Attr == AttrOrdered {
			u.ordered--
		}
		e.unblock(u)
	}
}

// fail completes t with CHECK CONDITION and sense s, in the format the LU
// asks for.
func (e *Executor) fail(t *Task, s Sense) {
	t.Status = StatusCheckCondition
	t.Reason = s.Reason
	if t.b != nil && t.b.lu.dsense.Load() {
		t.SenseLen = PutDescriptor(t.Sense[:], s)
	} else {
		t.SenseLen = PutFixed(t.Sense[:], s)
	}
	t.Xfer = 0
	t.Resid, t.Residual = ResidNone, 0
	if t.DataLen > 0 {
		t.Resid, t.Residual = ResidUnder, uint32(t.DataLen)
	}
	e.finish(t)
}

// status completes t with a status that carries no sense.
func (e *Executor) status(t *Task, s Status) {
	t.Status = s
	if t.DataLen > 0 {
		t.Resid, t.Residual = ResidUnder, uint32(t.DataLen)
	}
	e.finish(t)
}

// good completes t with GOOD, having moved xfer bytes where the command
// wanted want.
func (e *Executor) good(t *Task, xfer, want int) {
	t.Status = StatusGood
	t.Reason = ReasonNone
	t.Xfer = xfer
	if xfer == 0 && want == 0 {
		// A command that took data-out took what its CDB asked for: its
		// residual is against that, not against nothing.
		want = dataOutLen(t)
	}
	setResid(t, want)
	e.finish(t)
}

// dataOutLen is the data-out length t's CDB asks for, in bytes; 0 for a
// command without data-out.
func dataOutLen(t *Task) int {
	c := &t.cmd
	bs := 0
	if t.b != nil {
		bs = t.b.lu.blockSize
	}
	switch c.kind {
	case kPROut, kModeSelect, kUnmap:
		return int(c.paramLen)
	case kWriteSame:
		return bs
	case kCAW:
		return 2 * int(c.blocks) * bs
	case kWrite, kWriteVerify:
		return int(c.blocks) * bs
	case kVerify:
		switch c.bytchk {
		case 1:
			return int(c.blocks) * bs
		case 3:
			return bs
		}
	}
	return 0
}

// abortDone completes an aborted task: no status goes to the initiator.
func (e *Executor) abortDone(t *Task) {
	t.Status = StatusTaskAborted
	t.Aborted = true
	t.Xfer = 0
	e.finish(t)
}

func setResid(t *Task, want int) {
	switch {
	case want > t.DataLen:
		t.Resid, t.Residual = ResidOver, uint32(want-t.DataLen)
	case want < t.DataLen:
		t.Resid, t.Residual = ResidUnder, uint32(t.DataLen-want)
	default:
		t.Resid, t.Residual = ResidNone, 0
	}
}

// Well-known logical unit addresses (SPC-4 8.2).
const wlunReportLUNs = 0xC101_0000_0000_0000

// Start begins t. It never blocks: a task that needs no I/O, or that fails
// its checks, is complete at once; the rest wait for the task set rules or
// go to the LU's engine. Either way the task comes back from Poll, exactly
// once.
func (e *Executor) Start(t *Task) {
	t.Status, t.SenseLen, t.Xfer, t.Resid, t.Residual, t.Reason = StatusGood, 0, 0, ResidNone, 0, ReasonNone
	t.Aborted, t.Response = false, 0
	t.b, t.u, t.slot, t.flags, t.step, t.pos, t.cawSlot = nil, nil, -1, 0, 0, 0, -1
	if t.Nexus == nil {
		panic("scsi: Task without a Nexus")
	}
	if t.TMF != 0 {
		e.startTMF(t)
		return
	}
	wlun := t.LUN == wlunReportLUNs
	if n, ok := DecodeLUN(t.LUN); ok {
		t.b = t.Nexus.luns.Load().find(n)
	}
	if len(t.CDB) == 0 || len(t.CDB) > MaxCDBLen || t.DataLen < 0 || len(t.Data) < t.DataLen {
		// The transport gave us a command we cannot even read: SRP
		// ADDITIONAL CDB LENGTH beyond 16, or a buffer shorter than the
		// expected length.
		e.fail(t, Sense{Reason: ReasonInvalidFieldIU})
		return
	}
	var c [MaxCDBLen]byte
	copy(c[:], t.CDB)
	op := Opcode(c[0])
	if t.b != nil && e.unitAttention(t, op) {
		return
	}
	var lu *LU
	if t.b != nil {
		lu = t.b.lu
	}
	cmd, s, ok := decode(lu, wlun, &c)
	if !ok {
		e.fail(t, s)
		return
	}
	t.cmd = cmd
	if lu == nil {
		e.execute(t) // INQUIRY, REPORT LUNS, REQUEST SENSE with no LU
		return
	}
	if t.Attr != AttrSimple && t.Attr != AttrOrdered && t.Attr != AttrHeadOfQueue {
		e.fail(t, Sense{Reason: ReasonInvalidFieldIU}) // ACA and reserved values
		return
	}
	if lu.prConflict(t.b.n, &t.cmd) {
		e.status(t, StatusReservationConflict)
		return
	}
	u := e.units[lu]
	if u == nil {
		// The nexus maps an LU this reactor has not attached: the target
		// is mid-way through adding it.
		e.fail(t, Sense{Reason: ReasonNotReady})
		return
	}
	t.u = u
	if !e.canEnable(u, t.Attr, len(u.blocked) == 0) {
		u.blocked = append(u.blocked, t)
		return
	}
	e.enable(t)
}

// unitAttention reports a pending unit attention for t instead of running
// it (SAM-5 5.14, SPC-4 table 46) and says whether it did. INQUIRY neither
// reports nor clears one; REPORT LUNS clears REPORTED LUNS DATA HAS
// CHANGED and runs; REQUEST SENSE returns the condition as its data.
func (e *Executor) unitAttention(t *Task, op Opcode) bool {
	b := t.b
	if b.ua.Load() == 0 {
		return false
	}
	switch op {
	case Inquiry:
		return false
	case ReportLUNs:
		for _, x := range b.n.luns.Load().bs {
			x.clearUA(UALUNsChanged)
		}
		return false
	case RequestSense:
		return false // answered from the pending conditions in execute
	}
	ua := b.takeUA()
	if ua == 0 {
		return false // another reactor took it first
	}
	e.fail(t, Sense{Reason: ua.Reason()})
	return true
}

// canEnable applies the task set rules (SAM-5 8.6, as LIO's
// target_handle_task_attr): HEAD OF QUEUE starts at once; ORDERED waits for
// every older task; SIMPLE waits behind an ORDERED one. first says nothing
// older is still blocked.
func (e *Executor) canEnable(u *unit, a Attr, first bool) bool {
	switch a {
	case AttrHeadOfQueue:
		return true
	case AttrOrdered:
		return first && u.enabled == 0
	}
	return first && u.ordered == 0
}

func (e *Executor) enable(t *Task) {
	u := t.u
	t.flags |= tfEnabled
	u.enabled++
	if t.Attr == AttrOrdered {
		u.ordered++
	}
	e.execute(t)
}

// unblock enables the blocked tasks the rules now allow, oldest first.
func (e *Executor) unblock(u *unit) {
	for len(u.blocked) > 0 && e.canEnable(u, u.blocked[0].Attr, true) {
		t := u.blocked[0]
		n := copy(u.blocked, u.blocked[1:])
		u.blocked[n] = nil
		u.blocked = u.blocked[:n]
		e.enable(t) // may finish t at once and call unblock again: harmless
	}
}

// execute runs a decoded command.
func (e *Executor) execute(t *Task) {
	cmd := &t.cmd
	switch cmd.kind {
	case kRead, kWrite:
		e.startRW(t)
	case kSync:
		if !t.b.lu.wce.Load() {
			e.good(t, 0, 0) // write-through: nothing is held back
			return
		}
		e.submit(t, ioengine.OpFlush, 0, 0, nil)
	case kVerify, kWriteVerify, kUnmap, kWriteSame, kCAW:
		e.startSBC(t)
	case kTUR, kStartStop, kPreventAllow:
		e.good(t, 0, 0)
	case kPRIn, kPROut, kReserve, kRelease:
		e.execPR(t)
	case kModeSelect, kMaintIn:
		e.execSPC(t)
	default:
		e.emulate(t)
	}
}

// startRW checks the transfer against the initiator's expected length and
// queues the I/O.
func (e *Executor) startRW(t *Task) {
	cmd := &t.cmd
	bs := t.b.lu.blockSize
	want := int(cmd.blocks) * bs
	n := want
	if t.DataLen != want {
		// Like LIO's target_cmd_size_check: a write must say exactly what
		// it sends; a read may be cut to the expected length or padded
		// short, in whole blocks, and reports the residual.
		if cmd.kind == kWrite || t.DataLen%bs != 0 {
			e.fail(t, Sense{Reason: ReasonInvalidFieldIU})
			return
		}
		n = min(want, t.DataLen)
	}
	if n == 0 {
		e.good(t, 0, want)
		return
	}
	if cmd.kind == kRead {
		e.submit(t, ioengine.OpRead, int64(cmd.lba)*int64(bs), 0, t.Data[:n:n])
		return
	}
	e.beginWrite(t)
	if !e.writeGate(t, cmd.lba, uint64(cmd.blocks)) {
		return
	}
	e.submit(t, ioengine.OpWrite, int64(cmd.lba)*int64(bs), 0, t.Data[:n:n])
}

// submit queues one request for t, taking an engine slot if t has none
// (a multi-request command keeps its slot from one request to the next).
func (e *Executor) submit(t *Task, op ioengine.Op, off, length int64, buf []byte) {
	if t.slot < 0 {
		if len(e.free) == 0 {
			e.status(t, StatusTaskSetFull)
			return
		}
		t.slot = e.free[len(e.free)-1]
		e.free = e.free[:len(e.free)-1]
	}
	sl := &e.slots[t.slot]
	sl.task = t
	r := &sl.req
	r.Op, r.Flags, r.Offset, r.Len, r.Buf, r.N, r.Errno = op, 0, off, length, buf, 0, 0
	// Write-through (WCE=0) makes every write durable before GOOD; with a
	// write cache only FUA does (and WRITE AND VERIFY, which must reach
	// the medium to be verified).
	if op == ioengine.OpWrite && (t.cmd.fua || !t.b.lu.wce.Load() || t.cmd.kind == kWriteVerify) {
		r.Flags = ioengine.FlagFUA
	}
	t.flags |= tfInEngine
	u := t.u
	if len(u.backlog) == 0 {
		one := e.reqs[:1]
		one[0] = r
		if u.q.Submit(one) == 1 {
			return
		}
	}
	u.backlog = append(u.backlog, r)
}

// releaseSlot gives t's engine slot back.
func (e *Executor) releaseSlot(t *Task) {
	if t.slot < 0 {
		return
	}
	sl := &e.slots[t.slot]
	sl.task, sl.req.Buf = nil, nil
	e.free = append(e.free, t.slot)
	t.slot = -1
}

// Poll drives the engines and moves finished tasks into out; it returns
// how many. It never blocks. Tasks beyond len(out) wait for the next Poll.
func (e *Executor) Poll(out []*Task) int {
	for _, u := range e.order {
		if u.lu.caw.active.Load() != 0 {
			e.cawAck(u)
		}
		if len(u.parked) > 0 {
			e.retryParked(u)
		}
		if len(u.backlog) > 0 {
			k := u.q.Submit(u.backlog)
			rest := copy(u.backlog, u.backlog[k:])
			clear(u.backlog[rest:])
			u.backlog = u.backlog[:rest]
		}
		if u.q.Inflight() == 0 {
			continue
		}
		for {
			n := u.q.Poll(e.reqs)
			for _, r := range e.reqs[:n] {
				e.complete(&e.slots[r.User])
			}
			if n < len(e.reqs) {
				break
			}
		}
	}
	if len(e.tmfs) > 0 && e.aborted == 0 {
		e.done = append(e.done, e.tmfs...)
		clear(e.tmfs)
		e.tmfs = e.tmfs[:0]
	}
	n := copy(out, e.done[e.doneAt:])
	e.doneAt += n
	if e.doneAt == len(e.done) {
		clear(e.done)
		e.done, e.doneAt = e.done[:0], 0
	}
	return n
}

// complete handles one request back from an engine.
func (e *Executor) complete(sl *slot) {
	t, r := sl.task, &sl.req
	t.flags &^= tfInEngine
	if t.flags&tfAborted != 0 {
		e.aborted--
		e.abortDone(t)
		return
	}
	ok := r.Errno == 0 && (r.Op != ioengine.OpRead && r.Op != ioengine.OpWrite || r.N == int64(len(r.Buf)))
	if !ok {
		e.fail(t, Sense{Reason: engineReason(r.Op, r.Errno)})
		return
	}
	switch t.cmd.kind {
	case kRead, kWrite:
		want := int(t.cmd.blocks) * t.b.lu.blockSize
		xfer := 0
		if r.Op == ioengine.OpRead {
			xfer = len(r.Buf)
		}
		e.good(t, xfer, want)
	case kSync, kModeSelect: // MODE SELECT flushes when WCE goes off
		e.good(t, 0, 0)
	default:
		e.stepSBC(t, r) // multi-request commands: sbc.go
	}
}

// engineReason maps an engine failure to sense (after LIO's
// target_complete_cmd/sbc_execute_rw and SCST vdisk): a short transfer
// counts as a medium error like EIO.
func engineReason(op ioengine.Op, errno syscall.Errno) Reason {
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT:
		return ReasonSpaceAllocFailed
	case syscall.EROFS:
		return ReasonWriteProtected
	case 0, syscall.EIO, syscall.ENODATA, syscall.EILSEQ:
		if op == ioengine.OpRead {
			return ReasonReadError
		}
		return ReasonWriteError
	}
	return ReasonInternalFailure
}
