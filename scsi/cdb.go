package scsi

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

// Opcode is a CDB's OPERATION CODE (SPC-4 annex D).
type Opcode uint8

// Operation codes decoded by this package, with the Linux names
// (include/scsi/scsi_proto.h).
const (
	TestUnitReady      Opcode = 0x00
	RequestSense       Opcode = 0x03
	Read6              Opcode = 0x08
	Write6             Opcode = 0x0A
	Inquiry            Opcode = 0x12
	ModeSense6         Opcode = 0x1A
	StartStop          Opcode = 0x1B
	AllowMediumRemoval Opcode = 0x1E
	ReadCapacity       Opcode = 0x25
	Read10             Opcode = 0x28
	Write10            Opcode = 0x2A
	Verify10           Opcode = 0x2F
	SynchronizeCache   Opcode = 0x35
	ModeSense10        Opcode = 0x5A
	Read16             Opcode = 0x88
	Write16            Opcode = 0x8A
	Verify16           Opcode = 0x8F
	SynchronizeCache16 Opcode = 0x91
	ServiceActionIn16  Opcode = 0x9E
	ReportLUNs         Opcode = 0xA0
	Read12             Opcode = 0xA8
	Write12            Opcode = 0xAA
	ModeSelect6        Opcode = 0x15
	Reserve6           Opcode = 0x16
	Release6           Opcode = 0x17
	WriteVerify10      Opcode = 0x2E
	WriteSame10        Opcode = 0x41
	Unmap              Opcode = 0x42
	ModeSelect10       Opcode = 0x55
	Reserve10          Opcode = 0x56
	Release10          Opcode = 0x57
	PersistentResIn    Opcode = 0x5E
	PersistentResOut   Opcode = 0x5F
	CompareAndWrite    Opcode = 0x89
	WriteVerify16      Opcode = 0x8E
	WriteSame16        Opcode = 0x93
	MaintenanceIn      Opcode = 0xA3
	SAIReadCapacity16  uint8  = 0x10 // SERVICE ACTION IN(16) service action
	MaxCDBLen                 = 16
)

func (o Opcode) String() string {
	switch o {
	case TestUnitReady:
		return "TEST UNIT READY"
	case RequestSense:
		return "REQUEST SENSE"
	case Read6:
		return "READ(6)"
	case Write6:
		return "WRITE(6)"
	case Inquiry:
		return "INQUIRY"
	case ModeSense6:
		return "MODE SENSE(6)"
	case StartStop:
		return "START STOP UNIT"
	case AllowMediumRemoval:
		return "PREVENT ALLOW MEDIUM REMOVAL"
	case ReadCapacity:
		return "READ CAPACITY(10)"
	case Read10:
		return "READ(10)"
	case Write10:
		return "WRITE(10)"
	case Verify10:
		return "VERIFY(10)"
	case SynchronizeCache:
		return "SYNCHRONIZE CACHE(10)"
	case ModeSense10:
		return "MODE SENSE(10)"
	case Read16:
		return "READ(16)"
	case Write16:
		return "WRITE(16)"
	case Verify16:
		return "VERIFY(16)"
	case SynchronizeCache16:
		return "SYNCHRONIZE CACHE(16)"
	case ServiceActionIn16:
		return "SERVICE ACTION IN(16)"
	case ReportLUNs:
		return "REPORT LUNS"
	case Read12:
		return "READ(12)"
	case Write12:
		return "WRITE(12)"
	case ModeSelect6:
		return "MODE SELECT(6)"
	case Reserve6:
		return "RESERVE(6)"
	case Release6:
		return "RELEASE(6)"
	case WriteVerify10:
		return "WRITE AND VERIFY(10)"
	case WriteSame10:
		return "WRITE SAME(10)"
	case Unmap:
		return "UNMAP"
	case ModeSelect10:
		return "MODE SELECT(10)"
	case Reserve10:
		return "RESERVE(10)"
	case Release10:
		return "RELEASE(10)"
	case PersistentResIn:
		return "PERSISTENT RESERVE IN"
	case PersistentResOut:
		return "PERSISTENT RESERVE OUT"
	case CompareAndWrite:
		return "COMPARE AND WRITE"
	case WriteVerify16:
		return "WRITE AND VERIFY(16)"
	case WriteSame16:
		return "WRITE SAME(16)"
	case MaintenanceIn:
		return "MAINTENANCE IN"
	}
	return "Opcode(0x" + strconv.FormatUint(uint64(o), 16) + ")"
}

// cdbLen is the CDB length of the opcode's group (SPC-4 4.2.5.1); 0 for the
// groups this package does not decode.
func cdbLen(op Opcode) int {
	switch op >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 0
}

// kind is what a decoded command does.
type kind uint8

const (
	kRead kind = iota
	kWrite
	kSync
	kVerify
	kTUR
	kInquiry
	kReadCap10
	kReadCap16
	kRequestSense
	kReportLUNs
	kModeSense6
	kModeSense10
	kStartStop
	kPreventAllow
	kWriteVerify // WRITE AND VERIFY 10/16 (sbc.go)
	kUnmap       // UNMAP (sbc.go)
	kWriteSame   // WRITE SAME 10/16 (sbc.go)
	kCAW         // COMPARE AND WRITE (sbc.go)
	kPRIn        // PERSISTENT RESERVE IN (pr.go)
	kPROut       // PERSISTENT RESERVE OUT (pr.go)
	kReserve     // RESERVE 6/10 (pr.go)
	kRelease     // RELEASE 6/10 (pr.go)
	kModeSelect  // MODE SELECT 6/10 (spc.go)
	kMaintIn     // MAINTENANCE IN: REPORT TARGET PORT GROUPS, REPORT SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS (spc.go)
)

// command is a decoded CDB: every field checked, ready to execute.
type command struct {
	op     Opcode
	kind   kind
	lba    uint64
	blocks uint32 // transfer, verification or sync length in blocks
	fua    bool
	alloc  uint32 // allocation length, for commands with data-in
	evpd   bool
	page   uint8 // INQUIRY page code; MODE SENSE page code
	pc     uint8 // MODE SENSE page control
	dbd    bool
	llbaa  bool
	desc   bool // REQUEST SENSE DESC
	lenOff int  // CDB offset of the transfer length field

	sa       uint8  // service action (PERSISTENT RESERVE IN/OUT, MAINTENANCE IN)
	scope    uint8  // PERSISTENT RESERVE OUT SCOPE
	typ      uint8  // PERSISTENT RESERVE OUT TYPE
	paramLen uint32 // PARAMETER LIST LENGTH (data-out) of MODE SELECT, UNMAP, PERSISTENT RESERVE OUT
	bytchk   uint8  // VERIFY, WRITE AND VERIFY BYTCHK
	unmap    bool   // WRITE SAME UNMAP
	pf, sp   bool   // MODE SELECT PF and SP
	rctd     bool   // REPORT SUPPORTED OPERATION CODES RCTD
	options  uint8  // REPORT SUPPORTED OPERATION CODES REPORTING OPTIONS; REPORT SUPPORTED TMFs REPD
	reqOp    uint8  // REPORT SUPPORTED OPERATION CODES REQUESTED OPERATION CODE
	reqSA    uint16 // REPORT SUPPORTED OPERATION CODES REQUESTED SERVICE ACTION
	wlun     bool   // addressed to the REPORT LUNS well-known LUN
}

// inRange reports whether blocks blocks from lba lie inside a unit of
// capacity blocks, without overflow. It is the one LBA range check.
func inRange(lba, blocks, capacity uint64) bool {
	return lba <= capacity && blocks <= capacity-lba
}

// rsvd checks that the bits of mask in byte i are zero; if not it returns
// INVALID FIELD IN CDB pointing at the highest offending bit.
func rsvd(c *[MaxCDBLen]byte, i int, mask byte) (Sense, bool) {
	if v := c[i] & mask; v != 0 {
		return invalidField(i, uint8(bits.Len8(v)-1)), true
	}
	return Sense{}, false
}

// rsvdBytes checks that bytes [from, to) are zero.
func rsvdBytes(c *[MaxCDBLen]byte, from, to int) (Sense, bool) {
	for i := from; i < to; i++ {
		if s, bad := rsvd(c, i, 0xFF); bad {
			return s, true
		}
	}
	return Sense{}, false
}

// controlMask is the CONTROL byte's bits we refuse (SAM-5 5.2): reserved
// bits 5-3, NACA (we do not support ACA), and the obsolete FLAG and LINK.
// Bits 7-6 are vendor specific and ignored.
const controlMask = 0x3F

// decode checks every field of cdb and returns the command, or the sense
// to complete it with. cdb is padded to 16 bytes; lu is nil for a LUN that
// does not exist (only INQUIRY, REPORT LUNS and REQUEST SENSE get through)
// or for the REPORT LUNS well-known LUN (wlun: TEST UNIT READY too).
// It is the model of LIO's sbc_parse_cdb/spc_parse_cdb: nothing here
// touches the medium or builds data.
func decode(lu *LU, wlun bool, c *[MaxCDBLen]byte) (command, Sense, bool) {
	op := Opcode(c[0])
	cmd := command{op: op, wlun: wlun}
	n := cdbLen(op)
	switch op {
	case Inquiry, ReportLUNs, RequestSense:
	case TestUnitReady:
		if lu == nil && !wlun {
			return cmd, Sense{Reason: ReasonLUNotSupported}, false
		}
	default:
		if lu == nil {
			return cmd, Sense{Reason: ReasonLUNotSupported}, false
		}
	}
	if n == 0 {
		return cmd, Sense{Reason: ReasonInvalidOpcode}, false
	}
	var s Sense
	var bad bool
	switch op {
	case Read6, Write6:
		if s, bad = rsvd(c, 1, 0xE0); bad {
			break
		}
		cmd.kind = kRead
		if op == Write6 {
			cmd.kind = kWrite
		}
		cmd.lba = uint64(c[1]&0x1F)<<16 | uint64(c[2])<<8 | uint64(c[3])
		cmd.blocks = uint32(c[4])
		if cmd.blocks == 0 {
			cmd.blocks = 256 // SBC-3 5.15: 0 means 256 blocks
		}
		cmd.lenOff = 4
	case Read10, Write10, Read12, Write12, Read16, Write16:
		s, bad = decodeRW(&cmd, c, op)
	case Verify10, Verify16, WriteVerify10, WriteVerify16, Unmap, WriteSame10, WriteSame16, CompareAndWrite:
		s, bad = decodeSBC(lu, &cmd, c, op) // sbc.go
	case PersistentResIn, PersistentResOut, Reserve6, Reserve10, Release6, Release10:
		s, bad = decodePR(&cmd, c, op) // pr.go
	case ModeSelect6, ModeSelect10, MaintenanceIn:
		s, bad = decodeSPC(&cmd, c, op) // spc.go
	case SynchronizeCache, SynchronizeCache16:
		// byte 1: reserved 7-3, obsolete SYNC_NV 2, IMMED 1, obsolete 0.
		// IMMED is accepted and the command completes when the flush does,
		// which SBC-3 5.22 permits.
		if s, bad = rsvd(c, 1, 0xFD); bad {
			break
		}
		cmd.kind = kSync
		s, bad = lbaAndLength(&cmd, c, op)
	case TestUnitReady:
		cmd.kind = kTUR
		s, bad = rsvdBytes(c, 1, 5)
	case Inquiry:
		cmd.kind = kInquiry
		if s, bad = rsvd(c, 1, 0xFE); bad { // bit 1 is the obsolete CMDDT
			break
		}
		cmd.evpd = c[1]&1 != 0
		cmd.page = c[2]
		if !cmd.evpd && cmd.page != 0 {
			s, bad = invalidField(2, 7), true // SPC-4 6.6.1
			break
		}
		cmd.alloc = uint32(binary.BigEndian.Uint16(c[3:]))
	case ReadCapacity:
		cmd.kind = kReadCap10
		if s, bad = rsvd(c, 1, 0xFF); bad {
			break
		}
		if s, bad = rsvdBytes(c, 6, 8); bad {
			break
		}
		if s, bad = rsvd(c, 8, 0xFE); bad {
			break
		}
		if c[8]&1 == 0 { // PMI=0: the LOGICAL BLOCK ADDRESS shall be 0 (SBC-3 5.16)
			s, bad = rsvdBytes(c, 2, 6)
		}
		cmd.alloc = 8
	case ServiceActionIn16:
		if c[1]&0x1F != SAIReadCapacity16 {
			s, bad = invalidField(1, 4), true
			break
		}
		cmd.kind = kReadCap16
		if s, bad = rsvd(c, 1, 0xE0); bad {
			break
		}
		if s, bad = rsvd(c, 14, 0xFE); bad {
			break
		}
		if c[14]&1 == 0 {
			s, bad = rsvdBytes(c, 2, 10)
		}
		cmd.alloc = binary.BigEndian.Uint32(c[10:])
	case RequestSense:
		cmd.kind = kRequestSense
		if s, bad = rsvd(c, 1, 0xFE); bad {
			break
		}
		if s, bad = rsvdBytes(c, 2, 4); bad {
			break
		}
		cmd.desc = c[1]&1 != 0
		cmd.alloc = uint32(c[4])
	case ReportLUNs:
		cmd.kind = kReportLUNs
		if s, bad = rsvd(c, 1, 0xFF); bad {
			break
		}
		// SELECT REPORT 00h: the LUs; 01h: the well-known LUs (REPORT
		// LUNS); 02h: both. The rest are reserved in SPC-4.
		if c[2] > 0x02 {
			s, bad = invalidByte(2), true
			break
		}
		cmd.page = c[2]
		if s, bad = rsvdBytes(c, 3, 6); bad {
			break
		}
		if s, bad = rsvd(c, 10, 0xFF); bad {
			break
		}
		cmd.alloc = binary.BigEndian.Uint32(c[6:])
	case ModeSense6, ModeSense10:
		s, bad = decodeModeSense(&cmd, c, op)
	case StartStop:
		cmd.kind = kStartStop
		// byte 1: reserved 7-1, IMMED 0; byte 3: reserved 7-4, POWER
		// CONDITION MODIFIER 3-0; byte 4: POWER CONDITION 7-4, reserved
		// 3, NO_FLUSH 2, LOEJ 1, START 0. A fixed disk has no medium to
		// eject and no power conditions: like LIO, refuse LOEJ and any
		// POWER CONDITION, accept START and stop as no-ops.
		if s, bad = rsvd(c, 1, 0xFE); bad {
			break
		}
		if s, bad = rsvd(c, 2, 0xFF); bad {
			break
		}
		if s, bad = rsvd(c, 3, 0xFF); bad {
			break
		}
		if c[4]&0xF0 != 0 {
			s, bad = invalidField(4, 7), true
			break
		}
		s, bad = rsvd(c, 4, 0x0A)
	case AllowMediumRemoval:
		cmd.kind = kPreventAllow
		if s, bad = rsvdBytes(c, 1, 4); bad {
			break
		}
		// PREVENT 0-3: a fixed disk has nothing to lock; accepted.
		s, bad = rsvd(c, 4, 0xFC)
	default:
		return cmd, Sense{Reason: ReasonInvalidOpcode}, false
	}
	if bad {
		return cmd, s, false
	}
	if s, bad = rsvd(c, n-1, controlMask); bad {
		return cmd, s, false
	}
	switch cmd.kind {
	case kRead, kWrite, kVerify, kWriteVerify:
		if cmd.blocks > lu.maxXferBlks {
			return cmd, invalidField(cmd.lenOff, 7), false
		}
		if !inRange(cmd.lba, uint64(cmd.blocks), lu.blocks.Load()) {
			return cmd, Sense{Reason: ReasonLBAOutOfRange}, false
		}
	case kSync:
		// NUMBER OF LOGICAL BLOCKS 0 means to the end of the medium.
		if !inRange(cmd.lba, uint64(cmd.blocks), lu.blocks.Load()) {
			return cmd, Sense{Reason: ReasonLBAOutOfRange}, false
		}
	case kWriteSame, kCAW:
		if !inRange(cmd.lba, uint64(cmd.blocks), lu.blocks.Load()) {
			return cmd, Sense{Reason: ReasonLBAOutOfRange}, false
		}
	}
	switch cmd.kind {
	case kWrite, kWriteVerify, kWriteSame, kCAW, kUnmap:
		if lu.cfg.ReadOnly {
			return cmd, Sense{Reason: ReasonWriteProtected}, false
		}
	}
	return cmd, Sense{}, true
}

// decodeRW decodes READ/WRITE 10, 12 and 16 (SBC-3 5.8-5.11, 5.32-5.35).
func decodeRW(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	write := op == Write10 || op == Write12 || op == Write16
	cmd.kind = kRead
	if write {
		cmd.kind = kWrite
	}
	// byte 1: RDPROTECT/WRPROTECT 7-5 (no protection information here),
	// DPO 4 (a hint, accepted), FUA 3, RARC 2 (reads; reserved on writes),
	// obsolete FUA_NV 1, reserved 0.
	if c[1]&0xE0 != 0 {
		return invalidField(1, 7), true
	}
	mask := byte(0x03)
	if write {
		mask = 0x07
	}
	if s, bad := rsvd(c, 1, mask); bad {
		return s, true
	}
	cmd.fua = c[1]&0x08 != 0
	return lbaAndLength(cmd, c, op)
}

// lbaAndLength reads the LOGICAL BLOCK ADDRESS and the length field (blocks
// to transfer, verify or flush) of a 10-, 12- or 16-byte block command, which
// SBC-3 places at the same offsets in all of them, the size following from
// the opcode's group code (SPC-4 4.2.5.1). It then checks the GROUP NUMBER
// byte: bits 4-0 are a hint and accepted, bits 7-5 are reserved (or DLD/MMC
// bits we do not implement).
func lbaAndLength(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	group := 0
	switch op >> 5 {
	case 1, 2: // 10-byte CDBs
		cmd.lba = uint64(binary.BigEndian.Uint32(c[2:]))
		cmd.blocks = uint32(binary.BigEndian.Uint16(c[7:]))
		cmd.lenOff, group = 7, 6
	case 5: // 12-byte CDBs
		cmd.lba = uint64(binary.BigEndian.Uint32(c[2:]))
		cmd.blocks = binary.BigEndian.Uint32(c[6:])
		cmd.lenOff, group = 6, 10
	case 4: // 16-byte CDBs
		cmd.lba = binary.BigEndian.Uint64(c[2:])
		cmd.blocks = binary.BigEndian.Uint32(c[10:])
		cmd.lenOff, group = 10, 14
	default:
		panic("scsi: lbaAndLength for " + op.String() + ", not a 10-, 12- or 16-byte block command")
	}
	return rsvd(c, group, 0xE0)
}

// Mode page codes (SBC-3 6.4.1).
const (
	pageCaching  = 0x08
	pageControl  = 0x0A
	pageIEC      = 0x1C
	pageAll      = 0x3F
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// decodeModeSense decodes MODE SENSE(6) and (10) (SPC-4 6.11, 6.12).
func decodeModeSense(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	if op == ModeSense6 {
		cmd.kind = kModeSense6
		// byte 1: reserved 7-4, DBD 3, reserved 2-0.
		if s, bad := rsvd(c, 1, 0xF7); bad {
			return s, true
		}
		cmd.alloc = uint32(c[4])
	} else {
		cmd.kind = kModeSense10
		// byte 1: reserved 7-5, LLBAA 4, DBD 3, reserved 2-0.
		if s, bad := rsvd(c, 1, 0xE7); bad {
			return s, true
		}
		if s, bad := rsvdBytes(c, 4, 7); bad {
			return s, true
		}
		cmd.llbaa = c[1]&0x10 != 0
		cmd.alloc = uint32(binary.BigEndian.Uint16(c[7:]))
	}
	cmd.dbd = c[1]&0x08 != 0
	cmd.pc = c[2] >> 6
	cmd.page = c[2] & 0x3F
	if cmd.pc == pcSaved {
		return Sense{Reason: ReasonSavingNotSupported}, true
	}
	switch cmd.page {
	case pageCaching, pageControl, pageIEC, pageAll:
	default:
		return invalidField(2, 5), true
	}
	// Only subpage 0 exists; 0xFF (all subpages) is valid with any page.
	if c[3] != 0 && c[3] != 0xFF {
		return invalidByte(3), true
	}
	return Sense{}, false
}
