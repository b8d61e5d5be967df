package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/usrpt/usrpt/ioengine"
)

// Attr is a task attribute (SAM-5 8.6). This slice records it only: every
// task is executed as it arrives, whatever its attribute. ORDERED and HEAD
// OF QUEUE semantics (and ACA) come with task set management.
type Attr uint8

const (
	AttrSimple      Attr = 0
	AttrHeadOfQueue Attr = 1
	AttrOrdered     Attr = 2
)

// Resid says which way a transfer differed from the initiator's expected
// length (SAM-5 5.3.2, SRP_RSP DIOVER/DIUNDER, DOOVER/DOUNDER).
type Resid uint8

const (
	ResidNone  Resid = 0
	ResidOver  Resid = 1 // the command wanted more than DataLen; Residual bytes were not moved
	ResidUnder Resid = 2 // the command moved Residual bytes less than DataLen
)

// Task is one SCSI command and, once complete, its outcome. The caller
// owns it and its Data; between Start and the Poll that returns it the
// Executor holds both.
type Task struct {
	LUN  uint64 // the 8-byte SAM LUN, as in SRP_CMD (see DecodeLUN)
	CDB  []byte // 1 to MaxCDBLen bytes
	Attr Attr
	// Data is the buffer: for a write, the data-out, already filled; for a
	// read or an emulated command, where the data-in goes. It must hold at
	// least DataLen bytes.
	Data []byte
	// DataLen is the initiator's expected transfer length in bytes.
	DataLen int
	User    uint64 // the caller's cookie

	// Results.
	Status   Status
	Sense    [MaxSenseLen]byte
	SenseLen int
	Xfer     int // data-in bytes written to Data
	Resid    Resid
	Residual uint32
	Reason   Reason // why, when Status is CHECK CONDITION (for counters)
}

// Attached is one LU as an Executor sees it: its LUN number and the queue
// opened on the engine by the reactor that owns the Executor.
type Attached struct {
	LUN   uint16
	LU    *LU
	Queue ioengine.Queue
}

type unit struct {
	lun     uint16
	lu      *LU
	q       ioengine.Queue
	backlog []*ioengine.Request // accepted by Start, not yet by the queue
}

type slot struct {
	req  ioengine.Request
	task *Task
	u    *unit
	cmd  command
	xfer int
}

// Executor runs tasks on one reactor: it is not safe for concurrent use.
type Executor struct {
	units   map[uint16]*unit
	order   []*unit // by LUN, for REPORT LUNS and polling
	slots   []slot
	free    []int32
	done    []*Task
	doneAt  int
	reqs    []*ioengine.Request
	scratch []byte
}

var errNoUnits = errors.New("scsi: executor: no logical units")

// NewExecutor makes an executor for lus with at most maxInflight engine
// requests at once (Start answers TASK SET FULL beyond it).
func NewExecutor(lus []Attached, maxInflight int) (*Executor, error) {
	if len(lus) == 0 {
		return nil, errNoUnits
	}
	if maxInflight <= 0 {
		return nil, fmt.Errorf("scsi: executor: max inflight %d: want 1 or more", maxInflight)
	}
	e := &Executor{units: make(map[uint16]*unit, len(lus))}
	for _, a := range lus {
		if a.LU == nil || a.Queue == nil {
			return nil, fmt.Errorf("scsi: executor: LUN %d: no LU or no queue", a.LUN)
		}
		if _, ok := EncodeLUN(a.LUN); !ok {
			return nil, fmt.Errorf("scsi: executor: LUN %d: above 16383", a.LUN)
		}
		if e.units[a.LUN] != nil {
			return nil, fmt.Errorf("scsi: executor: LUN %d twice", a.LUN)
		}
		u := &unit{lun: a.LUN, lu: a.LU, q: a.Queue, backlog: make([]*ioengine.Request, 0, maxInflight)}
		e.units[a.LUN] = u
		e.order = append(e.order, u)
	}
	slices.SortFunc(e.order, func(a, b *unit) int { return int(a.lun) - int(b.lun) })
	e.slots = make([]slot, maxInflight)
	e.free = make([]int32, maxInflight)
	for i := range e.free {
		e.free[i] = int32(maxInflight - 1 - i)
		e.slots[i].req.User = uint64(i)
	}
	e.done = make([]*Task, 0, maxInflight)
	e.reqs = make([]*ioengine.Request, maxInflight)
	e.scratch = make([]byte, max(512, 8+8*len(lus)))
	return e, nil
}

// Inflight is the number of tasks submitted to engines and not yet done.
func (e *Executor) Inflight() int { return len(e.slots) - len(e.free) }

func (e *Executor) finish(t *Task) { e.done = append(e.done, t) }

// fail completes t with CHECK CONDITION and sense s, in the format the LU
// asks for.
func (e *Executor) fail(t *Task, u *unit, s Sense) {
	t.Status = StatusCheckCondition
	t.Reason = s.Reason
	if u != nil && u.lu.cfg.DescriptorSense {
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

// good completes t with GOOD, having moved xfer bytes where the command
// wanted want.
func (e *Executor) good(t *Task, xfer, want int) {
	t.Status = StatusGood
	t.Reason = ReasonNone
	t.Xfer = xfer
	setResid(t, want)
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

// Start begins t. It never blocks: a task that needs no I/O, or that fails
// its checks, is complete at once; the rest are queued to the LU's engine.
// Either way the task comes back from Poll, exactly once.
func (e *Executor) Start(t *Task) {
	t.Status, t.SenseLen, t.Xfer, t.Resid, t.Residual, t.Reason = StatusGood, 0, 0, ResidNone, 0, ReasonNone
	var u *unit
	if n, ok := DecodeLUN(t.LUN); ok {
		u = e.units[n]
	}
	if len(t.CDB) == 0 || len(t.CDB) > MaxCDBLen || t.DataLen < 0 || len(t.Data) < t.DataLen {
		// The transport gave us a command we cannot even read: SRP
		// ADDITIONAL CDB LENGTH beyond 16, or a buffer shorter than the
		// expected length.
		e.fail(t, u, Sense{Reason: ReasonInvalidFieldIU})
		return
	}
	var c [MaxCDBLen]byte
	copy(c[:], t.CDB)
	var lu *LU
	if u != nil {
		lu = u.lu
	}
	cmd, s, ok := decode(lu, &c)
	if !ok {
		e.fail(t, u, s)
		return
	}
	switch cmd.kind {
	case kRead, kWrite:
		e.startRW(t, u, &cmd)
	case kSync:
		if !lu.cfg.WriteCache {
			e.good(t, 0, 0) // write-through: nothing is held back
			return
		}
		e.submit(t, u, &cmd, ioengine.OpFlush, 0, nil)
	case kVerify:
		e.good(t, 0, 0) // BYTCHK=0: the range was checked, the medium is there
	case kTUR, kStartStop, kPreventAllow:
		e.good(t, 0, 0)
	default:
		e.emulate(t, u, &cmd)
	}
}

// startRW checks the transfer against the initiator's expected length and
// queues the I/O.
func (e *Executor) startRW(t *Task, u *unit, cmd *command) {
	bs := u.lu.blockSize
	want := int(cmd.blocks) * bs
	n := want
	if t.DataLen != want {
		// Like LIO's target_cmd_size_check: a write must say exactly what
		// it sends; a read may be cut to the expected length or padded
		// short, in whole blocks, and reports the residual.
		if cmd.kind == kWrite || t.DataLen%bs != 0 {
			e.fail(t, u, Sense{Reason: ReasonInvalidFieldIU})
			return
		}
		n = min(want, t.DataLen)
	}
	if n == 0 {
		e.good(t, 0, want)
		return
	}
	op := ioengine.OpRead
	if cmd.kind == kWrite {
		op = ioengine.OpWrite
	}
	e.submit(t, u, cmd, op, int64(cmd.lba)*int64(bs), t.Data[:n:n])
}

func (e *Executor) submit(t *Task, u *unit, cmd *command, op ioengine.Op, off int64, buf []byte) {
	if len(e.free) == 0 {
		t.Status = StatusTaskSetFull
		e.finish(t)
		return
	}
	i := e.free[len(e.free)-1]
	e.free = e.free[:len(e.free)-1]
	sl := &e.slots[i]
	sl.task, sl.u, sl.cmd, sl.xfer = t, u, *cmd, len(buf)
	r := &sl.req
	r.Op, r.Flags, r.Offset, r.Len, r.Buf, r.N, r.Errno = op, 0, off, 0, buf, 0, 0
	// Write-through (WCE=0) makes every write durable before GOOD; with a
	// write cache only FUA does.
	if op == ioengine.OpWrite && (cmd.fua || !u.lu.cfg.WriteCache) {
		r.Flags = ioengine.FlagFUA
	}
	if len(u.backlog) == 0 {
		one := e.reqs[:1]
		one[0] = r
		if u.q.Submit(one) == 1 {
			return
		}
	}
	u.backlog = append(u.backlog, r)
}

// Poll drives the engines and moves finished tasks into out; it returns
// how many. It never blocks. Tasks beyond len(out) wait for the next Poll.
func (e *Executor) Poll(out []*Task) int {
	for _, u := range e.order {
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
	n := copy(out, e.done[e.doneAt:])
	e.doneAt += n
	if e.doneAt == len(e.done) {
		clear(e.done)
		e.done, e.doneAt = e.done[:0], 0
	}
	return n
}

// Pending is the number of finished tasks waiting for Poll.
func (e *Executor) Pending() int { return len(e.done) - e.doneAt }

func (e *Executor) complete(sl *slot) {
	t, u, r := sl.task, sl.u, &sl.req
	ok := r.Errno == 0 && (r.Op == ioengine.OpFlush || r.N == int64(len(r.Buf)))
	sl.task, sl.u, r.Buf = nil, nil, nil
	e.free = append(e.free, int32(r.User))
	if ok {
		want := 0
		if sl.cmd.kind == kRead || sl.cmd.kind == kWrite {
			want = int(sl.cmd.blocks) * u.lu.blockSize
		}
		xfer := 0
		if r.Op == ioengine.OpRead {
			xfer = sl.xfer
		}
		e.good(t, xfer, want)
		return
	}
	e.fail(t, u, Sense{Reason: engineReason(r.Op, r.Errno)})
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

// emulate answers the commands whose data the target makes up.
func (e *Executor) emulate(t *Task, u *unit, cmd *command) {
	var lu *LU
	if u != nil {
		lu = u.lu
	}
	b := e.scratch
	var n int
	switch cmd.kind {
	case kInquiry:
		if !cmd.evpd {
			n = putStdInquiry(b, lu)
			break
		}
		if lu == nil {
			e.fail(t, u, Sense{Reason: ReasonLUNotSupported})
			return
		}
		var ok bool
		if n, ok = putVPD(b, lu, cmd.page); !ok {
			e.fail(t, u, invalidField(2, 7))
			return
		}
	case kReadCap10:
		n = putReadCap10(b, lu)
	case kReadCap16:
		n = putReadCap16(b, lu)
	case kModeSense6, kModeSense10:
		n = putModeSense(b, lu, cmd)
	case kRequestSense:
		// Sense is returned with every CHECK CONDITION (SRP autosense),
		// so there is never any pending: NO SENSE, or LOGICAL UNIT NOT
		// SUPPORTED for a LUN that is not there (SPC-4 6.29).
		s := Sense{}
		if lu == nil {
			s.Reason = ReasonLUNotSupported
		}
		if cmd.desc {
			n = PutDescriptor(b, s)
		} else {
			n = PutFixed(b, s)
		}
	case kReportLUNs:
		binary.BigEndian.PutUint32(b[0:], uint32(8*len(e.order)))
		binary.BigEndian.PutUint32(b[4:], 0)
		n = 8
		for _, o := range e.order {
			l, _ := EncodeLUN(o.lun)
			be64(b[n:], l)
			n += 8
		}
	}
	// The allocation length cuts the data (SPC-4 4.2.5.6) and the
	// expected length cuts that; either short of the other is a residual.
	want := min(n, int(cmd.alloc))
	xfer := copy(t.Data[:t.DataLen], b[:want])
	e.good(t, xfer, want)
}
