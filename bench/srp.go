package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"time"

	"github.com/usrpt/usrpt/initiator"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/target"
	"github.com/usrpt/usrpt/verbs/loop"
)

// srpGUID is the GUID of the bench's in-process target.
const srpGUID = 0x00a0_b8ff_fe00_0001

// srpBench is the SRP side of a --target loop run: an in-process target
// (its own reactors on TargetCPUs) with one LU over the device, the
// user-space initiator logged in with one channel per job, and the loop
// fabric between them.
type srpBench struct {
	tgt    *target.Target
	lu     *scsi.LU
	sess   *initiator.Session
	cancel context.CancelFunc
	served chan error
	lbs    int64
	lun    uint64

	stats0, stats1 []poller.ReactorStats // the target's reactors over the measured window
}

func newSRPBench(dev ioengine.Device, cfg *IOConfig, buffers []byte) (*srpBench, error) {
	lbs := scsiBlockSize(cfg.BlockSize, dev.Info().BlockSize)
	if lbs == 0 {
		return nil, fmt.Errorf("--bs %d: --target loop needs a multiple of the LU's logical block (512 or 4096 bytes, and of the engine's %d)", cfg.BlockSize, dev.Info().BlockSize)
	}
	lu, err := scsi.NewLU(scsi.Config{
		Engine: dev, BlockSize: lbs, Serial: benchSerial, Product: "usrpt bench",
		WriteCache: cfg.SCSIWriteCache, MaxTransferBytes: max(scsi.DefaultMaxTransferBytes, cfg.BlockSize),
	})
	if err != nil {
		return nil, fmt.Errorf("bench: --target loop: %w", err)
	}
	credits := max(target.DefaultCredits, cfg.IODepth+1) // one is the initiator's reserve for task management
	tcfg := target.Config{
		GUID: srpGUID, CPUs: cfg.TargetCPUs, Idle: cfg.Idle, Pages: cfg.Pages,
		ACLs:       []target.ACL{{Name: "bench", Initiators: []string{"*"}}},
		Credits:    credits,
		MaxDataLen: max(target.DefaultMaxDataLen, cfg.BlockSize),
		SmallBufs:  max(target.DefaultSmallBufs, cfg.IODepth*cfg.Jobs),
		// Commands of every job may be in one reactor's engines at once.
		ReactorDepth: max(target.DefaultReactorDepth, cfg.IODepth*cfg.Jobs),
		Logger:       slog.New(slog.DiscardHandler),
	}
	if cfg.BlockSize > target.DefaultSmallBuf {
		tcfg.SmallBuf = min(cfg.BlockSize, tcfg.MaxDataLen)
	}
	tgt, err := target.New(tcfg)
	if err != nil {
		return nil, fmt.Errorf("bench: --target loop: %w", err)
	}
	b := &srpBench{tgt: tgt, lu: lu, lbs: int64(lbs), served: make(chan error, 1)}
	b.lun, _ = scsi.EncodeLUN(0)
	fail := func(err error) (*srpBench, error) {
		b.close()
		return nil, fmt.Errorf("bench: --target loop: %w", err)
	}
	if err := tgt.AddLUN(0, lu); err != nil {
		return fail(err)
	}
	fab := loop.NewFabric()
	tdev, err := fab.NewDevice("target")
	if err != nil {
		return fail(err)
	}
	idev, err := fab.NewDevice("initiator")
	if err != nil {
		return fail(err)
	}
	ln, err := tdev.Listen("usrpt-bench")
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = func() { cancel(); _ = ln.Close() }
	go func() { b.served <- tgt.Serve(ctx, ln) }()

	icfg := initiator.Config{TargetPortID: tgt.PortID(), Channels: cfg.Jobs, QueueSize: cfg.IODepth}
	copy(icfg.InitiatorPortID[:], "usrpt-bench-init")
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	if b.sess, err = initiator.Login(lctx, idev, "usrpt-bench", icfg); err != nil {
		return fail(err)
	}
	if _, err := b.sess.RegMR(buffers); err != nil {
		return fail(err)
	}
	return b, nil
}

func (b *srpBench) close() {
	if b.sess != nil {
		_ = b.sess.Logout()
	}
	if b.cancel != nil {
		b.cancel()
		<-b.served
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.tgt.Close(ctx)
}

// targetStats reads the target's reactor counters.
func (b *srpBench) targetStats() ([]poller.ReactorStats, error) {
	return b.tgt.Group().Stats(callTimeout)
}

// srpSlot is one request's command, preallocated.
type srpSlot struct {
	cmd  initiator.Command
	cdb  [16]byte
	segs [1][]byte
	req  *ioengine.Request
}

// srpQueue is an ioengine.Queue that sends each Request as an SRP_CMD on
// one initiator channel. Like every Queue it belongs to one reactor.
type srpQueue struct {
	b     *srpBench
	ch    *initiator.Channel
	slots []srpSlot
	free  []int32
	cmds  []*initiator.Command // Submit's and Poll's batches
	now   []int32              // slots finished in Submit without a command
	nowEr []syscall.Errno
}

// newQueue opens job's queue on its channel and clears the nexus's unit
// attentions (TEST UNIT READY until GOOD). Call it on the job's reactor.
func (b *srpBench) newQueue(job, depth int) (*srpQueue, error) {
	chs := b.sess.Channels()
	if job >= len(chs) {
		return nil, fmt.Errorf("job %d: the session has %d channels", job, len(chs))
	}
	q := &srpQueue{
		b: b, ch: chs[job],
		slots: make([]srpSlot, depth), free: make([]int32, depth),
		cmds: make([]*initiator.Command, depth), now: make([]int32, 0, depth), nowEr: make([]syscall.Errno, depth),
	}
	for i := range q.slots {
		q.slots[i].cmd = initiator.Command{LUN: b.lun, User: uint64(i)}
		q.free[i] = int32(depth - 1 - i)
	}
	return q, q.clearUA()
}

func (q *srpQueue) clearUA() error {
	tur := &initiator.Command{LUN: q.b.lun, CDB: make([]byte, 6)}
	var out [1]*initiator.Command
	for range 16 {
		if q.ch.Submit([]*initiator.Command{tur}) != 1 {
			return errors.New("bench: --target loop: the channel takes no command")
		}
		deadline := time.Now().Add(10 * time.Second)
		for q.ch.Poll(out[:]) == 0 {
			if time.Now().After(deadline) {
				return errors.New("bench: --target loop: TEST UNIT READY timed out")
			}
			runtime.Gosched()
		}
		switch {
		case tur.Err != nil:
			return fmt.Errorf("bench: --target loop: TEST UNIT READY: %w", tur.Err)
		case tur.Status == uint8(scsi.StatusGood):
			return nil
		case tur.Status == uint8(scsi.StatusCheckCondition):
			if key, _, _, _ := scsi.ParseSense(tur.Sense[:tur.SenseLen]); key == scsi.KeyUnitAttention {
				continue
			}
		}
		return fmt.Errorf("bench: --target loop: TEST UNIT READY: status %#x", tur.Status)
	}
	return errors.New("bench: --target loop: unit attentions do not clear after 16 TEST UNIT READYs")
}

// Submit sends one command per request, up to the free slots and the
// channel's credits.
func (q *srpQueue) Submit(reqs []*ioengine.Request) int {
	n := 0
	batch := q.cmds[:0]
	for _, r := range reqs {
		if len(q.free) == 0 {
			break
		}
		k := q.free[len(q.free)-1]
		q.free = q.free[:len(q.free)-1]
		s := &q.slots[k]
		s.req = r
		n++
		if errno, ok := q.prep(s, r); !ok {
			q.nowEr[k] = errno
			q.now = append(q.now, k)
			continue
		}
		batch = append(batch, &s.cmd)
	}
	if took := q.ch.Submit(batch); took < len(batch) {
		// The channel has credits and slots for the whole depth (the
		// target grants depth+1 credits), so this does not happen; if it
		// does, the requests complete with EBUSY rather than vanish.
		for _, c := range batch[took:] {
			k := int32(c.User)
			q.nowEr[k] = syscall.EBUSY
			q.now = append(q.now, k)
		}
	}
	return n
}

func (q *srpQueue) prep(s *srpSlot, r *ioengine.Request) (syscall.Errno, bool) {
	c := &s.cmd
	cdb := &s.cdb
	clear(cdb[:])
	c.DataIn, c.DataOut, c.TMF = nil, nil, 0
	if r.Offset < 0 || r.Offset%q.b.lbs != 0 {
		return syscall.EINVAL, false
	}
	lba := uint64(r.Offset / q.b.lbs)
	switch r.Op {
	case ioengine.OpRead, ioengine.OpWrite:
		if !rw16CDB(cdb, r, lba, q.b.lbs) {
			return syscall.EINVAL, false
		}
		s.segs[0] = r.Buf
		if r.Op == ioengine.OpWrite {
			c.DataOut = s.segs[:]
		} else {
			c.DataIn = s.segs[:]
		}
		c.CDB = cdb[:16]
	case ioengine.OpFlush:
		cdb[0] = byte(scsi.SynchronizeCache16)
		c.CDB = cdb[:16]
	default:
		return syscall.EOPNOTSUPP, false
	}
	c.Attr = srp.AttrSimple
	return 0, true
}

// Poll reaps the channel and returns finished requests.
func (q *srpQueue) Poll(out []*ioengine.Request) int {
	n := 0
	for len(q.now) > 0 && n < len(out) {
		k := q.now[0]
		q.now = q.now[:copy(q.now, q.now[1:])]
		r := q.slots[k].req
		r.Complete(0, q.nowEr[k])
		out[n] = r
		n++
		q.release(k)
	}
	if n == len(out) {
		return n
	}
	m := q.ch.Poll(q.cmds[:min(len(out)-n, len(q.cmds))])
	for _, c := range q.cmds[:m] {
		k := int32(c.User)
		r := q.slots[k].req
		switch {
		case c.Err != nil:
			r.Complete(0, syscall.EIO)
		case c.Status == uint8(scsi.StatusGood):
			switch r.Op {
			case ioengine.OpRead:
				got := int64(len(r.Buf))
				if c.Flags&srp.DIUnder != 0 {
					got -= int64(c.DataInResid)
				}
				r.Complete(got, 0)
			case ioengine.OpFlush:
				r.Complete(0, 0)
			default:
				r.Complete(r.Size(), 0)
			}
		default:
			r.Complete(0, statusErrno(scsi.Status(c.Status), c.Sense[:c.SenseLen]))
		}
		out[n] = r
		n++
		q.release(k)
	}
	return n
}

func (q *srpQueue) release(k int32) {
	s := &q.slots[k]
	s.req, s.segs[0] = nil, nil
	q.free = append(q.free, k)
}

// Inflight counts requests accepted and not yet returned.
func (q *srpQueue) Inflight() int { return len(q.slots) - len(q.free) }

// WaitFD: a loop channel has no file descriptor to sleep on.
func (q *srpQueue) WaitFD() int { return -1 }

// Close waits for the commands still in flight (their requests are not
// returned).
func (q *srpQueue) Close() error {
	q.now = q.now[:0]
	deadline := time.Now().Add(drainTimeout)
	for q.ch.Inflight() > 0 {
		if q.ch.Poll(q.cmds) == 0 {
			if time.Now().After(deadline) {
				return errors.New("bench: --target loop: commands still in flight at close")
			}
			runtime.Gosched()
		}
	}
	return nil
}
