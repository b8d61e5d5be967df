package scsi_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/ioengine/psync"
	"github.com/usrpt/usrpt/ioengine/uring"
	"github.com/usrpt/usrpt/scsi"
)

// The conformance set: our own tests, grouped after the topics of
// libiscsi's iscsi-test-cu suites (SCSI.Inquiry, SCSI.ReadCapacity16,
// SCSI.Read10, SCSI.Write16, SCSI.Verify16, SCSI.CompareAndWrite,
// SCSI.Unmap, SCSI.WriteSame16, ...), run against every engine a LU can
// sit on. Each checks what an initiator sees, status and sense included.

const confSize = 8 << 20 // 16384 blocks of 512 bytes

type backend struct {
	name string
	open func(t *testing.T) ioengine.Device
}

func backends() []backend {
	file := func(t *testing.T) string { return filepath.Join(t.TempDir(), "lun.img") }
	return []backend{
		{"mem", func(t *testing.T) ioengine.Device {
			d, err := mem.Open(confSize, 512)
			if err != nil {
				t.Skip(err)
			}
			return d
		}},
		{"uring", func(t *testing.T) ioengine.Device {
			if err := uring.Probe(); err != nil {
				t.Skipf("io_uring: %v", err)
			}
			d, err := uring.Open(uring.Config{Path: file(t), Create: true, SizeBytes: confSize, NoSingleIssuer: true})
			if err != nil {
				t.Skip(err)
			}
			return d
		}},
		{"psync", func(t *testing.T) ioengine.Device {
			d, err := psync.Open(psync.Config{Config: blockfile.Config{Path: file(t), Create: true, SizeBytes: confSize}})
			if err != nil {
				t.Skip(err)
			}
			return d
		}},
	}
}

// conf is one backend's LU and an executor over it, plus a read-only LU
// on the same engine.
type conf struct {
	t      *testing.T
	lu, ro *scsi.LU
	e, ero *scsi.Executor
	thin   bool
}

// do runs cdb with a buffer of n bytes (data-out when out is given).
func (c *conf) do(e *scsi.Executor, cdb []byte, n int, out []byte) *scsi.Task {
	c.t.Helper()
	data := make([]byte, n)
	copy(data, out)
	task := &scsi.Task{CDB: cdb, Data: data, DataLen: n}
	run(c.t, e, task)
	return task
}

func (c *conf) good(task *scsi.Task) {
	c.t.Helper()
	if task.Status != scsi.StatusGood {
		c.t.Fatalf("%x: %v %v, want GOOD", task.CDB, task.Status, task.Reason)
	}
}

func (c *conf) check(task *scsi.Task, key scsi.Key, ascq uint16) {
	c.t.Helper()
	if task.Status != scsi.StatusCheckCondition {
		c.t.Fatalf("%x: %v, want CHECK CONDITION %v %04x", task.CDB, task.Status, key, ascq)
	}
	if k, a := senseOf(c.t, task); k != key || a != ascq {
		c.t.Fatalf("%x: sense %v %04x, want %v %04x", task.CDB, k, a, key, ascq)
	}
}

const (
	ascInvalidField = 0x2400
	ascLBARange     = 0x2100
	ascWriteProt    = 0x2700
	ascMiscompare   = 0x1D00
	ascParamLen     = 0x1A00
	ascInvalidOp    = 0x2000
)

func cdb10(op byte, lba uint32, n uint16) []byte {
	c := make([]byte, 10)
	c[0] = op
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], n)
	return c
}

func cdb12(op byte, lba uint32, n uint32) []byte {
	c := make([]byte, 12)
	c[0] = op
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint32(c[6:], n)
	return c
}

func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			d := b.open(t)
			t.Cleanup(func() { _ = d.Close() })
			thin := d.Supports(ioengine.OpDiscard)
			lu := luOn(t, d, func(cfg *scsi.Config) { cfg.Thin = thin })
			ro := luOn(t, d, func(cfg *scsi.Config) { cfg.ReadOnly = true; cfg.Serial = "ro" })
			for _, topic := range conformanceTopics {
				t.Run(topic.name, func(t *testing.T) {
					c := &conf{t: t, lu: lu, ro: ro, thin: thin}
					c.e = newExec(t, lu, d, 8)
					c.ero = newExec(t, ro, d, 8)
					topic.f(c)
				})
			}
		})
	}
}

var conformanceTopics = []struct {
	name string
	f    func(c *conf)
}{
	{"TestUnitReady", func(c *conf) { c.good(c.do(c.e, cdbTUR, 0, nil)) }},
	{"Inquiry", confInquiry},
	{"ReadCapacity", confReadCapacity},
	{"ReadWrite", confReadWrite},
	{"ReadOnly", confReadOnly},
	{"Verify", confVerify},
	{"WriteVerify", confWriteVerify},
	{"CompareAndWrite", confCompareAndWrite},
	{"Unmap", confUnmap},
	{"WriteSame", confWriteSame},
	{"StartStopUnit", confStartStop},
	{"ModeSense", confModeSense},
	{"ReportSupportedOpcodes", confRSOC},
	{"PersistentReserve", confPersistentReserve},
	{"PreventAllow", func(c *conf) {
		c.good(c.do(c.e, []byte{0x1E, 0, 0, 0, 1, 0}, 0, nil))
		c.good(c.do(c.e, []byte{0x1E, 0, 0, 0, 0, 0}, 0, nil))
	}},
}

func confInquiry(c *conf) {
	// Standard data: any allocation length is honoured, none is an error.
	full := c.do(c.e, []byte{0x12, 0, 0, 0, 255, 0}, 255, nil)
	c.good(full)
	if full.Xfer < 36 || int(full.Data[4])+5 != full.Xfer || full.Data[0] != 0 || full.Data[2] < 5 {
		c.t.Fatalf("standard INQUIRY: %d bytes, additional length %d, byte 0 %#x, version %#x", full.Xfer, full.Data[4], full.Data[0], full.Data[2])
	}
	for _, alloc := range []int{0, 1, 5, 35} {
		task := c.do(c.e, []byte{0x12, 0, 0, 0, byte(alloc), 0}, alloc, nil)
		c.good(task)
		if task.Xfer != alloc || !bytes.Equal(task.Data, full.Data[:alloc]) {
			c.t.Errorf("allocation length %d: %d bytes", alloc, task.Xfer)
		}
	}
	// EVPD: every page 0x00 lists answers, with a consistent length; one
	// it does not list is INVALID FIELD IN CDB.
	sup := c.do(c.e, []byte{0x12, 1, 0, 0, 255, 0}, 255, nil)
	c.good(sup)
	n := int(binary.BigEndian.Uint16(sup.Data[2:]))
	pages := sup.Data[4 : 4+n]
	for _, p := range []byte{0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2} {
		if !bytes.Contains(pages, []byte{p}) {
			c.t.Errorf("VPD page %#x not listed in 0x00 (% x)", p, pages)
		}
	}
	for _, p := range pages {
		task := c.do(c.e, []byte{0x12, 1, p, 0x10, 0, 0}, 4096, nil)
		c.good(task)
		if task.Data[1] != p || int(binary.BigEndian.Uint16(task.Data[2:]))+4 != task.Xfer {
			c.t.Errorf("VPD %#x: page code %#x, length %d for %d bytes", p, task.Data[1], binary.BigEndian.Uint16(task.Data[2:]), task.Xfer)
		}
	}
	c.check(c.do(c.e, []byte{0x12, 1, 0x42, 0, 255, 0}, 255, nil), scsi.KeyIllegalRequest, ascInvalidField)
	c.check(c.do(c.e, []byte{0x12, 0, 0x80, 0, 255, 0}, 255, nil), scsi.KeyIllegalRequest, ascInvalidField) // page without EVPD
	// Block limits: the transfer limits the commands enforce.
	bl := c.do(c.e, []byte{0x12, 1, 0xB0, 0, 255, 0}, 255, nil)
	if maxBlocks := binary.BigEndian.Uint32(bl.Data[8:]); maxBlocks == 0 {
		c.t.Error("block limits: no MAXIMUM TRANSFER LENGTH")
	} else {
		c.good(c.do(c.e, rw16(0x88, 0, maxBlocks, false), int(maxBlocks)*512, nil))
		c.check(c.do(c.e, rw16(0x88, 0, maxBlocks+1, false), int(maxBlocks+1)*512, nil), scsi.KeyIllegalRequest, ascInvalidField)
	}
}

func confReadCapacity(c *conf) {
	rc10 := c.do(c.e, []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, nil)
	c.good(rc10)
	last := uint64(binary.BigEndian.Uint32(rc10.Data))
	if last+1 != c.lu.Blocks() || binary.BigEndian.Uint32(rc10.Data[4:]) != 512 {
		c.t.Fatalf("READ CAPACITY(10): % x", rc10.Data)
	}
	// READ CAPACITY(16) with every allocation length up to its 32 bytes.
	full := c.do(c.e, []byte{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32, nil)
	c.good(full)
	if binary.BigEndian.Uint64(full.Data) != last || (full.Data[14]&0x80 != 0) != c.thin {
		c.t.Fatalf("READ CAPACITY(16): % x (thin %v)", full.Data, c.thin)
	}
	for alloc := 0; alloc <= 32; alloc += 4 {
		task := c.do(c.e, []byte{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(alloc), 0, 0}, alloc, nil)
		c.good(task)
		if !bytes.Equal(task.Data[:task.Xfer], full.Data[:alloc]) {
			c.t.Errorf("allocation length %d: % x", alloc, task.Data[:task.Xfer])
		}
	}
	// PMI=0 with an LBA is refused (SBC-3 5.16).
	c.check(c.do(c.e, []byte{0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 8, nil), scsi.KeyIllegalRequest, ascInvalidField)
}

func confReadWrite(c *conf) {
	blocks := c.lu.Blocks()
	end := blocks - 1
	data := make([]byte, 4*512)
	enginetest.Fill(data, 31)
	// simple: each size writes and reads back.
	for i, w := range [][]byte{
		{0x0A, 0, 0, 16, 4, 0}, cdb10(0x2A, 24, 4), cdb12(0xAA, 32, 4), rw16(0x8A, 40, 4, false),
	} {
		c.good(c.do(c.e, w, len(data), data))
		lba := uint64(16 + 8*i)
		for _, r := range [][]byte{cdb10(0x28, uint32(lba), 4), cdb12(0xA8, uint32(lba), 4), rw16(0x88, lba, 4, false)} {
			task := c.do(c.e, r, len(data), nil)
			c.good(task)
			if !bytes.Equal(task.Data, data) {
				c.t.Fatalf("%x after %x: data differs", r, w)
			}
		}
	}
	// 0 blocks: GOOD, nothing moves (READ(6)/WRITE(6) 0 means 256).
	for _, cdb := range [][]byte{cdb10(0x28, 0, 0), cdb12(0xA8, 0, 0), rw16(0x88, 0, 0, false), cdb10(0x2A, 0, 0), rw16(0x8A, 0, 0, false)} {
		task := c.do(c.e, cdb, 0, nil)
		c.good(task)
		if task.Xfer != 0 {
			c.t.Errorf("%x: %d bytes", cdb, task.Xfer)
		}
	}
	c.good(c.do(c.e, []byte{0x08, 0, 0, 0, 0, 0}, 256*512, nil))
	// beyond end of LUN: the last block works, one past and wrap-arounds
	// are LBA OUT OF RANGE.
	c.good(c.do(c.e, rw16(0x88, end, 1, false), 512, nil))
	for _, cdb := range [][]byte{
		rw16(0x88, end, 2, false), rw16(0x88, blocks, 1, false), rw16(0x88, 1<<63, 1, false), rw16(0x88, ^uint64(0), 2, false),
		rw16(0x8A, end, 2, false), cdb10(0x28, uint32(blocks), 1), cdb12(0xAA, uint32(end), 2), cdb10(0x28, 0xFFFFFFFF, 1),
	} {
		n := 512
		if cdb[0] == 0x88 && binary.BigEndian.Uint32(cdb[10:]) == 2 || cdb[0] == 0x8A || cdb[0] == 0xAA {
			n = 1024
		}
		c.check(c.do(c.e, cdb, n, nil), scsi.KeyIllegalRequest, ascLBARange)
	}
	// flags: DPO and FUA are accepted; RDPROTECT/WRPROTECT are not.
	for _, f := range []byte{0x10, 0x08, 0x18} {
		r := rw16(0x88, 16, 1, false)
		r[1] = f
		c.good(c.do(c.e, r, 512, nil))
		w := rw16(0x8A, 16, 1, false)
		w[1] = f
		c.good(c.do(c.e, w, 512, data))
	}
	for _, p := range []byte{0x20, 0x40, 0x60, 0x80, 0xE0} {
		r := cdb10(0x28, 0, 1)
		r[1] = p
		c.check(c.do(c.e, r, 512, nil), scsi.KeyIllegalRequest, ascInvalidField)
		w := rw16(0x8A, 0, 1, false)
		w[1] = p
		c.check(c.do(c.e, w, 512, data), scsi.KeyIllegalRequest, ascInvalidField)
	}
	// residuals: a read longer than expected moves what fits (overflow),
	// a shorter one reports the underflow.
	over := c.do(c.e, rw16(0x88, 16, 4, false), 1024, nil)
	c.good(over)
	if over.Xfer != 1024 || over.Resid != scsi.ResidOver || over.Residual != 1024 {
		c.t.Errorf("overflow: %d bytes, %v %d", over.Xfer, over.Resid, over.Residual)
	}
	under := c.do(c.e, rw16(0x88, 16, 1, false), 1024, nil)
	if under.Xfer != 512 || under.Resid != scsi.ResidUnder || under.Residual != 512 {
		c.t.Errorf("underflow: %d bytes, %v %d", under.Xfer, under.Resid, under.Residual)
	}
}

func confReadOnly(c *conf) {
	p := unmapParams([2]uint64{0, 1})
	for _, tc := range []struct {
		cdb []byte
		n   int
	}{
		{[]byte{0x0A, 0, 0, 0, 1, 0}, 512}, {cdb10(0x2A, 0, 1), 512}, {cdb12(0xAA, 0, 1), 512}, {rw16(0x8A, 0, 1, false), 512},
		{cdb10(0x2E, 0, 1), 512}, {rw16(0x8E, 0, 1, false), 512}, {ws16(0, 1, false), 512}, {cdb10(0x41, 0, 1), 512},
		{cawCDB(0, 1), 1024}, {unmapCDB(len(p)), len(p)},
	} {
		c.check(c.do(c.ero, tc.cdb, tc.n, p), scsi.KeyDataProtect, ascWriteProt)
	}
	c.good(c.do(c.ero, rw16(0x88, 0, 1, false), 512, nil))
	ms := c.do(c.ero, []byte{0x1A, 0x08, 0x3F, 0, 255, 0}, 255, nil)
	if c.good(ms); ms.Data[2]&0x80 == 0 {
		c.t.Error("MODE SENSE of a read-only LU: WP clear")
	}
}

func verify16(bytchk byte, lba uint64, n uint32) []byte {
	v := rw16(0x8F, lba, n, false)
	v[1] = bytchk << 1
	return v
}

func confVerify(c *conf) {
	data := make([]byte, 8*512)
	enginetest.Fill(data, 41)
	c.good(c.do(c.e, rw16(0x8A, 100, 8, false), len(data), data))
	// simple, with 10 and 16 and BYTCHK=1.
	v10 := cdb10(0x2F, 100, 8)
	v10[1] = 0x02
	c.good(c.do(c.e, v10, len(data), data))
	c.good(c.do(c.e, verify16(1, 100, 8), len(data), data))
	// mismatch: MISCOMPARE, INFORMATION at the first differing byte.
	bad := append([]byte(nil), data...)
	bad[5*512+9] ^= 0xFF
	task := c.do(c.e, verify16(1, 100, 8), len(bad), bad)
	c.check(task, scsi.KeyMiscompare, ascMiscompare)
	if binary.BigEndian.Uint32(task.Sense[3:]) != 5*512+9 {
		c.t.Errorf("INFORMATION %d", binary.BigEndian.Uint32(task.Sense[3:]))
	}
	// mismatch without compare (BYTCHK=0): GOOD, no data-out.
	c.good(c.do(c.e, verify16(0, 100, 8), 0, nil))
	// beyond end of LUN.
	c.check(c.do(c.e, verify16(0, c.lu.Blocks(), 1), 0, nil), scsi.KeyIllegalRequest, ascLBARange)
	c.check(c.do(c.e, verify16(1, c.lu.Blocks()-1, 2), 1024, nil), scsi.KeyIllegalRequest, ascLBARange)
}

func confWriteVerify(c *conf) {
	data := make([]byte, 2*512)
	enginetest.Fill(data, 43)
	for _, cdb := range [][]byte{cdb10(0x2E, 200, 2), rw16(0x8E, 202, 2, false)} {
		cdb[1] = 0x02 // BYTCHK
		c.good(c.do(c.e, cdb, len(data), data))
	}
	for _, lba := range []uint64{200, 202} {
		r := c.do(c.e, rw16(0x88, lba, 2, false), 1024, nil)
		if !bytes.Equal(r.Data, data) {
			c.t.Errorf("WRITE AND VERIFY at %d did not write", lba)
		}
	}
	c.check(c.do(c.e, rw16(0x8E, c.lu.Blocks()-1, 2, false), 1024, data), scsi.KeyIllegalRequest, ascLBARange)
	wp := rw16(0x8E, 0, 1, false)
	wp[1] = 0x20
	c.check(c.do(c.e, wp, 512, data), scsi.KeyIllegalRequest, ascInvalidField)
}

func confCompareAndWrite(c *conf) {
	bl := c.do(c.e, []byte{0x12, 1, 0xB0, 0, 255, 0}, 255, nil)
	maxCAW := int(bl.Data[5])
	if maxCAW == 0 {
		c.t.Fatal("block limits: MAXIMUM COMPARE AND WRITE LENGTH 0")
	}
	for _, n := range []int{1, maxCAW} {
		old := make([]byte, n*512)
		enginetest.Fill(old, uint64(50+n))
		c.good(c.do(c.e, rw16(0x8A, 300, uint32(n), false), len(old), old))
		next := make([]byte, n*512)
		enginetest.Fill(next, uint64(60+n))
		// simple
		c.good(c.do(c.e, cawCDB(300, byte(n)), 2*len(old), append(append([]byte(nil), old...), next...)))
		// mismatch: nothing written
		task := c.do(c.e, cawCDB(300, byte(n)), 2*len(old), append(append([]byte(nil), old...), old...))
		c.check(task, scsi.KeyMiscompare, ascMiscompare)
		r := c.do(c.e, rw16(0x88, 300, uint32(n), false), len(next), nil)
		if !bytes.Equal(r.Data, next) {
			c.t.Fatalf("%d blocks: a miscompare changed the medium", n)
		}
	}
	// beyond end of LUN, and longer than the limit.
	c.check(c.do(c.e, cawCDB(c.lu.Blocks()-1, 2), 2048, nil), scsi.KeyIllegalRequest, ascLBARange)
	if maxCAW < 255 {
		c.check(c.do(c.e, cawCDB(0, byte(maxCAW+1)), 2*(maxCAW+1)*512, nil), scsi.KeyIllegalRequest, ascInvalidField)
	}
}

func confUnmap(c *conf) {
	p := unmapParams([2]uint64{400, 8})
	if !c.thin {
		c.check(c.do(c.e, unmapCDB(len(p)), len(p), p), scsi.KeyIllegalRequest, ascInvalidOp)
		return
	}
	lbp := c.do(c.e, []byte{0x12, 1, 0xB2, 0, 255, 0}, 255, nil)
	if lbp.Data[5]&0x80 == 0 {
		c.t.Errorf("thin LU without LBPU: % x", lbp.Data[:8])
	}
	data := make([]byte, 16*512)
	enginetest.Fill(data, 70)
	c.good(c.do(c.e, rw16(0x8A, 400, 16, false), len(data), data))
	// simple: the unmapped blocks read back as zeroes on our engines, the
	// rest is untouched.
	c.good(c.do(c.e, unmapCDB(len(p)), len(p), p))
	r := c.do(c.e, rw16(0x88, 400, 16, false), len(data), nil)
	if !isZeroes(r.Data[:8*512]) || !bytes.Equal(r.Data[8*512:], data[8*512:]) {
		c.t.Error("UNMAP: unexpected data after")
	}
	// zero: no descriptors, or a list length of 0, is GOOD.
	c.good(c.do(c.e, unmapCDB(0), 0, nil))
	h := unmapParams()
	c.good(c.do(c.e, unmapCDB(len(h)), len(h), h))
	// beyond end of LUN, and a short list.
	oob := unmapParams([2]uint64{c.lu.Blocks(), 1})
	c.check(c.do(c.e, unmapCDB(len(oob)), len(oob), oob), scsi.KeyIllegalRequest, ascLBARange)
	c.check(c.do(c.e, unmapCDB(6), 6, []byte{0, 4, 0, 0, 0, 0}), scsi.KeyIllegalRequest, ascParamLen)
}

func confWriteSame(c *conf) {
	block := make([]byte, 512)
	enginetest.Fill(block, 80)
	// simple, 10 and 16.
	for _, cdb := range [][]byte{cdb10(0x41, 500, 8), ws16(508, 8, false)} {
		c.good(c.do(c.e, cdb, 512, block))
	}
	r := c.do(c.e, rw16(0x88, 500, 16, false), 16*512, nil)
	for i := 0; i < 16; i++ {
		if !bytes.Equal(r.Data[i*512:(i+1)*512], block) {
			c.t.Fatalf("block %d after WRITE SAME differs", 500+i)
		}
	}
	// unmap: with a zero block the range reads back zero.
	for _, cdb := range [][]byte{func() []byte { x := cdb10(0x41, 500, 8); x[1] = 0x08; return x }(), ws16(508, 8, true)} {
		c.good(c.do(c.e, cdb, 512, nil))
	}
	if r := c.do(c.e, rw16(0x88, 500, 16, false), 16*512, nil); !isZeroes(r.Data) {
		c.t.Error("WRITE SAME with UNMAP and a zero block: not zero after")
	}
	// beyond end of LUN, WRPROTECT, 0 blocks (WSNZ=1).
	c.check(c.do(c.e, ws16(c.lu.Blocks()-1, 2, false), 512, block), scsi.KeyIllegalRequest, ascLBARange)
	c.check(c.do(c.e, cdb10(0x41, uint32(c.lu.Blocks()), 1), 512, block), scsi.KeyIllegalRequest, ascLBARange)
	wp := ws16(0, 1, false)
	wp[1] = 0x20
	c.check(c.do(c.e, wp, 512, block), scsi.KeyIllegalRequest, ascInvalidField)
	c.check(c.do(c.e, ws16(0, 0, false), 512, block), scsi.KeyIllegalRequest, ascInvalidField)
	bl := c.do(c.e, []byte{0x12, 1, 0xB0, 0, 255, 0}, 255, nil)
	if bl.Data[4]&0x01 == 0 {
		c.t.Error("block limits: WSNZ clear but WRITE SAME of 0 blocks is refused")
	}
}

func confStartStop(c *conf) {
	for _, cdb := range [][]byte{{0x1B, 0, 0, 0, 1, 0}, {0x1B, 0, 0, 0, 0, 0}, {0x1B, 1, 0, 0, 1, 0}} {
		c.good(c.do(c.e, cdb, 0, nil))
	}
	// power conditions and LOEJ on a fixed disk: refused.
	c.check(c.do(c.e, []byte{0x1B, 0, 0, 0, 0x10, 0}, 0, nil), scsi.KeyIllegalRequest, ascInvalidField)
	c.check(c.do(c.e, []byte{0x1B, 0, 0, 0, 0x02, 0}, 0, nil), scsi.KeyIllegalRequest, ascInvalidField)
}

func confModeSense(c *conf) {
	for _, cdb := range [][]byte{{0x1A, 0, 0x3F, 0, 255, 0}, {0x5A, 0, 0x3F, 0, 0, 0, 0, 0x10, 0, 0}} {
		full := c.do(c.e, cdb, 4096, nil)
		c.good(full)
		// The mode data length covers exactly what follows it.
		if cdb[0] == 0x1A && int(full.Data[0])+1 != full.Xfer || cdb[0] == 0x5A && int(binary.BigEndian.Uint16(full.Data))+2 != full.Xfer {
			c.t.Fatalf("%x: mode data length disagrees with %d bytes", cdb, full.Xfer)
		}
		// Truncation by the allocation length.
		short := append([]byte(nil), cdb...)
		if cdb[0] == 0x1A {
			short[4] = 7
		} else {
			short[7], short[8] = 0, 7
		}
		task := c.do(c.e, short, 7, nil)
		c.good(task)
		if task.Xfer != 7 || !bytes.Equal(task.Data, full.Data[:7]) {
			c.t.Errorf("%x truncated: %d bytes", short, task.Xfer)
		}
	}
	// Each page alone; a page we do not have; saved values.
	for _, p := range []byte{0x08, 0x0A, 0x1C} {
		task := c.do(c.e, []byte{0x1A, 0x08, p, 0, 255, 0}, 255, nil)
		c.good(task)
		if task.Data[4]&0x3F != p {
			c.t.Errorf("page %#x: got page %#x", p, task.Data[4])
		}
	}
	c.check(c.do(c.e, []byte{0x1A, 0, 0x19, 0, 255, 0}, 255, nil), scsi.KeyIllegalRequest, ascInvalidField)
	c.check(c.do(c.e, []byte{0x1A, 0, 0xC8, 0, 255, 0}, 255, nil), scsi.KeyIllegalRequest, 0x3900)
}

func confRSOC(c *conf) {
	all := c.do(c.e, []byte{0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, 4096, nil)
	c.good(all)
	n := int(binary.BigEndian.Uint32(all.Data))
	if n+4 != all.Xfer || n%8 != 0 {
		c.t.Fatalf("REPORT SUPPORTED OPERATION CODES: length %d for %d bytes", n, all.Xfer)
	}
	seen := map[byte]bool{}
	for i := 4; i < 4+n; i += 8 {
		seen[all.Data[i]] = true
	}
	for _, op := range []byte{0x00, 0x12, 0x25, 0x28, 0x2A, 0x35, 0x88, 0x8A, 0x89, 0x93, 0xA0, 0x5E, 0x5F} {
		if !seen[op] {
			c.t.Errorf("opcode %#x not reported", op)
		}
	}
	// One command: READ(10) is supported (SUPPORT 011b) with its usage data.
	one := c.do(c.e, []byte{0xA3, 0x0C, 0x01, 0x28, 0, 0, 0, 0, 0, 64, 0, 0}, 64, nil)
	c.good(one)
	if one.Data[1]&0x07 != 0x03 || binary.BigEndian.Uint16(one.Data[2:]) != 10 || one.Data[4] != 0x28 {
		c.t.Errorf("READ(10) alone: % x", one.Data[:one.Xfer])
	}
	// An opcode we lack: SUPPORT 001b.
	none := c.do(c.e, []byte{0xA3, 0x0C, 0x01, 0xC0, 0, 0, 0, 0, 0, 64, 0, 0}, 64, nil)
	if c.good(none); none.Data[1]&0x07 != 0x01 {
		c.t.Errorf("unsupported opcode: SUPPORT %d", none.Data[1]&7)
	}
}

// prOut sends PERSISTENT RESERVE OUT with a 24-byte parameter list.
func prOut(c *conf, n *scsi.Nexus, sa, typ byte, key, sak uint64) *scsi.Task {
	c.t.Helper()
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p, key)
	binary.BigEndian.PutUint64(p[8:], sak)
	task := &scsi.Task{Nexus: n, CDB: []byte{0x5F, sa, typ, 0, 0, 0, 0, 0, 24, 0}, Data: p, DataLen: 24}
	run(c.t, c.e, task)
	return task
}

func confPersistentReserve(c *conf) {
	v, _ := nexusOf.Load(c.e)
	a := v.(*scsi.Nexus)
	b := newNexus(c.t, 9, scsi.Mapping{LUN: 0, LU: c.lu})
	clearUA(c.t, c.e, b, 0)
	// simple: register, READ KEYS shows it.
	c.good(prOut(c, a, 0x00, 0, 0, 0xA1))
	c.good(prOut(c, b, 0x00, 0, 0, 0xB2))
	keys := c.do(c.e, []byte{0x5E, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0}, 4096, nil)
	c.good(keys)
	if binary.BigEndian.Uint32(keys.Data[4:]) != 16 {
		c.t.Fatalf("READ KEYS: % x", keys.Data[:keys.Xfer])
	}
	// reserve Write Exclusive: the holder writes, the other registrant
	// reads but may not write.
	c.good(prOut(c, a, 0x01, 0x01, 0xA1, 0))
	w := &scsi.Task{Nexus: b, CDB: rw16(0x8A, 0, 1, false), Data: make([]byte, 512), DataLen: 512}
	run(c.t, c.e, w)
	if w.Status != scsi.StatusReservationConflict {
		c.t.Errorf("write from a registrant under WE: %v", w.Status)
	}
	r := &scsi.Task{Nexus: b, CDB: rw16(0x88, 0, 1, false), Data: make([]byte, 512), DataLen: 512}
	run(c.t, c.e, r)
	c.good(r)
	c.good(c.do(c.e, rw16(0x8A, 0, 1, false), 512, nil))
	// a wrong key is a conflict; release and unregister with the right ones.
	if task := prOut(c, b, 0x00, 0, 0xBAD, 0); task.Status != scsi.StatusReservationConflict {
		c.t.Errorf("REGISTER with a wrong key: %v", task.Status)
	}
	c.good(prOut(c, a, 0x02, 0x01, 0xA1, 0))
	c.good(prOut(c, a, 0x00, 0, 0xA1, 0))
	c.good(prOut(c, b, 0x00, 0, 0xB2, 0))
	run(c.t, c.e, w)
	c.good(w)
}
