package scsi

import "encoding/binary"

func be64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

// padSpaces copies s into b and fills the rest with ASCII spaces, the
// padding SPC-4 6.6.2 asks of the identification fields.
func padSpaces(b []byte, s string) {
	n := copy(b, s)
	for i := n; i < len(b); i++ {
		b[i] = ' '
	}
}

// VPD page codes (SPC-4 7.8, SBC-3 6.5).
const (
	vpdSupported    = 0x00
	vpdSerial       = 0x80
	vpdDeviceID     = 0x83
	vpdExtInquiry   = 0x86
	vpdBlockLimits  = 0xB0
	vpdBlockDevChar = 0xB1
	vpdLBP          = 0xB2
)

// stdInquiryLen is the standard INQUIRY data we return: the 36 bytes of
// SPC-4 table 139 up to PRODUCT REVISION LEVEL (version descriptors are
// optional).
const stdInquiryLen = 36

// putStdInquiry writes standard INQUIRY data (SPC-4 6.6.2).
func putStdInquiry(b []byte, lu *LU, wlun bool) int {
	b = b[:stdInquiryLen]
	clear(b)
	if wlun {
		b[0] = 0x1E // well known logical unit
	} else if lu == nil {
		// No LU at this LUN: PERIPHERAL QUALIFIER 011b, DEVICE TYPE 1Fh
		// (SPC-4 6.6.2), the rest as for a real one.
		b[0] = 0x7F
	}
	b[2] = 0x06        // VERSION: SPC-4
	b[3] = 0x10 | 0x02 // HISUP, RESPONSE DATA FORMAT 2
	b[4] = stdInquiryLen - 5
	if lu != nil {
		// TPGS 01b: implicit ALUA, so Linux's scsi_dh_alua and multipath
		// ask REPORT TARGET PORT GROUPS (one active/optimized group),
		// as they do of LIO.
		b[5] = 0x10
	}
	b[7] = 0x02 // CMDQUE
	cfg := Config{Vendor: DefaultVendor, Product: DefaultProduct, Revision: DefaultRevision}
	if lu != nil {
		cfg = lu.cfg
	}
	padSpaces(b[8:16], cfg.Vendor)
	padSpaces(b[16:32], cfg.Product)
	padSpaces(b[32:36], cfg.Revision)
	return stdInquiryLen
}

// putVPD writes VPD page page for task t into b (at least vpdMax bytes)
// and returns its length, or false for a page we do not have. The LU is
// t's; none for the REPORT LUNS well-known LUN, which has pages 0x00 and
// 0x83 only (SPC-4 8.2). The target port designators of 0x83 come from
// t's nexus.
func putVPD(b []byte, t *Task, page uint8) (int, bool) {
	var lu *LU
	if t.b != nil {
		lu = t.b.lu
	}
	b[0] = 0x00 // PERIPHERAL QUALIFIER 000b, DEVICE TYPE 00h (SBC)
	if lu == nil {
		b[0] = 0x1E // well known logical unit
	}
	b[1] = page
	b[2] = 0
	n := 4
	switch {
	case page == vpdSupported:
		pages := []byte{vpdSupported, vpdSerial, vpdDeviceID, vpdExtInquiry, vpdBlockLimits, vpdBlockDevChar, vpdLBP}
		if lu == nil {
			pages = []byte{vpdSupported, vpdDeviceID}
		}
		n += copy(b[4:], pages)
	case page == vpdDeviceID:
		if lu != nil {
			n = putLUDesignators(b, n, lu)
		}
		n = putPortDesignators(b, n, t.Nexus)
	case lu == nil:
		return 0, false
	case page == vpdSerial:
		n += copy(b[4:], lu.cfg.Serial)
	case page == vpdExtInquiry:
		// SPC-4 7.8.7, page length 3Ch. No protection information (SPT,
		// GRD_CHK, APP_CHK, REF_CHK 0); HEADSUP, ORDSUP and SIMPSUP: the
		// task set honours HEAD OF QUEUE, ORDERED and SIMPLE (exec.go),
		// ACA is refused; no grouping function or priority (GROUP_SUP,
		// PRIOR_SUP 0); V_SUP, as LIO's target_check_wce, while the
		// volatile write cache is on (WCE=1), NV_SUP 0; LUICLR: unit
		// attentions are kept and cleared per I_T nexus (nexus.go).
		clear(b[4:64])
		b[5] = 0x04 | 0x02 | 0x01 // HEADSUP, ORDSUP, SIMPSUP
		if lu.wce.Load() {
			b[6] = 0x01 // V_SUP
		}
		b[7] = 0x01 // LUICLR
		n = 64
	case page == vpdBlockLimits:
		// SBC-3 6.5.3, page length 3Ch.
		clear(b[4:64])
		b[4] = 0x01                                        // WSNZ: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 is refused
		b[5] = byte(lu.maxCAWBlocks())                     // MAXIMUM COMPARE AND WRITE LENGTH
		binary.BigEndian.PutUint16(b[6:], 1)               // OPTIMAL TRANSFER LENGTH GRANULARITY
		binary.BigEndian.PutUint32(b[8:], lu.maxXferBlks)  // MAXIMUM TRANSFER LENGTH
		binary.BigEndian.PutUint32(b[12:], lu.maxXferBlks) // OPTIMAL TRANSFER LENGTH
		if lu.thin {
			binary.BigEndian.PutUint32(b[20:], maxUnmapBlocks)      // MAXIMUM UNMAP LBA COUNT
			binary.BigEndian.PutUint32(b[24:], maxUnmapDescriptors) // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
			binary.BigEndian.PutUint32(b[28:], 1)                   // OPTIMAL UNMAP GRANULARITY; UGAVALID 0
		}
		be64(b[36:], maxUnmapBlocks) // MAXIMUM WRITE SAME LENGTH
		n = 64
	case page == vpdBlockDevChar:
		// SBC-3 6.5.2, page length 3Ch: MEDIUM ROTATION RATE 1, non-rotating.
		clear(b[4:64])
		binary.BigEndian.PutUint16(b[4:], 1)
		n = 64
	case page == vpdLBP:
		// SBC-3 6.5.4, page length 4. Thin: LBPU (UNMAP), LBPWS (WRITE
		// SAME(16) with UNMAP), LBPWS10 (WRITE SAME(10) with UNMAP),
		// PROVISIONING TYPE 010b (thin). LBPRZ 0: a deallocated block
		// need not read back as zeroes; ANC_SUP 0 (no ANCHOR); DP 0 (no
		// provisioning group descriptor); THRESHOLD EXPONENT 0.
		clear(b[4:8])
		if lu.thin {
			b[5] = 0x80 | 0x40 | 0x20
			b[6] = 0x02
		}
		n = 8
	default:
		return 0, false
	}
	binary.BigEndian.PutUint16(b[2:], uint16(n-4))
	return n, true
}

// putLUDesignators writes the designators of the LU (ASSOCIATION 00b) of
// VPD page 0x83 at b[n:] and returns the new end.
func putLUDesignators(b []byte, n int, lu *LU) int {
	// NAA IEEE Registered Extended (SPC-4 7.8.6.6.3): PROTOCOL
	// IDENTIFIER 0, CODE SET 1 (binary), PIV 0, ASSOCIATION 00b (the
	// LU), DESIGNATOR TYPE 3 (NAA), length 16.
	b[n], b[n+1], b[n+2], b[n+3] = 0x01, 0x03, 0x00, 16
	naa := lu.NAA()
	copy(b[n+4:], naa[:])
	n += 4 + 16
	// T10 vendor ID based (7.8.6.4): CODE SET 2 (ASCII), DESIGNATOR
	// TYPE 1; T10 VENDOR IDENTIFICATION then the unit serial number,
	// as LIO does.
	l := 8 + len(lu.cfg.Serial)
	b[n], b[n+1], b[n+2], b[n+3] = 0x02, 0x01, 0x00, byte(l)
	padSpaces(b[n+4:n+12], lu.cfg.Vendor)
	copy(b[n+12:], lu.cfg.Serial)
	return n + 4 + l
}

// putPortDesignators writes the relative target port (SPC-4 7.8.6.7) and
// target port group (7.8.6.8) designators of VPD page 0x83 at b[n:]:
// PROTOCOL IDENTIFIER 4h (SRP), CODE SET 1 (binary), PIV 1, ASSOCIATION
// 01b (the target port), DESIGNATOR TYPE 4 and 5, 4 bytes each: two
// reserved (obsolete) bytes, then the 16-bit identifier.
func putPortDesignators(b []byte, n int, nx *Nexus) int {
	for _, d := range [...]struct {
		typ byte
		id  uint16
	}{{0x04, nx.relPort}, {0x05, TargetPortGroup}} {
		b[n], b[n+1], b[n+2], b[n+3] = 0x41, 0x80|0x10|d.typ, 0x00, 4
		b[n+4], b[n+5] = 0, 0
		binary.BigEndian.PutUint16(b[n+6:], d.id)
		n += 8
	}
	return n
}

// putReadCap10 writes READ CAPACITY(10) data (SBC-3 5.16.2).
func putReadCap10(b []byte, lu *LU) int {
	last := lu.blocks.Load() - 1
	if last > 0xFFFFFFFE {
		last = 0xFFFFFFFF // the initiator must use READ CAPACITY(16)
	}
	binary.BigEndian.PutUint32(b[0:], uint32(last))
	binary.BigEndian.PutUint32(b[4:], uint32(lu.blockSize))
	return 8
}

const readCap16Len = 32

// putReadCap16 writes READ CAPACITY(16) data (SBC-3 5.17.2).
func putReadCap16(b []byte, lu *LU) int {
	b = b[:readCap16Len]
	clear(b)
	be64(b[0:], lu.blocks.Load()-1)
	binary.BigEndian.PutUint32(b[8:], uint32(lu.blockSize))
	if lu.thin {
		b[14] = 0x80 // LBPME
	}
	return readCap16Len
}

// Mode page lengths, headers included.
const (
	cachingPageLen = 20 // PAGE LENGTH 12h
	controlPageLen = 12 // PAGE LENGTH 0Ah
	iecPageLen     = 12 // PAGE LENGTH 0Ah
)

// putModePages writes the mode pages selected by page and pc; it returns
// the bytes written.
func putModePages(b []byte, lu *LU, page, pc uint8) int {
	n := 0
	if page == pageCaching || page == pageAll {
		// Caching mode page (SBC-3 6.4.5): WCE is byte 2 bit 2.
		p := b[n : n+cachingPageLen]
		clear(p)
		p[0], p[1] = pageCaching, cachingPageLen-2
		switch pc {
		case pcCurrent:
			setBit(p, 2, 0x04, lu.wce.Load())
		case pcDefault:
			setBit(p, 2, 0x04, lu.cfg.WriteCache)
		case pcChangeable:
			// WCE can be set only where the engine can flush (a write
			// cache needs SYNCHRONIZE CACHE to mean something).
			setBit(p, 2, 0x04, canFlush(lu))
		}
		n += cachingPageLen
	}
	if page == pageControl || page == pageAll {
		// Control mode page (SPC-4 7.5.8).
		p := b[n : n+controlPageLen]
		clear(p)
		p[0], p[1] = pageControl, controlPageLen-2
		switch pc {
		case pcChangeable:
			p[2] = 0x04 // D_SENSE, the only changeable field
		default:
			dsense := lu.dsense.Load()
			if pc == pcDefault {
				dsense = lu.cfg.DescriptorSense
			}
			setBit(p, 2, 0x04, dsense) // D_SENSE
			p[3] = 0x10                // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering of SIMPLE tasks
			p[8], p[9] = 0xFF, 0xFF    // BUSY TIMEOUT PERIOD: unlimited
		}
		n += controlPageLen
	}
	if page == pageIEC || page == pageAll {
		// Informational exceptions control mode page (SPC-4 7.5.14):
		// nothing to report, all zero, as LIO.
		p := b[n : n+iecPageLen]
		clear(p)
		p[0], p[1] = pageIEC, iecPageLen-2
		n += iecPageLen
	}
	return n
}

// putModeSense writes MODE SENSE(6) or (10) parameter data (SPC-4 7.5.4,
// 7.5.5; SBC-3 6.4.2 for the block descriptors).
func putModeSense(b []byte, lu *LU, cmd *command) int {
	ten := cmd.kind == kModeSense10
	hdr := 4
	if ten {
		hdr = 8
	}
	clear(b[:hdr])
	dsp := byte(0x10) // DPOFUA
	if lu.cfg.ReadOnly {
		dsp |= 0x80 // WP
	}
	bdl := 0
	if !cmd.dbd {
		bdl = 8
		if ten && cmd.llbaa {
			bdl = 16
		}
	}
	d := b[hdr : hdr+bdl]
	clear(d)
	switch bdl {
	case 8: // short LBA block descriptor (SBC-3 6.4.2.2): the 32-bit NUMBER OF LOGICAL BLOCKS saturates at FFFFFFFFh
		binary.BigEndian.PutUint32(d[0:], uint32(min(lu.blocks.Load(), 0xFFFFFFFF)))
		d[5], d[6], d[7] = byte(lu.blockSize>>16), byte(lu.blockSize>>8), byte(lu.blockSize)
	case 16: // long LBA block descriptor
		be64(d[0:], lu.blocks.Load())
		binary.BigEndian.PutUint32(d[12:], uint32(lu.blockSize))
	}
	n := hdr + bdl
	n += putModePages(b[n:], lu, cmd.page, cmd.pc)
	if ten {
		binary.BigEndian.PutUint16(b[0:], uint16(n-2))
		b[3] = dsp
		if bdl == 16 {
			b[4] = 0x01 // LONGLBA
		}
		binary.BigEndian.PutUint16(b[6:], uint16(bdl))
	} else {
		b[0] = byte(n - 1)
		b[2] = dsp
		b[3] = byte(bdl)
	}
	return n
}

// emulateMax is the most data an emulated command makes up: REPORT LUNS
// with every LUN of 0-16383 and the well-known LUN.
const emulateMax = 8 + 8*(16384+1)

// emulate answers the commands whose data the target makes up.
func (e *Executor) emulate(t *Task) {
	cmd := &t.cmd
	var lu *LU
	if t.b != nil {
		lu = t.b.lu
	}
	b := e.scratch
	var n int
	switch cmd.kind {
	case kTUR: // the well-known LUN is always ready
		e.good(t, 0, 0)
		return
	case kInquiry:
		if !cmd.evpd {
			n = putStdInquiry(b, lu, cmd.wlun)
			break
		}
		if lu == nil && !cmd.wlun {
			e.fail(t, Sense{Reason: ReasonLUNotSupported})
			return
		}
		var ok bool
		if n, ok = putVPD(b, t, cmd.page); !ok {
			e.fail(t, invalidField(2, 7))
			return
		}
	case kReadCap10:
		n = putReadCap10(b, lu)
	case kReadCap16:
		n = putReadCap16(b, lu)
	case kModeSense6, kModeSense10:
		n = putModeSense(b, lu, cmd)
	case kRequestSense:
		// Sense goes with every CHECK CONDITION (SRP autosense), so the
		// only sense ever pending is a unit attention, which REQUEST
		// SENSE reports and clears (SPC-4 6.29); NO SENSE otherwise, and
		// LOGICAL UNIT NOT SUPPORTED for a LUN that is not there.
		s := Sense{}
		switch {
		case t.b != nil:
			s.Reason = t.b.takeUA().Reason()
		case !cmd.wlun:
			s.Reason = ReasonLUNotSupported
		}
		if cmd.desc {
			n = PutDescriptor(b, s)
		} else {
			n = PutFixed(b, s)
		}
	case kReportLUNs:
		n = 8
		if cmd.page != 0x01 { // SELECT REPORT 00h and 02h: the LUs
			for _, x := range t.Nexus.luns.Load().bs {
				l, _ := EncodeLUN(x.lun)
				be64(b[n:], l)
				n += 8
			}
		}
		if cmd.page != 0x00 { // 01h and 02h: the well-known LUN
			be64(b[n:], wlunReportLUNs)
			n += 8
		}
		binary.BigEndian.PutUint32(b[0:], uint32(n-8))
		binary.BigEndian.PutUint32(b[4:], 0)
	}
	e.dataIn(t, b, n)
}

// dataIn completes t with the n bytes of data-in it made up in b. The
// allocation length cuts the data (SPC-4 4.2.5.6) and the expected length
// cuts that; either short of the other is a residual.
func (e *Executor) dataIn(t *Task, b []byte, n int) {
	want := min(n, int(t.cmd.alloc))
	xfer := copy(t.Data[:t.DataLen], b[:want])
	e.good(t, xfer, want)
}

// EncodeLUN is LUN n as the 8-byte SAM-5 single-level LUN (4.7.7):
// peripheral device addressing for n < 256, flat space addressing up to
// 16383, the remaining levels zero; ok is false for larger n.
func EncodeLUN(n uint16) (lun uint64, ok bool) {
	switch {
	case n < 256:
		return uint64(n) << 48, true
	case n < 16384:
		return (0x4000 | uint64(n)) << 48, true
	}
	return 0, false
}

// DecodeLUN is the inverse of EncodeLUN: ok is false for any other
// address method or a multi-level LUN.
func DecodeLUN(lun uint64) (n uint16, ok bool) {
	if lun&0x0000_FFFF_FFFF_FFFF != 0 {
		return 0, false
	}
	top := uint16(lun >> 48)
	switch top >> 14 {
	case 0: // peripheral device: BUS IDENTIFIER must be 0
		if top>>8 != 0 {
			return 0, false
		}
		return top, true
	case 1: // flat space
		return top & 0x3FFF, true
	}
	return 0, false
}
