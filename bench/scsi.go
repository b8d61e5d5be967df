package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/scsi"
)

// Layer is what a job's I/O goes through on its way to the engine.
type Layer uint8

const (
	// LayerEngine: the job drives the engine queue itself.
	LayerEngine Layer = iota
	// LayerSCSI: every I/O is a CDB (READ(16), WRITE(16), ...) started on
	// the SCSI target core (scsi.Executor) over one LU and one I_T nexus,
	// which drives the engine queue: what a command costs the target
	// before any transport is involved.
	LayerSCSI
	// LayerSRP: every I/O is an SRP_CMD from the user-space initiator
	// (one channel per job) to an in-process SRP target (its own reactors
	// on IOConfig.TargetCPUs, one LU over the device) across the loop
	// verbs fabric: the whole target path without a network
	// (usrpt bench --target loop).
	LayerSRP
)

var layerNames = [...]string{LayerEngine: "engine", LayerSCSI: "scsi", LayerSRP: "srp"}

func (l Layer) String() string {
	if int(l) < len(layerNames) {
		return layerNames[l]
	}
	return fmt.Sprintf("Layer(%d)", uint8(l))
}

// ParseLayer accepts engine and scsi (srp is --target loop's).
func ParseLayer(s string) (Layer, error) {
	for _, l := range []Layer{LayerEngine, LayerSCSI} {
		if s == l.String() {
			return l, nil
		}
	}
	return 0, fmt.Errorf("--layer %q: want engine or scsi (or --target loop)", s)
}

// scsiBlockSize is the logical block size of the LU a --layer scsi run
// makes for I/Os of bs bytes on an engine of engineBS-byte blocks: 4096
// when bs allows it, else 512; 0 when neither fits (bs is not a multiple
// of 512, or the engine's blocks are larger than what bs allows).
func scsiBlockSize(bs, engineBS int) int {
	if engineBS <= 0 {
		engineBS = 512
	}
	for _, lbs := range []int{4096, 512} {
		if bs%lbs == 0 && lbs%engineBS == 0 {
			return lbs
		}
	}
	return 0
}

// scsiTarget is the SCSI side every job of a --layer scsi run shares: one
// LU over the device and one I_T nexus that sees it at LUN 0 (the LU is
// shared by design; the nexus may be used from several reactors, as SRP
// multichannel does).
type scsiTarget struct {
	lu    *scsi.LU
	nexus *scsi.Nexus
	lun   uint64
}

// benchSerial names the bench's LU (VPD 0x80).
const benchSerial = "usrpt-bench"

func newSCSITarget(dev ioengine.Device, cfg *IOConfig) (*scsiTarget, error) {
	lbs := scsiBlockSize(cfg.BlockSize, dev.Info().BlockSize)
	if lbs == 0 {
		return nil, fmt.Errorf("--bs %d: --layer scsi needs a multiple of the LU's logical block (512 or 4096 bytes, and of the engine's %d)", cfg.BlockSize, dev.Info().BlockSize)
	}
	lu, err := scsi.NewLU(scsi.Config{
		Engine: dev, BlockSize: lbs, Serial: benchSerial, Product: "usrpt bench",
		WriteCache: cfg.SCSIWriteCache,
		// One I/O is one command: the LU must take --bs in one transfer.
		MaxTransferBytes: max(scsi.DefaultMaxTransferBytes, cfg.BlockSize),
	})
	if err != nil {
		return nil, fmt.Errorf("bench: --layer scsi: %w", err)
	}
	var id [16]byte
	copy(id[:], benchSerial)
	n, err := scsi.NewNexus(scsi.NexusConfig{TransportID: scsi.SRPTransportID(id), RelPort: 1, LUNs: []scsi.Mapping{{LUN: 0, LU: lu}}})
	if err != nil {
		return nil, fmt.Errorf("bench: --layer scsi: %w", err)
	}
	lun, _ := scsi.EncodeLUN(0)
	return &scsiTarget{lu: lu, nexus: n, lun: lun}, nil
}

func (t *scsiTarget) close() { t.nexus.Close() }

// scsiSlot is one request's command: its task, CDB and UNMAP parameter
// list, preallocated so that Submit and Poll allocate nothing.
type scsiSlot struct {
	task  scsi.Task
	cdb   [16]byte
	param [24]byte // UNMAP: 8-byte header and one block descriptor
	req   *ioengine.Request
}

// scsiQueue is an ioengine.Queue that turns each Request into a SCSI
// command on an Executor, which drives the reactor's real engine queue.
// Like every Queue it belongs to one reactor.
type scsiQueue struct {
	t     *scsiTarget
	e     *scsi.Executor
	q     ioengine.Queue // the engine queue, attached to e
	lbs   int64
	zero  []byte // one zero block: WRITE SAME's data-out for OpWriteZeroes
	slots []scsiSlot
	free  []int32
	now   []int32         // slots finished in Submit without a command (misaligned, empty)
	tasks []*scsi.Task    // Executor.Poll's output
	nowEr []syscall.Errno // per slot: the errno of a slot in now
}

// newSCSIQueue attaches q to a new Executor of depth tasks and clears the
// nexus's POWER ON unit attention (TEST UNIT READY until GOOD), so the
// first I/O of the workload is not answered with CHECK CONDITION. Call it
// on the reactor that owns q; on error q is the caller's to close.
func newSCSIQueue(t *scsiTarget, q ioengine.Queue, depth int) (*scsiQueue, error) {
	e, err := scsi.NewExecutor(depth)
	if err != nil {
		return nil, err
	}
	if err := e.Attach(t.lu, q); err != nil {
		return nil, err
	}
	lbs := int64(t.lu.BlockSize())
	sq := &scsiQueue{
		t: t, e: e, q: q, lbs: lbs,
		zero:  make([]byte, lbs),
		slots: make([]scsiSlot, depth),
		free:  make([]int32, depth),
		now:   make([]int32, 0, depth),
		tasks: make([]*scsi.Task, depth),
		nowEr: make([]syscall.Errno, depth),
	}
	for i := range sq.slots {
		s := &sq.slots[i]
		s.task = scsi.Task{Nexus: t.nexus, LUN: t.lun, User: uint64(i)}
		sq.free[i] = int32(depth - 1 - i)
	}
	if err := sq.clearUA(); err != nil {
		_, _ = e.Detach(t.lu)
		return nil, err
	}
	return sq, nil
}

// clearUA sends TEST UNIT READY until it is GOOD: a new nexus has POWER
// ON pending, which exactly one command of some job reports.
func (sq *scsiQueue) clearUA() error {
	var cdb [6]byte // TEST UNIT READY
	tur := &scsi.Task{Nexus: sq.t.nexus, LUN: sq.t.lun, CDB: cdb[:]}
	var out [1]*scsi.Task
	for range 16 {
		sq.e.Start(tur)
		for sq.e.Poll(out[:]) == 0 {
			runtime.Gosched()
		}
		switch tur.Status {
		case scsi.StatusGood:
			return nil
		case scsi.StatusCheckCondition:
			if key, _, _, _ := scsi.ParseSense(tur.Sense[:tur.SenseLen]); key == scsi.KeyUnitAttention {
				continue
			}
		}
		return fmt.Errorf("bench: --layer scsi: TEST UNIT READY: %v (%v)", tur.Status, tur.Reason)
	}
	return errors.New("bench: --layer scsi: the LU still reports unit attentions after 16 TEST UNIT READYs")
}

// Submit starts one command per request, up to the free slots.
func (sq *scsiQueue) Submit(reqs []*ioengine.Request) int {
	for i, r := range reqs {
		if len(sq.free) == 0 {
			return i
		}
		k := sq.free[len(sq.free)-1]
		sq.free = sq.free[:len(sq.free)-1]
		s := &sq.slots[k]
		s.req = r
		if errno, ok := sq.prep(s, r); !ok {
			sq.nowEr[k] = errno
			sq.now = append(sq.now, k)
			continue
		}
		sq.e.Start(&s.task)
	}
	return len(reqs)
}

// prep writes r's command into s. It reports false, with the errno r
// completes with, for a request no command can carry: an offset or length
// that is not whole blocks, or an operation ioengine does not have.
func (sq *scsiQueue) prep(s *scsiSlot, r *ioengine.Request) (syscall.Errno, bool) {
	t := &s.task
	c := &s.cdb
	clear(c[:])
	t.Data, t.DataLen = nil, 0
	if r.Offset < 0 || r.Offset%sq.lbs != 0 {
		return syscall.EINVAL, false
	}
	lba := uint64(r.Offset / sq.lbs)
	switch r.Op {
	case ioengine.OpRead, ioengine.OpWrite:
		if !rw16CDB(c, r, lba, sq.lbs) {
			return syscall.EINVAL, false
		}
		t.CDB, t.Data, t.DataLen = c[:16], r.Buf, len(r.Buf)
	case ioengine.OpFlush:
		// LBA 0, NUMBER OF LOGICAL BLOCKS 0: the whole medium.
		c[0] = byte(scsi.SynchronizeCache16)
		t.CDB = c[:16]
	case ioengine.OpDiscard:
		blocks := r.Len / sq.lbs
		if r.Len <= 0 || r.Len%sq.lbs != 0 || blocks > 0xFFFFFFFF {
			return syscall.EINVAL, false
		}
		p := &s.param
		binary.BigEndian.PutUint16(p[0:], uint16(len(p)-2)) // UNMAP DATA LENGTH
		binary.BigEndian.PutUint16(p[2:], 16)               // BLOCK DESCRIPTOR DATA LENGTH
		clear(p[4:8])
		binary.BigEndian.PutUint64(p[8:], lba)
		binary.BigEndian.PutUint32(p[16:], uint32(blocks))
		clear(p[20:])
		c[0] = byte(scsi.Unmap)
		binary.BigEndian.PutUint16(c[7:], uint16(len(p))) // PARAMETER LIST LENGTH
		t.CDB, t.Data, t.DataLen = c[:10], p[:], len(p)
	case ioengine.OpWriteZeroes:
		blocks := r.Len / sq.lbs
		if r.Len <= 0 || r.Len%sq.lbs != 0 || blocks > 0xFFFFFFFF {
			return syscall.EINVAL, false
		}
		c[0] = byte(scsi.WriteSame16)
		binary.BigEndian.PutUint64(c[2:], lba)
		binary.BigEndian.PutUint32(c[10:], uint32(blocks))
		t.CDB, t.Data, t.DataLen = c[:16], sq.zero, len(sq.zero)
	default:
		return syscall.EOPNOTSUPP, false
	}
	return 0, true
}

// rw16CDB writes READ(16) or WRITE(16) for r at lba into c, with FUA when
// r asks for it; false when r's buffer is not whole blocks of lbs bytes or
// too many of them for one command.
func rw16CDB(c *[16]byte, r *ioengine.Request, lba uint64, lbs int64) bool {
	n := int64(len(r.Buf))
	if n%lbs != 0 || n/lbs > 0xFFFFFFFF {
		return false
	}
	c[0] = byte(scsi.Read16)
	if r.Op == ioengine.OpWrite {
		c[0] = byte(scsi.Write16)
	}
	if r.Flags&ioengine.FlagFUA != 0 {
		c[1] = 0x08 // FUA
	}
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], uint32(n/lbs))
	return true
}

// Poll drives the executor and returns finished requests with N and Errno
// from the commands' status and sense.
func (sq *scsiQueue) Poll(out []*ioengine.Request) int {
	n := 0
	for len(sq.now) > 0 && n < len(out) {
		k := sq.now[0]
		sq.now = sq.now[:copy(sq.now, sq.now[1:])]
		r := sq.slots[k].req
		r.Complete(0, sq.nowEr[k])
		out[n] = r
		n++
		sq.release(k)
	}
	if n == len(out) {
		return n
	}
	m := sq.e.Poll(sq.tasks[:min(len(out)-n, len(sq.tasks))])
	for _, t := range sq.tasks[:m] {
		k := int32(t.User)
		r := sq.slots[k].req
		if t.Status == scsi.StatusGood {
			switch r.Op {
			case ioengine.OpRead:
				r.Complete(int64(t.Xfer), 0)
			case ioengine.OpFlush:
				r.Complete(0, 0)
			default:
				r.Complete(r.Size(), 0)
			}
		} else {
			r.Complete(0, taskErrno(t))
		}
		out[n] = r
		n++
		sq.release(k)
	}
	return n
}

func (sq *scsiQueue) release(k int32) {
	s := &sq.slots[k]
	s.req, s.task.Data = nil, nil
	sq.free = append(sq.free, k)
}

// taskErrno maps a command that did not end GOOD to the errno a block
// layer would give its caller (after Linux sd and scsi_io_completion):
// MEDIUM ERROR is EIO, DATA PROTECT with SPACE ALLOCATION FAILED is
// ENOSPC and other DATA PROTECT (WRITE PROTECTED) EROFS, ILLEGAL REQUEST is
// EINVAL; TASK SET FULL and BUSY, which a queue as deep as its executor
// never sees, are EBUSY; anything else is EIO.
func taskErrno(t *scsi.Task) syscall.Errno {
	return statusErrno(t.Status, t.Sense[:t.SenseLen])
}

// statusErrno is taskErrno for a status and sense data from anywhere (an
// SRP_RSP, say).
func statusErrno(status scsi.Status, sense []byte) syscall.Errno {
	switch status {
	case scsi.StatusCheckCondition:
	case scsi.StatusTaskSetFull, scsi.StatusBusy:
		return syscall.EBUSY
	default:
		return syscall.EIO
	}
	key, asc, ascq, ok := scsi.ParseSense(sense)
	if !ok {
		return syscall.EIO
	}
	switch key {
	case scsi.KeyMediumError:
		return syscall.EIO
	case scsi.KeyDataProtect:
		if asc == 0x27 && ascq == 0x07 {
			return syscall.ENOSPC
		}
		return syscall.EROFS
	case scsi.KeyIllegalRequest:
		return syscall.EINVAL
	}
	return syscall.EIO
}

// Inflight counts requests accepted and not yet returned.
func (sq *scsiQueue) Inflight() int { return len(sq.slots) - len(sq.free) }

// WaitFD is the engine queue's.
func (sq *scsiQueue) WaitFD() int { return sq.q.WaitFD() }

// Close waits for the commands still in flight (their requests are not
// returned), detaches the LU and closes the engine queue.
func (sq *scsiQueue) Close() error {
	sq.now = sq.now[:0]
	for sq.e.Inflight() > 0 || sq.e.Pending() > 0 {
		if sq.e.Poll(sq.tasks) == 0 {
			runtime.Gosched()
		}
	}
	q, err := sq.e.Detach(sq.t.lu)
	if err != nil {
		return errors.Join(err, sq.q.Close())
	}
	return q.Close()
}
