package scsi

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/usrpt/usrpt/ioengine"
)

// The commands of SBC-3 that take more than one engine request, or
// coordination between reactors: VERIFY and WRITE AND VERIFY with BYTCHK,
// UNMAP, WRITE SAME and COMPARE AND WRITE. Each is a small state machine
// driven by next (from Start, from a completed request, or from Poll when
// it waited) until it finishes.

// Limits advertised in the block limits VPD page (0xB0) and enforced here.
const (
	// maxUnmapBlocks is MAXIMUM UNMAP LBA COUNT, and the longest WRITE
	// SAME (MAXIMUM WRITE SAME LENGTH): one engine request each.
	maxUnmapBlocks = 1 << 22
	// maxUnmapDescriptors is MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
	maxUnmapDescriptors = 256
	// chunkBytes is the buffer WRITE SAME fills with its pattern and
	// VERIFY reads the medium into, a piece at a time.
	chunkBytes = 128 << 10
	// cawBytes bounds COMPARE AND WRITE: MAXIMUM COMPARE AND WRITE LENGTH
	// is cawBytes / block size (128 or 16 blocks).
	cawBytes = 64 << 10
	// cawSlots is how many COMPARE AND WRITEs may hold ranges of one LU
	// at once; more wait.
	cawSlots = 8
)

// MaxCompareAndWriteBlocks is the MAXIMUM COMPARE AND WRITE LENGTH.
func (lu *LU) maxCAWBlocks() uint32 { return uint32(cawBytes / lu.blockSize) }

// Steps of the multi-request commands (Task.step).
const (
	stStart      uint8 = iota
	stWritten          // WRITE AND VERIFY: the write is done
	stVerifyNext       // VERIFY: read the next piece
	stVerifyRead       // VERIFY: a piece is being read
	stWSPattern        // WRITE SAME: writing the pattern a chunk at a time
	stWSWhole          // WRITE SAME: one discard or write-zeroes request
	stCAWAck           // COMPARE AND WRITE: range held, waiting for other reactors
	stCAWRead
	stCAWWrite
)

// decodeSBC decodes VERIFY, WRITE AND VERIFY, UNMAP, WRITE SAME and
// COMPARE AND WRITE (SBC-3 5.x).
func decodeSBC(lu *LU, cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	switch op {
	case Verify10, Verify16, WriteVerify10, WriteVerify16:
		// byte 1: VRPROTECT/WRPROTECT 7-5, DPO 4, reserved 3, BYTCHK 2-1,
		// obsolete 0.
		if c[1]&0xE0 != 0 {
			return invalidField(1, 7), true // no protection information
		}
		if s, bad := rsvd(c, 1, 0x09); bad {
			return s, true
		}
		cmd.bytchk = c[1] >> 1 & 3
		cmd.kind = kVerify
		if op == WriteVerify10 || op == WriteVerify16 {
			cmd.kind = kWriteVerify
			// BYTCHK 00b: write and verify the medium; 01b: compare what
			// was written with the data-out. The rest are reserved.
			if cmd.bytchk > 1 {
				return invalidField(1, 2), true
			}
		} else if cmd.bytchk == 2 {
			// VERIFY BYTCHK 10b is reserved; 01b compares the data-out,
			// 11b compares one block of data-out with every block.
			return invalidField(1, 2), true
		}
		return lbaAndLength(cmd, c, op)
	case Unmap:
		cmd.kind = kUnmap
		// byte 1: reserved 7-1, ANCHOR 0 (not supported: ANC_SUP=0).
		if s, bad := rsvd(c, 1, 0xFF); bad {
			return s, true
		}
		if s, bad := rsvdBytes(c, 2, 6); bad {
			return s, true
		}
		if s, bad := rsvd(c, 6, 0xE0); bad {
			return s, true
		}
		if !lu.discard {
			// LIO answers the same when the backend cannot unmap.
			return Sense{Reason: ReasonInvalidOpcode}, true
		}
		cmd.paramLen = uint32(binary.BigEndian.Uint16(c[7:]))
		return Sense{}, false
	case WriteSame10, WriteSame16:
		cmd.kind = kWriteSame
		// byte 1: WRPROTECT 7-5, ANCHOR 4, UNMAP 3, obsolete PBDATA 2 and
		// LBDATA 1, reserved 0 (NDOB in SBC-4, not supported).
		if c[1]&0xE0 != 0 {
			return invalidField(1, 7), true
		}
		if s, bad := rsvd(c, 1, 0x17); bad {
			return s, true
		}
		cmd.unmap = c[1]&0x08 != 0
		if s, bad := lbaAndLength(cmd, c, op); bad {
			return s, true
		}
		// WSNZ=1: a length of 0 (the whole rest of the medium) is refused.
		if cmd.blocks == 0 || cmd.blocks > maxUnmapBlocks {
			return invalidField(cmd.lenOff, 7), true
		}
		return Sense{}, false
	case CompareAndWrite:
		cmd.kind = kCAW
		// byte 1: WRPROTECT 7-5, DPO 4, FUA 3, reserved 2, obsolete
		// FUA_NV 1, reserved 0.
		if c[1]&0xE0 != 0 {
			return invalidField(1, 7), true
		}
		if s, bad := rsvd(c, 1, 0x07); bad {
			return s, true
		}
		cmd.fua = c[1]&0x08 != 0
		cmd.lba = binary.BigEndian.Uint64(c[2:])
		if s, bad := rsvdBytes(c, 10, 13); bad {
			return s, true
		}
		cmd.blocks = uint32(c[13])
		cmd.lenOff = 13
		if cmd.blocks > lu.maxCAWBlocks() {
			return invalidField(13, 7), true
		}
		return rsvd(c, 14, 0xE0)
	}
	return Sense{Reason: ReasonInvalidOpcode}, true
}

// startSBC checks the data-out of a multi-request command and starts it.
func (e *Executor) startSBC(t *Task) {
	cmd := &t.cmd
	bs := t.b.lu.blockSize
	want := 0 // data-out bytes the command carries
	switch cmd.kind {
	case kVerify:
		switch cmd.bytchk {
		case 0:
			// Medium verification: the range is checked and the medium is
			// there; there is nothing more a RAM disk or a file can say.
			e.good(t, 0, 0)
			return
		case 1:
			want = int(cmd.blocks) * bs
		case 3:
			want = bs
		}
		if cmd.blocks == 0 {
			want = 0
		}
		t.step = stVerifyNext
	case kWriteVerify:
		want = int(cmd.blocks) * bs
	case kWriteSame:
		want = bs
	case kCAW:
		want = 2 * int(cmd.blocks) * bs
	case kUnmap:
		want = int(cmd.paramLen)
	}
	if t.DataLen != want {
		e.fail(t, Sense{Reason: ReasonInvalidFieldIU})
		return
	}
	if cmd.kind == kUnmap {
		if s, ok := e.checkUnmap(t); !ok {
			e.fail(t, s)
			return
		}
	} else if cmd.kind != kWriteSame && cmd.blocks == 0 {
		e.good(t, 0, 0) // nothing to do: SBC-3 says a length of 0 is not an error
		return
	}
	e.next(t)
}

// next takes t as far as it can go now: it queues t's next request,
// parks it (to be retried from Poll), or finishes it.
func (e *Executor) next(t *Task) {
	switch t.cmd.kind {
	case kWrite:
		e.startRW(t) // parked by writeGate
	case kVerify, kWriteVerify:
		e.verifyNext(t)
	case kUnmap:
		e.unmapNext(t)
	case kWriteSame:
		e.writeSameNext(t)
	case kCAW:
		e.cawNext(t)
	}
}

// stepSBC handles a successful request of a multi-request command.
func (e *Executor) stepSBC(t *Task, r *ioengine.Request) {
	cmd := &t.cmd
	bs := uint64(t.b.lu.blockSize)
	switch cmd.kind {
	case kVerify, kWriteVerify:
		if t.step == stWritten {
			if cmd.bytchk == 0 {
				e.good(t, 0, 0)
				return
			}
			t.step = stVerifyNext
			e.verifyNext(t)
			return
		}
		// A piece has been read: compare it with the data-out.
		got := r.Buf
		for i := 0; i < len(got); i += int(bs) {
			var want []byte
			off := t.pos*bs + uint64(i)
			if cmd.bytchk == 3 {
				want = t.Data[:bs]
			} else {
				want = t.Data[off : off+bs]
			}
			if j := mismatch(got[i:i+int(bs)], want); j >= 0 {
				e.fail(t, Sense{Reason: ReasonMiscompare, InfoValid: true, Info: off + uint64(j)})
				return
			}
		}
		t.pos += uint64(len(got)) / bs
		t.step = stVerifyNext
		e.verifyNext(t)
	case kUnmap:
		t.pos++
		e.unmapNext(t)
	case kWriteSame:
		if t.step == stWSWhole {
			t.pos = uint64(cmd.blocks)
		} else {
			t.pos += uint64(len(r.Buf)) / bs
		}
		e.writeSameNext(t)
	case kCAW:
		if t.step == stCAWWrite {
			e.good(t, 0, 0)
			return
		}
		n := int(cmd.blocks) * int(bs)
		if j := mismatch(e.cawBuf[:n], t.Data[:n]); j >= 0 {
			// SBC-3 5.2: INFORMATION is the offset in the data-out of the
			// first byte that differs; nothing is written.
			e.fail(t, Sense{Reason: ReasonMiscompare, InfoValid: true, Info: uint64(j)})
			return
		}
		t.step = stCAWWrite
		e.submit(t, ioengine.OpWrite, int64(cmd.lba)*int64(bs), 0, t.Data[n:2*n:2*n])
	}
}

// mismatch is the index of the first byte where a and b differ, or -1.
func mismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// park makes t wait for Poll to call next again.
func (e *Executor) park(t *Task) {
	t.flags |= tfParked
	t.u.parked = append(t.u.parked, t)
}

// retryParked gives every parked task of u another go.
func (e *Executor) retryParked(u *unit) {
	e.retry = append(e.retry[:0], u.parked...)
	clear(u.parked)
	u.parked = u.parked[:0]
	for _, t := range e.retry {
		t.flags &^= tfParked
		e.next(t)
	}
	clear(e.retry)
}

func (e *Executor) verifyNext(t *Task) {
	cmd := &t.cmd
	lu := t.b.lu
	bs := uint64(lu.blockSize)
	if t.step == stStart { // WRITE AND VERIFY: the write first
		e.beginWrite(t)
		if !e.writeGate(t, cmd.lba, uint64(cmd.blocks)) {
			return
		}
		t.step = stWritten
		e.submit(t, ioengine.OpWrite, int64(cmd.lba*bs), 0, t.Data[:t.DataLen:t.DataLen])
		return
	}
	left := uint64(cmd.blocks) - t.pos
	if left == 0 {
		e.good(t, 0, 0)
		return
	}
	if e.chunkBy != t {
		if e.chunkBy != nil {
			e.park(t)
			return
		}
		e.chunkBy = t
	}
	n := min(left, uint64(len(e.chunk))/bs)
	t.step = stVerifyRead
	e.submit(t, ioengine.OpRead, int64((cmd.lba+t.pos)*bs), 0, e.chunk[:n*bs:n*bs])
}

// checkUnmap validates the UNMAP parameter list (SBC-3 5.28.2) before any
// block is touched: a bad descriptor fails the command with nothing done.
func (e *Executor) checkUnmap(t *Task) (Sense, bool) {
	lu := t.b.lu
	p := t.Data[:t.DataLen]
	if len(p) == 0 {
		return Sense{}, true // PARAMETER LIST LENGTH 0: nothing to unmap
	}
	if len(p) < 8 {
		return Sense{Reason: ReasonParamListLength}, false
	}
	dataLen := int(binary.BigEndian.Uint16(p[0:]))
	descLen := int(binary.BigEndian.Uint16(p[2:]))
	if dataLen+2 > len(p) || descLen+8 > len(p) {
		return Sense{Reason: ReasonParamListLength}, false
	}
	n := descLen / 16 // a partial descriptor at the end is ignored
	if n > maxUnmapDescriptors {
		return invalidParam(2, 7), false
	}
	for i := 0; i < n; i++ {
		d := p[8+16*i:]
		lba, cnt := binary.BigEndian.Uint64(d), binary.BigEndian.Uint32(d[8:])
		if cnt > maxUnmapBlocks {
			return invalidParam(8+16*i+8, 7), false
		}
		if !inRange(lba, uint64(cnt), lu.blocks.Load()) {
			return Sense{Reason: ReasonLBAOutOfRange}, false
		}
	}
	return Sense{}, true
}

func (e *Executor) unmapNext(t *Task) {
	p := t.Data[:t.DataLen]
	n := uint64(0)
	if len(p) >= 8 {
		n = uint64(binary.BigEndian.Uint16(p[2:]) / 16)
	}
	bs := uint64(t.b.lu.blockSize)
	for ; t.pos < n; t.pos++ {
		d := p[8+16*t.pos:]
		lba, cnt := binary.BigEndian.Uint64(d), uint64(binary.BigEndian.Uint32(d[8:]))
		if cnt == 0 {
			continue
		}
		e.beginWrite(t)
		if !e.writeGate(t, lba, cnt) {
			return
		}
		e.submit(t, ioengine.OpDiscard, int64(lba*bs), int64(cnt*bs), nil)
		return
	}
	e.good(t, 0, 0)
}

// writeSameNext writes the one block of data-out over the range: as a
// discard when UNMAP is set and the engine can (SBC-3 5.42: the device
// server may deallocate), as write-zeroes for a zero block when the engine
// has it, else the pattern a chunk at a time.
func (e *Executor) writeSameNext(t *Task) {
	cmd := &t.cmd
	lu := t.b.lu
	bs := uint64(lu.blockSize)
	if t.step == stStart {
		block := t.Data[:bs]
		switch {
		case cmd.unmap && lu.discard, isZero(block) && lu.zeroes:
			t.step = stWSWhole
		default:
			if e.chunkBy != nil && e.chunkBy != t {
				e.park(t)
				return
			}
			e.chunkBy = t
			for i := 0; i+int(bs) <= len(e.chunk); i += int(bs) {
				copy(e.chunk[i:], block)
			}
			t.step = stWSPattern
		}
	}
	left := uint64(cmd.blocks) - t.pos
	if left == 0 {
		e.good(t, 0, 0)
		return
	}
	lba := cmd.lba + t.pos
	e.beginWrite(t)
	if t.step == stWSWhole {
		if !e.writeGate(t, lba, left) {
			return
		}
		op := ioengine.OpWriteZeroes
		if cmd.unmap && lu.discard {
			op = ioengine.OpDiscard
		}
		e.submit(t, op, int64(lba*bs), int64(left*bs), nil)
		return
	}
	n := min(left, uint64(len(e.chunk))/bs)
	if !e.writeGate(t, lba, n) {
		return
	}
	e.submit(t, ioengine.OpWrite, int64(lba*bs), 0, e.chunk[:n*bs:n*bs])
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// COMPARE AND WRITE is atomic against every other write to its blocks,
// from any reactor, without a lock on the write path. A COMPARE AND WRITE
// claims its range in the LU's cawTable (a mutex, taken only by COMPARE
// AND WRITE) and then waits until every reactor's unit of the LU has
// either no write command in progress or has acknowledged the claim,
// which a unit does from Poll once none of its requests in the engine
// overlaps the range. A write checks the table after counting itself in
// unit.writes (both sequentially consistent atomics, so either the write
// sees the claim or the claimer sees the count) and waits, parked, while
// it overlaps a claim.

type cawSlot struct {
	gen    atomic.Uint64 // odd while held; each claim has its own value
	lba, n atomic.Uint64
}

type cawTable struct {
	active atomic.Int32
	mu     sync.Mutex // serializes claims
	slots  [cawSlots]cawSlot

	units cowList[*unit] // every Executor's unit of the LU
}

func (c *cawTable) addUnit(u *unit)    { c.units.add(u) }
func (c *cawTable) removeUnit(u *unit) { c.units.remove(u) }

func overlaps(a, an, b, bn uint64) bool { return a < b+bn && b < a+an }

// read returns slot i's range and generation while it is held.
func (s *cawSlot) read() (lba, n, gen uint64, held bool) {
	for {
		g := s.gen.Load()
		if g&1 == 0 {
			return 0, 0, g, false
		}
		lba, n = s.lba.Load(), s.n.Load()
		if s.gen.Load() == g {
			return lba, n, g, true
		}
	}
}

// claim takes a slot for [lba, lba+n) unless a held one overlaps it.
func (c *cawTable) claim(lba, n uint64) (int8, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	free := -1
	for i := range c.slots {
		s := &c.slots[i]
		if s.gen.Load()&1 == 0 {
			if free < 0 {
				free = i
			}
			continue
		}
		if overlaps(lba, n, s.lba.Load(), s.n.Load()) {
			return -1, false
		}
	}
	if free < 0 {
		return -1, false
	}
	s := &c.slots[free]
	s.lba.Store(lba)
	s.n.Store(n)
	s.gen.Add(1) // now odd: held
	c.active.Add(1)
	return int8(free), true
}

// release gives back t's claim.
func (c *cawTable) release(t *Task) {
	c.slots[t.cawSlot].gen.Add(1) // even: free
	c.active.Add(-1)
	t.cawSlot = -1
}

// beginWrite counts t as a write in progress on its unit, once.
func (e *Executor) beginWrite(t *Task) {
	if t.flags&tfWriting == 0 {
		t.flags |= tfWriting
		t.u.writes.Add(1)
	}
}

// writeGate reports whether t may write [lba, lba+n) now; if a COMPARE AND
// WRITE holds an overlapping range, it parks t and says no.
func (e *Executor) writeGate(t *Task, lba, n uint64) bool {
	c := &t.b.lu.caw
	if c.active.Load() == 0 {
		return true
	}
	for i := range c.slots {
		if l, m, _, held := c.slots[i].read(); held && int8(i) != t.cawSlot && overlaps(lba, n, l, m) {
			e.park(t)
			return false
		}
	}
	return true
}

// cawAck acknowledges, for unit u, every held claim that none of u's
// requests in the engine overlaps.
func (e *Executor) cawAck(u *unit) {
	c := &u.lu.caw
	for i := range c.slots {
		l, m, g, held := c.slots[i].read()
		if !held || u.acks[i].Load() == g {
			continue
		}
		ok := true
		for j := range e.slots {
			sl := &e.slots[j]
			t := sl.task
			if t == nil || t.u != u || t.flags&tfInEngine == 0 || int(t.cawSlot) == i || sl.req.Op == ioengine.OpRead {
				continue
			}
			bs := uint64(u.lu.blockSize)
			off, size := uint64(sl.req.Offset)/bs, uint64(sl.req.Size())/bs
			if overlaps(off, max(size, 1), l, m) {
				ok = false
				break
			}
		}
		if ok && c.slots[i].gen.Load() == g {
			u.acks[i].Store(g)
		}
	}
}

// acked reports whether every unit of the LU has let t's claim through.
func (e *Executor) acked(t *Task) bool {
	c := &t.b.lu.caw
	i := t.cawSlot
	g := c.slots[i].gen.Load()
	for _, u := range c.units.load() {
		if u.writes.Load() != 0 && u.acks[i].Load() != g {
			return false
		}
	}
	return true
}

func (e *Executor) cawNext(t *Task) {
	cmd := &t.cmd
	lu := t.b.lu
	if t.step == stStart {
		if e.cawBy != nil && e.cawBy != t {
			e.park(t)
			return
		}
		i, ok := lu.caw.claim(cmd.lba, uint64(cmd.blocks))
		if !ok {
			e.park(t)
			return
		}
		e.cawBy = t
		t.cawSlot = i
		t.step = stCAWAck
	}
	if t.step == stCAWAck {
		if u := t.u; u.writes.Load() != 0 {
			e.cawAck(u) // our own unit need not wait for the next Poll
		}
		if !e.acked(t) {
			e.park(t)
			return
		}
		t.step = stCAWRead
		n := int(cmd.blocks) * lu.blockSize
		e.submit(t, ioengine.OpRead, int64(cmd.lba)*int64(lu.blockSize), 0, e.cawBuf[:n:n])
	}
}
