package scsi_test

import (
	"testing"

	"github.com/usrpt/usrpt/scsi"
)

// cdbCase is one CDB and what the executor must answer. field < 0 means
// no field pointer is expected.
type cdbCase struct {
	name    string
	cdb     []byte
	dataLen int
	status  scsi.Status
	reason  scsi.Reason
	field   int // expected SENSE field pointer (byte), -1 for none
	bit     int // expected bit pointer, -1 for none
	xfer    int // expected data-in bytes, for GOOD
	resid   scsi.Resid
	lun     uint64
	mod     func(*scsi.Config)
}

func good(name string, cdb []byte, dataLen, xfer int) cdbCase {
	return cdbCase{name: name, cdb: cdb, dataLen: dataLen, status: scsi.StatusGood, xfer: xfer, field: -1, bit: -1}
}

// short is GOOD with less data than expected: an underflow.
func short(name string, cdb []byte, dataLen, xfer int) cdbCase {
	c := good(name, cdb, dataLen, xfer)
	c.resid = scsi.ResidUnder
	return c
}

func bad(name string, cdb []byte, field, bit int) cdbCase {
	return cdbCase{name: name, cdb: cdb, status: scsi.StatusCheckCondition, reason: scsi.ReasonInvalidFieldCDB, field: field, bit: bit}
}

func fails(name string, cdb []byte, dataLen int, r scsi.Reason) cdbCase {
	return cdbCase{name: name, cdb: cdb, dataLen: dataLen, status: scsi.StatusCheckCondition, reason: r, field: -1, bit: -1}
}

// The test LU: 4 MiB of 512-byte blocks = 8192 blocks (last LBA 8191),
// max transfer 1 MiB = 2048 blocks.
func cdbCases() []cdbCase {
	return []cdbCase{
		good("TUR", []byte{0x00, 0, 0, 0, 0, 0}, 0, 0),
		bad("TUR reserved byte 2", []byte{0x00, 0, 1, 0, 0, 0}, 2, 0),
		bad("TUR NACA", []byte{0x00, 0, 0, 0, 0, 0x04}, 5, 2),
		bad("TUR LINK", []byte{0x00, 0, 0, 0, 0, 0x01}, 5, 0),
		good("TUR vendor control bits ignored", []byte{0x00, 0, 0, 0, 0, 0xC0}, 0, 0),
		{name: "TUR unknown LUN", cdb: []byte{0x00, 0, 0, 0, 0, 0}, status: scsi.StatusCheckCondition, reason: scsi.ReasonLUNotSupported, field: -1, bit: -1, lun: lun(1)},
		{name: "TUR LUN in an unknown format", cdb: []byte{0x00, 0, 0, 0, 0, 0}, status: scsi.StatusCheckCondition, reason: scsi.ReasonLUNotSupported, field: -1, bit: -1, lun: 0xC000 << 48},

		good("READ(6)", []byte{0x08, 0, 0, 1, 1, 0}, 512, 512),
		good("READ(6) 0 is 256 blocks", []byte{0x08, 0, 0, 0, 0, 0}, 256*512, 256*512),
		bad("READ(6) reserved byte 1", []byte{0x08, 0x20, 0, 0, 1, 0}, 1, 5),
		fails("READ(6) past the end", []byte{0x08, 0x00, 0x1F, 0xFF, 2, 0}, 1024, scsi.ReasonLBAOutOfRange),
		good("WRITE(6)", []byte{0x0A, 0, 0, 1, 1, 0}, 512, 0),
		good("READ(10)", []byte{0x28, 0, 0, 0, 0, 8, 0, 0, 2, 0}, 1024, 1024),
		good("READ(10) last block", []byte{0x28, 0, 0, 0, 0x1F, 0xFF, 0, 0, 1, 0}, 512, 512),
		good("READ(10) zero length", []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0),
		good("READ(10) DPO FUA RARC group", []byte{0x28, 0x1C, 0, 0, 0, 0, 0x1F, 0, 1, 0}, 512, 512),
		bad("READ(10) RDPROTECT", []byte{0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0}, 1, 7),
		bad("READ(10) obsolete FUA_NV", []byte{0x28, 0x02, 0, 0, 0, 0, 0, 0, 1, 0}, 1, 1),
		bad("READ(10) reserved byte 6", []byte{0x28, 0, 0, 0, 0, 0, 0x20, 0, 1, 0}, 6, 5),
		bad("READ(10) control", []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x08}, 9, 3),
		bad("READ(10) over max transfer", []byte{0x28, 0, 0, 0, 0, 0, 0, 0x08, 0x01, 0}, 7, 7),
		fails("READ(10) past the end", []byte{0x28, 0, 0, 0, 0x1F, 0xFF, 0, 0, 2, 0}, 1024, scsi.ReasonLBAOutOfRange),
		fails("READ(10) LBA past the end", []byte{0x28, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0}, 512, scsi.ReasonLBAOutOfRange),
		{name: "READ(10) expected shorter: overflow", cdb: []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0}, dataLen: 512, status: scsi.StatusGood, xfer: 512, resid: scsi.ResidOver, field: -1, bit: -1},
		{name: "READ(10) expected longer: underflow", cdb: []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, dataLen: 1024, status: scsi.StatusGood, xfer: 512, resid: scsi.ResidUnder, field: -1, bit: -1},
		fails("READ(10) expected length not whole blocks", []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0}, 700, scsi.ReasonInvalidFieldIU),
		good("WRITE(10)", []byte{0x2A, 0, 0, 0, 0, 8, 0, 0, 2, 0}, 1024, 0),
		good("WRITE(10) FUA", []byte{0x2A, 0x08, 0, 0, 0, 8, 0, 0, 1, 0}, 512, 0),
		bad("WRITE(10) WRPROTECT", []byte{0x2A, 0x40, 0, 0, 0, 0, 0, 0, 1, 0}, 1, 7),
		bad("WRITE(10) reserved bit 2", []byte{0x2A, 0x04, 0, 0, 0, 0, 0, 0, 1, 0}, 1, 2),
		fails("WRITE(10) length mismatch", []byte{0x2A, 0, 0, 0, 0, 0, 0, 0, 2, 0}, 512, scsi.ReasonInvalidFieldIU),
		{name: "WRITE(10) read-only", cdb: []byte{0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0}, dataLen: 512, status: scsi.StatusCheckCondition, reason: scsi.ReasonWriteProtected, field: -1, bit: -1, mod: func(c *scsi.Config) { c.ReadOnly = true }},
		good("READ(12)", []byte{0xA8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 512, 512),
		bad("READ(12) reserved byte 10", []byte{0xA8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0}, 10, 7),
		good("WRITE(12)", []byte{0xAA, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 512, 0),
		good("READ(16)", []byte{0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 512, 512),
		fails("READ(16) LBA overflow", []byte{0x88, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0, 0}, 1024, scsi.ReasonLBAOutOfRange),
		bad("READ(16) reserved byte 14", []byte{0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0}, 14, 6),
		good("WRITE(16)", []byte{0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 512, 0),
		bad("WRITE(16) control", []byte{0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x20}, 15, 5),

		good("SYNCHRONIZE CACHE(10)", []byte{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0),
		good("SYNCHRONIZE CACHE(10) IMMED", []byte{0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0),
		bad("SYNCHRONIZE CACHE(10) reserved", []byte{0x35, 0x04, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 2),
		fails("SYNCHRONIZE CACHE(10) past the end", []byte{0x35, 0, 0, 0, 0x20, 0x01, 0, 0, 0, 0}, 0, scsi.ReasonLBAOutOfRange),
		{name: "SYNCHRONIZE CACHE(16) with WCE", cdb: []byte{0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, status: scsi.StatusGood, field: -1, bit: -1, mod: func(c *scsi.Config) { c.WriteCache = true }},
		bad("SYNCHRONIZE CACHE(16) reserved byte 14", []byte{0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0}, 14, 7),

		good("VERIFY(10)", []byte{0x2F, 0, 0, 0, 0, 0, 0, 0, 8, 0}, 0, 0),
		bad("VERIFY(10) BYTCHK 10b", []byte{0x2F, 0x04, 0, 0, 0, 0, 0, 0, 8, 0}, 1, 2),
		fails("VERIFY(10) BYTCHK 01b without data-out", []byte{0x2F, 0x02, 0, 0, 0, 0, 0, 0, 8, 0}, 0, scsi.ReasonInvalidFieldIU),
		bad("VERIFY(10) VRPROTECT", []byte{0x2F, 0x20, 0, 0, 0, 0, 0, 0, 8, 0}, 1, 7),
		bad("VERIFY(10) reserved bit 3", []byte{0x2F, 0x08, 0, 0, 0, 0, 0, 0, 8, 0}, 1, 3),
		fails("VERIFY(16) past the end", []byte{0x8F, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 1, 0, 0}, 0, scsi.ReasonLBAOutOfRange),
		good("VERIFY(16)", []byte{0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 0, 0),

		good("INQUIRY", []byte{0x12, 0, 0, 0, 36, 0}, 36, 36),
		{name: "INQUIRY short allocation", cdb: []byte{0x12, 0, 0, 0, 5, 0}, dataLen: 5, status: scsi.StatusGood, xfer: 5, field: -1, bit: -1},
		{name: "INQUIRY expected less than allocation", cdb: []byte{0x12, 0, 0, 0, 96, 0}, dataLen: 8, status: scsi.StatusGood, xfer: 8, resid: scsi.ResidOver, field: -1, bit: -1},
		{name: "INQUIRY expected more", cdb: []byte{0x12, 0, 0, 0, 96, 0}, dataLen: 96, status: scsi.StatusGood, xfer: 36, resid: scsi.ResidUnder, field: -1, bit: -1},
		bad("INQUIRY page without EVPD", []byte{0x12, 0, 0x80, 0, 36, 0}, 2, 7),
		bad("INQUIRY CMDDT", []byte{0x12, 0x02, 0, 0, 36, 0}, 1, 1),
		bad("INQUIRY unknown VPD page", []byte{0x12, 0x01, 0x87, 0, 255, 0}, 2, 7),
		short("INQUIRY VPD 0x00", []byte{0x12, 1, 0x00, 0, 255, 0}, 255, 11),
		{name: "INQUIRY unknown LUN", cdb: []byte{0x12, 0, 0, 0, 36, 0}, dataLen: 36, status: scsi.StatusGood, xfer: 36, field: -1, bit: -1, lun: lun(7)},
		{name: "INQUIRY VPD unknown LUN", cdb: []byte{0x12, 1, 0, 0, 36, 0}, dataLen: 36, status: scsi.StatusCheckCondition, reason: scsi.ReasonLUNotSupported, field: -1, bit: -1, lun: lun(7)},

		good("READ CAPACITY(10)", []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, 8),
		good("READ CAPACITY(10) PMI", []byte{0x25, 0, 0, 0, 0, 5, 0, 0, 1, 0}, 8, 8),
		bad("READ CAPACITY(10) LBA without PMI", []byte{0x25, 0, 0, 0, 0, 5, 0, 0, 0, 0}, 5, 2),
		bad("READ CAPACITY(10) RELADR", []byte{0x25, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 0),
		bad("READ CAPACITY(10) reserved byte 7", []byte{0x25, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 7, 0),
		good("READ CAPACITY(16)", []byte{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32, 32),
		bad("SERVICE ACTION IN(16) unknown action", []byte{0x9E, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 1, 4),
		bad("READ CAPACITY(16) reserved byte 1", []byte{0x9E, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 1, 5),
		bad("READ CAPACITY(16) reserved byte 14", []byte{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 2, 0}, 14, 1),

		good("REQUEST SENSE", []byte{0x03, 0, 0, 0, 18, 0}, 18, 18),
		short("REQUEST SENSE DESC", []byte{0x03, 1, 0, 0, 18, 0}, 18, 8),
		bad("REQUEST SENSE reserved", []byte{0x03, 2, 0, 0, 18, 0}, 1, 1),
		{name: "REQUEST SENSE unknown LUN", cdb: []byte{0x03, 0, 0, 0, 18, 0}, dataLen: 18, status: scsi.StatusGood, xfer: 18, field: -1, bit: -1, lun: lun(9)},

		good("REPORT LUNS", []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0}, 16, 16),
		good("REPORT LUNS SELECT 2", []byte{0xA0, 0, 2, 0, 0, 0, 0, 0, 0, 16, 0, 0}, 16, 16),
		bad("REPORT LUNS SELECT 3", []byte{0xA0, 0, 3, 0, 0, 0, 0, 0, 0, 16, 0, 0}, 2, -1),
		bad("REPORT LUNS reserved byte 10", []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 1, 0}, 10, 0),
		{name: "REPORT LUNS unknown LUN", cdb: []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0}, dataLen: 16, status: scsi.StatusGood, xfer: 16, field: -1, bit: -1, lun: lun(3)},

		short("MODE SENSE(6) all", []byte{0x1A, 0, 0x3F, 0, 255, 0}, 255, 4+8+44),
		short("MODE SENSE(6) caching DBD", []byte{0x1A, 0x08, 0x08, 0, 255, 0}, 255, 4+20),
		short("MODE SENSE(6) all subpages", []byte{0x1A, 0x08, 0x3F, 0xFF, 255, 0}, 255, 4+44),
		bad("MODE SENSE(6) unknown page", []byte{0x1A, 0, 0x01, 0, 255, 0}, 2, 5),
		bad("MODE SENSE(6) subpage", []byte{0x1A, 0, 0x08, 0x01, 255, 0}, 3, -1),
		bad("MODE SENSE(6) reserved", []byte{0x1A, 0x10, 0x08, 0, 255, 0}, 1, 4),
		fails("MODE SENSE(6) saved values", []byte{0x1A, 0, 0xC8, 0, 255, 0}, 255, scsi.ReasonSavingNotSupported),
		short("MODE SENSE(10) all LLBAA", []byte{0x5A, 0x10, 0x3F, 0, 0, 0, 0, 0, 255, 0}, 255, 8+16+44),
		bad("MODE SENSE(10) reserved byte 5", []byte{0x5A, 0, 0x3F, 0, 0, 1, 0, 0, 255, 0}, 5, 0),

		good("START STOP UNIT start", []byte{0x1B, 0, 0, 0, 1, 0}, 0, 0),
		good("START STOP UNIT stop IMMED", []byte{0x1B, 1, 0, 0, 0, 0}, 0, 0),
		bad("START STOP UNIT LOEJ", []byte{0x1B, 0, 0, 0, 2, 0}, 4, 1),
		bad("START STOP UNIT power condition", []byte{0x1B, 0, 0, 0, 0x10, 0}, 4, 7),
		bad("START STOP UNIT modifier", []byte{0x1B, 0, 0, 1, 0, 0}, 3, 0),
		good("PREVENT ALLOW MEDIUM REMOVAL", []byte{0x1E, 0, 0, 0, 1, 0}, 0, 0),
		bad("PREVENT ALLOW MEDIUM REMOVAL reserved", []byte{0x1E, 0, 0, 0, 4, 0}, 4, 2),

		fails("unknown opcode", []byte{0xC0, 0, 0, 0, 0, 0}, 0, scsi.ReasonInvalidOpcode),
		fails("UNMAP short parameter list", []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0}, 4, scsi.ReasonParamListLength),
		bad("UNMAP ANCHOR", []byte{0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0}, 1, 0),
		bad("WRITE SAME(16) of 0 blocks (WSNZ)", []byte{0x93, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10, 7),
		bad("COMPARE AND WRITE past MAXIMUM COMPARE AND WRITE LENGTH", []byte{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0}, 13, 7),
		short("PERSISTENT RESERVE IN READ KEYS, nothing registered", []byte{0x5E, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 24, 8),
		fails("CDB longer than 16", make([]byte, 17), 0, scsi.ReasonInvalidFieldIU),
		fails("empty CDB", nil, 0, scsi.ReasonInvalidFieldIU),
	}
}

func TestCDB(t *testing.T) {
	for _, tc := range cdbCases() {
		t.Run(tc.name, func(t *testing.T) {
			lu, d := memLU(t, 512, tc.mod)
			e := newExec(t, lu, d, 4)
			task := &scsi.Task{LUN: tc.lun, CDB: tc.cdb, Data: make([]byte, tc.dataLen), DataLen: tc.dataLen}
			run(t, e, task)
			if task.Status != tc.status {
				t.Fatalf("status %v (%v), want %v", task.Status, task.Reason, tc.status)
			}
			if tc.status == scsi.StatusGood {
				if task.SenseLen != 0 || task.Xfer != tc.xfer {
					t.Errorf("GOOD with %d sense bytes, %d data bytes; want 0, %d", task.SenseLen, task.Xfer, tc.xfer)
				}
				if task.Resid != tc.resid {
					t.Errorf("resid %v (%d), want %v", task.Resid, task.Residual, tc.resid)
				}
				return
			}
			if task.Reason != tc.reason {
				t.Fatalf("reason %v, want %v", task.Reason, tc.reason)
			}
			key, code := senseOf(t, task)
			asc, ascq := tc.reason.ASC()
			if key != tc.reason.Key() || code != uint16(asc)<<8|uint16(ascq) {
				t.Errorf("sense %v/%04x, want %v", key, code, tc.reason)
			}
			s := task.Sense[:task.SenseLen]
			if tc.field >= 0 {
				if s[15]&0xC0 != 0xC0 || int(s[16])<<8|int(s[17]) != tc.field {
					t.Errorf("field pointer % x, want byte %d", s[15:18], tc.field)
				}
				if tc.bit >= 0 && (s[15]&0x08 == 0 || int(s[15]&7) != tc.bit) {
					t.Errorf("bit pointer %#x, want bit %d", s[15], tc.bit)
				}
				if tc.bit < 0 && s[15]&0x08 != 0 {
					t.Errorf("bit pointer %#x, want none", s[15])
				}
			} else if s[15]&0x80 != 0 {
				t.Errorf("SKSV set: % x", s[15:18])
			}
		})
	}
}
