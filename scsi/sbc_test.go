package scsi_test

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/scsi"
)

// fill writes blocks blocks of pattern seed at lba and checks it worked.
func fill(t *testing.T, e *scsi.Executor, lba uint64, blocks int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, blocks*512)
	enginetest.Fill(data, seed)
	w := &scsi.Task{CDB: rw16(0x8A, lba, uint32(blocks), false), Data: data, DataLen: len(data)}
	run(t, e, w)
	if w.Status != scsi.StatusGood {
		t.Fatalf("WRITE: %v %v", w.Status, w.Reason)
	}
	return data
}

func readBack(t *testing.T, e *scsi.Executor, lba uint64, blocks int) []byte {
	t.Helper()
	r := &scsi.Task{CDB: rw16(0x88, lba, uint32(blocks), false), Data: make([]byte, blocks*512), DataLen: blocks * 512}
	run(t, e, r)
	if r.Status != scsi.StatusGood {
		t.Fatalf("READ: %v %v", r.Status, r.Reason)
	}
	return r.Data
}

func unmapParams(descs ...[2]uint64) []byte {
	p := make([]byte, 8+16*len(descs))
	binary.BigEndian.PutUint16(p[0:], uint16(len(p)-2))
	binary.BigEndian.PutUint16(p[2:], uint16(16*len(descs)))
	for i, d := range descs {
		binary.BigEndian.PutUint64(p[8+16*i:], d[0])
		binary.BigEndian.PutUint32(p[8+16*i+8:], uint32(d[1]))
	}
	return p
}

func unmapCDB(n int) []byte {
	c := []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(c[7:], uint16(n))
	return c
}

// loggedLU is a 4 MiB mem LU (mod edits its config) whose engine requests
// are recorded in *log, with an executor over it.
func loggedLU(t *testing.T, mod func(*scsi.Config)) (*scsi.LU, *scsi.Executor, ioengine.Device, *[]ioengine.Request) {
	t.Helper()
	log := new([]ioengine.Request)
	md, err := mem.Open(4<<20, 512)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = md.Close() })
	d := flagsSeen{md, log}
	lu := luOn(t, d, mod)
	return lu, newExec(t, lu, d, 4), md, log
}

func TestUnmap(t *testing.T) {
	lu, e, md, log := loggedLU(t, func(c *scsi.Config) { c.Thin = true })
	fill(t, e, 0, 64, 3)

	p := unmapParams([2]uint64{8, 8}, [2]uint64{40, 0}, [2]uint64{32, 4})
	*log = (*log)[:0]
	task := &scsi.Task{CDB: unmapCDB(len(p)), Data: p, DataLen: len(p)}
	run(t, e, task)
	if task.Status != scsi.StatusGood {
		t.Fatalf("UNMAP: %v %v", task.Status, task.Reason)
	}
	if len(*log) != 2 || (*log)[0].Op != ioengine.OpDiscard || (*log)[0].Offset != 8*512 || (*log)[0].Len != 8*512 || (*log)[1].Offset != 32*512 || (*log)[1].Len != 4*512 {
		t.Fatalf("requests %+v", log)
	}
	got := readBack(t, e, 0, 64)
	for blk := 0; blk < 64; blk++ {
		unmapped := blk >= 8 && blk < 16 || blk >= 32 && blk < 36
		if z := isZeroes(got[blk*512 : (blk+1)*512]); z != unmapped {
			t.Errorf("block %d: zero %v, want %v", blk, z, unmapped)
		}
	}

	last := lu.Blocks()
	for _, tc := range []struct {
		name   string
		params []byte
		cdbLen int // PARAMETER LIST LENGTH, if not len(params)
		reason scsi.Reason
		field  int
	}{
		{"empty list", nil, 0, scsi.ReasonNone, -1},
		{"header only", unmapParams(), 0, scsi.ReasonNone, -1},
		{"short header", []byte{0, 6, 0, 0}, 0, scsi.ReasonParamListLength, -1},
		{"data length past the list", func() []byte { p := unmapParams([2]uint64{0, 1}); p[1] = 200; return p }(), 0, scsi.ReasonParamListLength, -1},
		{"descriptor length past the list", func() []byte { p := unmapParams([2]uint64{0, 1}); p[3] = 32; return p }(), 0, scsi.ReasonParamListLength, -1},
		{"past the end", unmapParams([2]uint64{last - 1, 2}), 0, scsi.ReasonLBAOutOfRange, -1},
		{"LBA wraps", unmapParams([2]uint64{^uint64(0), 2}), 0, scsi.ReasonLBAOutOfRange, -1},
		{"too many blocks", unmapParams([2]uint64{0, 1 << 23}), 0, scsi.ReasonInvalidFieldParam, 16},
		{"expected length differs", unmapParams([2]uint64{0, 1}), 8, scsi.ReasonInvalidFieldIU, -1},
	} {
		n := len(tc.params)
		if tc.cdbLen != 0 {
			n = tc.cdbLen
		}
		task := &scsi.Task{CDB: unmapCDB(n), Data: tc.params, DataLen: len(tc.params)}
		run(t, e, task)
		if task.Reason != tc.reason {
			t.Errorf("%s: %v %v, want %v", tc.name, task.Status, task.Reason, tc.reason)
			continue
		}
		if tc.field >= 0 {
			if f := task.Sense[15:18]; f[0] != 0x80|0x08|7 || int(binary.BigEndian.Uint16(f[1:])) != tc.field {
				t.Errorf("%s: field pointer % x, want byte %d bit 7 of the parameter list", tc.name, f, tc.field)
			}
		}
	}
	descs := make([][2]uint64, 257)
	big := unmapParams(descs...)
	task = &scsi.Task{CDB: unmapCDB(len(big)), Data: big, DataLen: len(big)}
	run(t, e, task)
	if task.Reason != scsi.ReasonInvalidFieldParam {
		t.Errorf("257 descriptors: %v", task.Reason)
	}

	// Read-only LUs and engines that cannot discard refuse it.
	ro := luOn(t, md, func(c *scsi.Config) { c.ReadOnly = true })
	ero := newExec(t, ro, md, 2)
	p = unmapParams([2]uint64{0, 1})
	task = &scsi.Task{CDB: unmapCDB(len(p)), Data: p, DataLen: len(p)}
	run(t, ero, task)
	if task.Reason != scsi.ReasonWriteProtected {
		t.Errorf("read-only UNMAP: %v", task.Reason)
	}
	nd := luOn(t, noDiscard{md}, nil)
	end := newExec(t, nd, md, 2)
	task = &scsi.Task{CDB: unmapCDB(len(p)), Data: p, DataLen: len(p)}
	run(t, end, task)
	if task.Reason != scsi.ReasonInvalidOpcode {
		t.Errorf("UNMAP without discard: %v", task.Reason)
	}
}

func isZeroes(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

func ws16(lba uint64, blocks uint32, unmap bool) []byte {
	c := rw16(0x93, lba, blocks, false)
	if unmap {
		c[1] = 0x08
	}
	return c
}

func TestWriteSame(t *testing.T) {
	lu, e, _, log := loggedLU(t, nil)
	fill(t, e, 0, 600, 9)

	// A pattern over more than one chunk (256 blocks of 512 bytes each).
	block := make([]byte, 512)
	enginetest.Fill(block, 77)
	*log = (*log)[:0]
	task := &scsi.Task{CDB: ws16(10, 520, false), Data: block, DataLen: 512}
	run(t, e, task)
	if task.Status != scsi.StatusGood {
		t.Fatalf("WRITE SAME: %v %v", task.Status, task.Reason)
	}
	if len(*log) != 3 || (*log)[0].Flags != ioengine.FlagFUA {
		t.Fatalf("pattern requests: %d, first %+v", len(*log), (*log)[0])
	}
	got := readBack(t, e, 0, 600)
	for blk := 0; blk < 600; blk++ {
		inside := blk >= 10 && blk < 530
		if eq := bytes.Equal(got[blk*512:(blk+1)*512], block); eq != inside {
			t.Fatalf("block %d: pattern %v, want %v", blk, eq, inside)
		}
	}
	// A zero block is one write-zeroes; with UNMAP, one discard.
	for _, tc := range []struct {
		unmap bool
		op    ioengine.Op
	}{{false, ioengine.OpWriteZeroes}, {true, ioengine.OpDiscard}} {
		*log = (*log)[:0]
		task := &scsi.Task{CDB: ws16(100, 50, tc.unmap), Data: make([]byte, 512), DataLen: 512}
		run(t, e, task)
		if task.Status != scsi.StatusGood || len(*log) != 1 || (*log)[0].Op != tc.op || (*log)[0].Offset != 100*512 || (*log)[0].Len != 50*512 {
			t.Errorf("UNMAP=%v: %v, requests %+v", tc.unmap, task.Status, log)
		}
		if !isZeroes(readBack(t, e, 100, 50)) {
			t.Errorf("UNMAP=%v: not zero after", tc.unmap)
		}
	}
	// WRITE SAME(10) and refusals.
	w10 := []byte{0x41, 0, 0, 0, 0, 5, 0, 0, 2, 0}
	task = &scsi.Task{CDB: w10, Data: block, DataLen: 512}
	run(t, e, task)
	if task.Status != scsi.StatusGood || !bytes.Equal(readBack(t, e, 6, 1), block) {
		t.Errorf("WRITE SAME(10): %v", task.Status)
	}
	for _, tc := range []struct {
		name    string
		cdb     []byte
		dataLen int
		reason  scsi.Reason
	}{
		{"data-out of two blocks", ws16(0, 4, false), 1024, scsi.ReasonInvalidFieldIU},
		{"past the end", ws16(lu.Blocks()-1, 2, false), 512, scsi.ReasonLBAOutOfRange},
		{"too long", ws16(0, 1<<23, false), 512, scsi.ReasonInvalidFieldCDB},
		{"ANCHOR", func() []byte { c := ws16(0, 1, false); c[1] = 0x10; return c }(), 512, scsi.ReasonInvalidFieldCDB},
		{"NDOB", func() []byte { c := ws16(0, 1, false); c[1] = 0x01; return c }(), 512, scsi.ReasonInvalidFieldCDB},
	} {
		task := &scsi.Task{CDB: tc.cdb, Data: make([]byte, tc.dataLen), DataLen: tc.dataLen}
		run(t, e, task)
		if task.Reason != tc.reason {
			t.Errorf("%s: %v, want %v", tc.name, task.Reason, tc.reason)
		}
	}
}

func cawCDB(lba uint64, blocks byte) []byte {
	c := make([]byte, 16)
	c[0] = 0x89
	binary.BigEndian.PutUint64(c[2:], lba)
	c[13] = blocks
	return c
}

func TestCompareAndWrite(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	e := newExec(t, lu, d, 4)
	old := fill(t, e, 20, 2, 5)
	next := make([]byte, 1024)
	enginetest.Fill(next, 6)

	// A match writes.
	task := &scsi.Task{CDB: cawCDB(20, 2), Data: append(append([]byte(nil), old...), next...), DataLen: 2048}
	run(t, e, task)
	if task.Status != scsi.StatusGood || !bytes.Equal(readBack(t, e, 20, 2), next) {
		t.Fatalf("COMPARE AND WRITE that matches: %v %v", task.Status, task.Reason)
	}
	// A mismatch writes nothing and says where.
	stale := append([]byte(nil), next...)
	stale[700] ^= 1
	task = &scsi.Task{CDB: cawCDB(20, 2), Data: append(stale, old...), DataLen: 2048}
	run(t, e, task)
	if k, asc := senseOf(t, task); k != scsi.KeyMiscompare || asc != 0x1D00 {
		t.Fatalf("mismatch: %v %04x", k, asc)
	}
	if task.Sense[0] != 0xF0 || binary.BigEndian.Uint32(task.Sense[3:]) != 700 {
		t.Errorf("mismatch sense % x: want VALID and INFORMATION 700", task.Sense[:task.SenseLen])
	}
	if !bytes.Equal(readBack(t, e, 20, 2), next) {
		t.Error("a miscompare wrote")
	}
	for _, tc := range []struct {
		name    string
		cdb     []byte
		dataLen int
		status  scsi.Status
		reason  scsi.Reason
	}{
		{"zero blocks", cawCDB(0, 0), 0, scsi.StatusGood, scsi.ReasonNone},
		{"data-out of one half", cawCDB(0, 1), 512, scsi.StatusCheckCondition, scsi.ReasonInvalidFieldIU},
		{"past the end", cawCDB(lu.Blocks()-1, 2), 2048, scsi.StatusCheckCondition, scsi.ReasonLBAOutOfRange},
	} {
		task := &scsi.Task{CDB: tc.cdb, Data: make([]byte, tc.dataLen), DataLen: tc.dataLen}
		run(t, e, task)
		if task.Status != tc.status || task.Reason != tc.reason {
			t.Errorf("%s: %v %v", tc.name, task.Status, task.Reason)
		}
	}
}

// TestCompareAndWriteWaitsForWrites runs two executors (two reactors) on
// one LU: a COMPARE AND WRITE does not read while a write to its blocks is
// in the other reactor's engine, and a write that arrives while it holds
// the range waits for it.
func TestCompareAndWriteWaitsForWrites(t *testing.T) {
	md, err := mem.Open(1<<20, 512)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = md.Close() })
	slow := faulty.Wrap(md, faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Delay: 5})
	lu := luOn(t, md, nil)
	a, _ := scsi.NewExecutor(4)
	b, _ := scsi.NewExecutor(4)
	attach(t, a, lu, md, 4)
	attach(t, b, lu, slow, 4) // b's writes take 5 of b's Polls
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	nexusOf.Store(a, n)
	clearUA(t, a, n, 0)
	ca, cb := collect(t, a), collect(t, b)

	blockOf := func(seed uint64) []byte { p := make([]byte, 512); enginetest.Fill(p, seed); return p }
	x, y, z := blockOf(1), blockOf(2), blockOf(3)
	w := &scsi.Task{Nexus: n, CDB: rw16(0x8A, 7, 1, false), Data: x, DataLen: 512}
	b.Start(w)
	cb.poll(1) // in b's engine
	caw := &scsi.Task{Nexus: n, CDB: cawCDB(7, 1), Data: append(append([]byte(nil), x...), y...), DataLen: 1024}
	a.Start(caw)
	ca.poll(50)
	if ca.back(caw) {
		t.Fatalf("COMPARE AND WRITE finished (%v %v) while a write to its block was in flight", caw.Status, caw.Reason)
	}
	cb.poll(10) // the write lands; b acknowledges the claim
	ca.poll(5)
	if !cb.back(w) || !ca.back(caw) || caw.Status != scsi.StatusGood {
		t.Fatalf("write back %v, COMPARE AND WRITE back %v: %v %v", cb.back(w), ca.back(caw), caw.Status, caw.Reason)
	}

	// Now the other way: a COMPARE AND WRITE holding the range (its read
	// is slow on a) makes b's write wait.
	a2, _ := scsi.NewExecutor(4)
	slowReads := faulty.Wrap(md, faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Delay: 8})
	attach(t, a2, lu, slowReads, 4)
	ca2 := collect(t, a2)
	caw2 := &scsi.Task{Nexus: n, CDB: cawCDB(7, 1), Data: append(append([]byte(nil), y...), z...), DataLen: 1024}
	a2.Start(caw2)
	ca2.poll(1)
	w2 := &scsi.Task{Nexus: n, CDB: rw16(0x8A, 7, 1, false), Data: x, DataLen: 512}
	b.Start(w2)
	other := &scsi.Task{Nexus: n, CDB: rw16(0x8A, 9, 1, false), Data: x, DataLen: 512}
	b.Start(other)
	cb.poll(30)
	if cb.back(w2) || !cb.back(other) {
		t.Fatalf("while the range is held: overlapping write back %v, other write back %v", cb.back(w2), cb.back(other))
	}
	ca2.poll(20)
	if !ca2.back(caw2) || caw2.Status != scsi.StatusGood {
		t.Fatalf("second COMPARE AND WRITE: back %v %v %v", ca2.back(caw2), caw2.Status, caw2.Reason)
	}
	cb.poll(30)
	if !cb.back(w2) || !bytes.Equal(readBack(t, a, 7, 1), x) {
		t.Fatalf("the waiting write: back %v", cb.back(w2))
	}
}

// TestCompareAndWriteCounter has two reactors increment one counter with
// COMPARE AND WRITE in parallel, retrying on MISCOMPARE: with atomic
// COMPARE AND WRITE no increment is lost.
func TestCompareAndWriteCounter(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	const per = 300
	var wg sync.WaitGroup
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	execs := make([]*scsi.Executor, 2)
	for i := range execs {
		execs[i], _ = scsi.NewExecutor(4)
		attach(t, execs[i], lu, d, 4)
	}
	nexusOf.Store(execs[0], n)
	clearUA(t, execs[0], n, 0)
	for _, e := range execs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out [1]*scsi.Task
			do := func(task *scsi.Task) {
				e.Start(task)
				for e.Poll(out[:]) == 0 {
				}
			}
			buf := make([]byte, 1024)
			for done := 0; done < per; {
				r := &scsi.Task{Nexus: n, CDB: rw16(0x88, 3, 1, false), Data: buf[:512], DataLen: 512}
				do(r)
				v := binary.BigEndian.Uint64(buf)
				binary.BigEndian.PutUint64(buf[512:], v+1)
				c := &scsi.Task{Nexus: n, CDB: cawCDB(3, 1), Data: buf, DataLen: 1024}
				do(c)
				if c.Status == scsi.StatusGood {
					done++
				} else if c.Reason != scsi.ReasonMiscompare {
					t.Errorf("COMPARE AND WRITE: %v %v", c.Status, c.Reason)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v := binary.BigEndian.Uint64(readBack(t, execs[0], 3, 1)); v != 2*per {
		t.Fatalf("counter %d, want %d", v, 2*per)
	}
}

func TestVerifyAndWriteVerify(t *testing.T) {
	_, e, _, log := loggedLU(t, func(c *scsi.Config) { c.WriteCache = true })
	data := fill(t, e, 0, 300, 11)
	v16 := func(bytchk byte, lba uint64, blocks uint32) []byte {
		c := rw16(0x8F, lba, blocks, false)
		c[1] = bytchk << 1
		return c
	}
	// BYTCHK 01b over more than a chunk: equal, then one byte off.
	task := &scsi.Task{CDB: v16(1, 0, 300), Data: data, DataLen: len(data)}
	run(t, e, task)
	if task.Status != scsi.StatusGood {
		t.Fatalf("VERIFY BYTCHK=1: %v %v", task.Status, task.Reason)
	}
	bad := append([]byte(nil), data...)
	bad[290*512+3] ^= 0x80
	task = &scsi.Task{CDB: v16(1, 0, 300), Data: bad, DataLen: len(bad)}
	run(t, e, task)
	if task.Reason != scsi.ReasonMiscompare || binary.BigEndian.Uint32(task.Sense[3:]) != 290*512+3 {
		t.Fatalf("VERIFY miscompare: %v, sense % x", task.Reason, task.Sense[:task.SenseLen])
	}
	// BYTCHK 11b: one block against each.
	same := make([]byte, 512)
	enginetest.Fill(same, 12)
	run(t, e, &scsi.Task{CDB: ws16(400, 10, false), Data: same, DataLen: 512})
	task = &scsi.Task{CDB: v16(3, 400, 10), Data: same, DataLen: 512}
	run(t, e, task)
	if task.Status != scsi.StatusGood {
		t.Fatalf("VERIFY BYTCHK=3: %v %v", task.Status, task.Reason)
	}
	task = &scsi.Task{CDB: v16(3, 399, 10), Data: same, DataLen: 512}
	run(t, e, task)
	if task.Reason != scsi.ReasonMiscompare {
		t.Fatalf("VERIFY BYTCHK=3 over a different block: %v", task.Reason)
	}
	// WRITE AND VERIFY writes with FUA even with a write cache, then
	// reads back when BYTCHK is set.
	for _, bytchk := range []byte{0, 1} {
		*log = (*log)[:0]
		wv := rw16(0x8E, 500, 4, false)
		wv[1] = bytchk << 1
		buf := make([]byte, 2048)
		enginetest.Fill(buf, uint64(20+bytchk))
		task := &scsi.Task{CDB: wv, Data: buf, DataLen: len(buf)}
		run(t, e, task)
		if task.Status != scsi.StatusGood || (*log)[0].Op != ioengine.OpWrite || (*log)[0].Flags != ioengine.FlagFUA || len(*log) != 1+int(bytchk) {
			t.Fatalf("WRITE AND VERIFY BYTCHK=%d: %v, requests %+v", bytchk, task.Status, log)
		}
		if !bytes.Equal(readBack(t, e, 500, 4), buf) {
			t.Fatalf("WRITE AND VERIFY BYTCHK=%d did not write", bytchk)
		}
	}
}

// TestSBCZeroAllocs: the multi-request commands allocate nothing per
// command either, once warm.
func TestSBCZeroAllocs(t *testing.T) {
	d, err := mem.Open(16<<20, 512)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	lu := luOn(t, d, func(c *scsi.Config) { c.Thin = true })
	e := newExec(t, lu, d, 8)
	p := unmapParams([2]uint64{0, 8}, [2]uint64{64, 8})
	block := make([]byte, 1024)
	block[0] = 1
	for _, task := range []*scsi.Task{
		{CDB: unmapCDB(len(p)), Data: p, DataLen: len(p)},
		{CDB: ws16(0, 600, false), Data: block[:512], DataLen: 512},
		{CDB: cawCDB(1000, 1), Data: make([]byte, 1024), DataLen: 1024},
		{CDB: []byte{0x8E, 0x02, 0, 0, 0, 0, 0, 0, 0x07, 0xD0, 0, 0, 0, 1, 0, 0}, Data: make([]byte, 512), DataLen: 512},
		{CDB: []byte{0x8F, 0x02, 0, 0, 0, 0, 0, 0, 0x07, 0xD0, 0, 0, 0, 1, 0, 0}, Data: make([]byte, 512), DataLen: 512},
	} {
		run(t, e, task)
		if task.Status != scsi.StatusGood {
			t.Fatalf("%x: %v %v", task.CDB[0], task.Status, task.Reason)
		}
		if n := testing.AllocsPerRun(200, func() { run(t, e, task) }); n != 0 {
			t.Errorf("%x: %v allocations per command", task.CDB[0], n)
		}
	}
}

// A command that takes data-out and succeeds reports no residual when
// the initiator sent what the CDB asked for: PERSISTENT RESERVE OUT, MODE
// SELECT, UNMAP, WRITE SAME and COMPARE AND WRITE included, not only the
// WRITEs (SRP_RSP's DOUNDER, iSCSI's residual: sg_persist and the block
// layer see them).
func TestDataOutResidual(t *testing.T) {
	lu, e, _, _ := loggedLU(t, func(c *scsi.Config) { c.Thin = true })
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	clearUA(t, e, n, 0)
	bs := lu.BlockSize()
	caw := make([]byte, 2*bs) // compare zeroes, write zeroes
	for _, tc := range []struct {
		name string
		cdb  []byte
		data []byte
	}{
		{"PERSISTENT RESERVE OUT", prOutCDB(saRegister, 0, 24), prParams(0, 0x7, 0)},
		{"MODE SELECT(10)", modeSelect(true, 0x10, 8), make([]byte, 8)},
		{"UNMAP", unmapCDB(24), unmapParams([2]uint64{8, 8})},
		{"WRITE SAME(16)", ws16(16, 8, false), make([]byte, bs)},
		{"COMPARE AND WRITE", cawCDB(64, 1), caw},
		{"WRITE(16)", rw16(0x8A, 0, 1, false), make([]byte, bs)},
	} {
		task := do(t, e, n, tc.cdb, tc.data, len(tc.data))
		if task.Status != scsi.StatusGood {
			t.Errorf("%s: %v (%v)", tc.name, task.Status, task.Reason)
			continue
		}
		if task.Resid != scsi.ResidNone || task.Residual != 0 {
			t.Errorf("%s: residual %v %d, want none", tc.name, task.Resid, task.Residual)
		}
	}
}
