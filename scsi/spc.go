package scsi

import (
	"encoding/binary"
	"math/bits"

	"github.com/usrpt/usrpt/ioengine"
)

// MODE SELECT(6/10) (SPC-4 6.9, 6.10) and MAINTENANCE IN: REPORT TARGET
// PORT GROUPS (6.36), REPORT SUPPORTED OPERATION CODES (6.35), REPORT
// SUPPORTED TASK MANAGEMENT FUNCTIONS (6.37).

// MAINTENANCE IN service actions (SPC-4 table D.4).
const (
	saReportTPG   = 0x0A
	saReportOps   = 0x0C
	saReportTMFs  = 0x0D
	maxTPGPorts   = 255 // TARGET PORT COUNT is one byte
	rsocTimeoutsN = 12  // command timeouts descriptor (SPC-4 6.35.4)
)

// decodeSPC decodes MODE SELECT(6/10) and MAINTENANCE IN.
func decodeSPC(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	switch op {
	case ModeSelect6, ModeSelect10:
		cmd.kind = kModeSelect
		// byte 1: reserved 7-5, PF 4, reserved 3-1, SP 0 (both sizes).
		if s, bad := rsvd(c, 1, 0xEE); bad {
			return s, true
		}
		if op == ModeSelect6 {
			if s, bad := rsvdBytes(c, 2, 4); bad {
				return s, true
			}
			cmd.paramLen = uint32(c[4])
		} else {
			if s, bad := rsvdBytes(c, 2, 7); bad {
				return s, true
			}
			cmd.paramLen = uint32(binary.BigEndian.Uint16(c[7:]))
		}
		cmd.pf = c[1]&0x10 != 0
		cmd.sp = c[1]&0x01 != 0
		if !cmd.pf {
			// PF=0 would make the pages vendor specific: we only take the
			// SPC-4 page format.
			return invalidField(1, 4), true
		}
		if cmd.sp {
			return Sense{Reason: ReasonSavingNotSupported}, true
		}
		return Sense{}, false
	case MaintenanceIn:
		cmd.kind = kMaintIn
		cmd.sa = c[1] & 0x1F
		switch cmd.sa {
		case saReportTPG:
			// byte 1: PARAMETER DATA FORMAT 7-5: 000b length only, 001b
			// extended header; the rest are reserved.
			cmd.options = c[1] >> 5
			if cmd.options > 1 {
				return invalidField(1, 7), true
			}
			if s, bad := rsvdBytes(c, 2, 6); bad {
				return s, true
			}
		case saReportOps:
			// byte 2: RCTD 7, reserved 6-3, REPORTING OPTIONS 2-0.
			if s, bad := rsvd(c, 1, 0xE0); bad {
				return s, true
			}
			if s, bad := rsvd(c, 2, 0x78); bad {
				return s, true
			}
			cmd.rctd = c[2]&0x80 != 0
			cmd.options = c[2] & 0x07
			// 011b (SPC-5: one command, service action or not) and the
			// reserved values are refused.
			if cmd.options > 2 {
				return invalidField(2, 2), true
			}
			cmd.reqOp = c[3]
			cmd.reqSA = binary.BigEndian.Uint16(c[4:])
		case saReportTMFs:
			// byte 2: REPD 7, reserved 6-0; bytes 3-5 reserved.
			if s, bad := rsvd(c, 1, 0xE0); bad {
				return s, true
			}
			if s, bad := rsvd(c, 2, 0x7F); bad {
				return s, true
			}
			if s, bad := rsvdBytes(c, 3, 6); bad {
				return s, true
			}
			cmd.options = c[2] >> 7
		default:
			return invalidField(1, 4), true
		}
		cmd.alloc = binary.BigEndian.Uint32(c[6:])
		return rsvd(c, 10, 0xFF)
	}
	return Sense{Reason: ReasonInvalidOpcode}, true
}

// execSPC executes a decoded MODE SELECT or MAINTENANCE IN.
func (e *Executor) execSPC(t *Task) {
	cmd := &t.cmd
	if cmd.kind == kModeSelect {
		e.modeSelect(t)
		return
	}
	b := e.scratch
	var n int
	switch cmd.sa {
	case saReportTPG:
		n = putReportTPG(b, t.Nexus, cmd.options == 1)
	case saReportOps:
		var s Sense
		var ok bool
		if n, s, ok = putReportOps(b, t.b.lu, cmd); !ok {
			e.fail(t, s)
			return
		}
	case saReportTMFs:
		n = putReportTMFs(b, cmd.options == 1)
	}
	e.dataIn(t, b, n)
}

// putReportTPG writes REPORT TARGET PORT GROUPS parameter data (SPC-4
// 6.36.2): one target port group, TargetPortGroup, active/optimized, with
// every target port of the nexus's target.
func putReportTPG(b []byte, n *Nexus, ext bool) int {
	off := 4
	if ext {
		off = 8
		clear(b[4:8])
		b[4] = 0x10 // FORMAT TYPE 001b
		b[5] = 0    // IMPLICIT TRANSITION TIME: none ever happens
	}
	ports := n.ports
	if len(ports) > maxTPGPorts {
		ports = ports[:maxTPGPorts]
	}
	d := b[off : off+8]
	clear(d)
	d[0] = 0x00 // PREF 0, ASYMMETRIC ACCESS STATE 0h: active/optimized
	d[1] = 0x01 // AO_SUP only: the group is never in any other state
	binary.BigEndian.PutUint16(d[2:], TargetPortGroup)
	d[5] = 0x00 // STATUS CODE: no status available
	d[7] = byte(len(ports))
	i := off + 8
	for _, p := range ports {
		b[i], b[i+1] = 0, 0 // obsolete
		binary.BigEndian.PutUint16(b[i+2:], p)
		i += 4
	}
	// RETURN DATA LENGTH: the descriptor list, in either format.
	binary.BigEndian.PutUint32(b[0:], uint32(i-off))
	return i
}

// putReportTMFs writes REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS
// parameter data (SPC-4 6.37.2): 4 bytes, or 16 with REPD.
func putReportTMFs(b []byte, repd bool) int {
	n := 4
	if repd {
		n = 16
	}
	clear(b[:n])
	for _, f := range SupportedTMFs {
		switch f {
		case TMFAbortTask:
			b[0] |= 0x80 // ATS
		case TMFAbortTaskSet:
			b[0] |= 0x40 // ATSS
		case TMFClearACA:
			b[0] |= 0x20 // CACAS
		case TMFClearTaskSet:
			b[0] |= 0x10 // CTSS
		case TMFLUNReset:
			b[0] |= 0x08 // LURS
		case TMFITNexusReset:
			b[1] |= 0x01 // ITNRS
		}
	}
	// QTS, TRS, WAKES, QUAS, QTSS: QUERY TASK, TARGET RESET, WAKEUP and
	// QUERY ASYNCHRONOUS EVENT are not supported.
	if repd {
		b[3] = 0x0C // ADDITIONAL DATA LENGTH; TMFTMOV 0: no timeouts
	}
	return n
}

// opInfo is one command of the table REPORT SUPPORTED OPERATION CODES
// reports (the model of LIO's target_opcode_descriptor).
type opInfo struct {
	op    Opcode
	sa    uint8 // service action, when hasSA
	hasSA bool
	// usage is the CDB USAGE DATA (SPC-4 6.35.3): usage[0] is the
	// opcode, then one bit per CDB bit, set for every bit decode lets
	// through, evaluated or ignored (DPO, the GROUP NUMBER hints, IMMED,
	// the vendor-specific CONTROL bits 7-6). Every bit left clear is
	// refused with INVALID FIELD IN CDB (TestOpcodeTable checks that
	// against decode), so an initiator can read the map as "safe to set".
	usage []byte
	// enabled, when not nil, says whether the LU supports the command.
	enabled func(*LU) bool
}

// ctl is the CONTROL byte usage: the vendor-specific bits 7-6, ignored;
// NACA, LINK and the reserved bits are refused (controlMask).
const ctl = ^byte(controlMask)

func opc(op Opcode, usage ...byte) opInfo {
	return opInfo{op: op, usage: append([]byte{byte(op)}, usage...)}
}

func opSA(op Opcode, sa uint8, usage ...byte) opInfo {
	return opInfo{op: op, sa: sa, hasSA: true, usage: append([]byte{byte(op)}, usage...)}
}

func (o opInfo) when(f func(*LU) bool) opInfo { o.enabled = f; return o }

func canUnmap(lu *LU) bool { return lu.discard }

// opTable is every command decode accepts, sorted by opcode and service
// action. A CDB bit outside usage is refused; TestOpcodeTable checks both
// ways against the executor.
var opTable = []opInfo{
	opc(TestUnitReady, 0, 0, 0, 0, ctl),
	opc(RequestSense, 0x01, 0, 0, 0xFF, ctl),
	opc(Read6, 0x1F, 0xFF, 0xFF, 0xFF, ctl),
	opc(Write6, 0x1F, 0xFF, 0xFF, 0xFF, ctl),
	opc(Inquiry, 0x01, 0xFF, 0xFF, 0xFF, ctl),
	opc(ModeSelect6, 0x11, 0, 0, 0xFF, ctl),
	opc(Reserve6, 0, 0, 0, 0, ctl),
	opc(Release6, 0, 0, 0, 0, ctl),
	opc(ModeSense6, 0x08, 0xFF, 0xFF, 0xFF, ctl),
	opc(StartStop, 0x01, 0, 0, 0x05, ctl),
	opc(AllowMediumRemoval, 0, 0, 0, 0x03, ctl),
	opc(ReadCapacity, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x01, ctl),
	opc(Read10, 0x1C, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, ctl),
	opc(Write10, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, ctl),
	opc(WriteVerify10, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, ctl),
	opc(Verify10, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, ctl),
	opc(SynchronizeCache, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, ctl),
	opc(WriteSame10, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, ctl),
	opc(Unmap, 0, 0, 0, 0, 0, 0x1F, 0xFF, 0xFF, ctl).when(canUnmap),
	opc(ModeSelect10, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),
	opc(Reserve10, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),
	opc(Release10, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),
	opc(ModeSense10, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, ctl),
	opSA(PersistentResIn, 0x00, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),           // READ KEYS
	opSA(PersistentResIn, 0x01, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),           // READ RESERVATION
	opSA(PersistentResIn, 0x02, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),           // REPORT CAPABILITIES
	opSA(PersistentResIn, 0x03, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, ctl),           // READ FULL STATUS
	opSA(PersistentResOut, 0x00, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // REGISTER
	opSA(PersistentResOut, 0x01, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // RESERVE
	opSA(PersistentResOut, 0x02, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // RELEASE
	opSA(PersistentResOut, 0x03, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // CLEAR
	opSA(PersistentResOut, 0x04, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // PREEMPT
	opSA(PersistentResOut, 0x05, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // PREEMPT AND ABORT (where the transport fans fences out)
	opSA(PersistentResOut, 0x06, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, ctl), // REGISTER AND IGNORE EXISTING KEY
	opc(Read16, 0x1C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opc(CompareAndWrite, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0x1F, ctl),
	opc(Write16, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opc(WriteVerify16, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opc(Verify16, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opc(SynchronizeCache16, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opc(WriteSame16, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opSA(ServiceActionIn16, SAIReadCapacity16, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, ctl),
	opc(ReportLUNs, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, ctl),
	opSA(MaintenanceIn, saReportTPG, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, ctl),
	opSA(MaintenanceIn, saReportOps, 0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, ctl),
	opSA(MaintenanceIn, saReportTMFs, 0x1F, 0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, ctl),
	opc(Read12, 0x1C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
	opc(Write12, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, ctl),
}

// putCommandTimeouts writes an all-zero command timeouts descriptor (SPC-4
// 6.35.4): NOMINAL and RECOMMENDED COMMAND TIMEOUT 0, not specified.
func putCommandTimeouts(b []byte) int {
	clear(b[:rsocTimeoutsN])
	binary.BigEndian.PutUint16(b, rsocTimeoutsN-2) // DESCRIPTOR LENGTH 0Ah
	return rsocTimeoutsN
}

// putReportOps writes REPORT SUPPORTED OPERATION CODES parameter data
// (SPC-4 6.35.2, 6.35.3), or returns the sense to fail it with.
func putReportOps(b []byte, lu *LU, cmd *command) (int, Sense, bool) {
	if cmd.options == 0 {
		// All commands: COMMAND DATA LENGTH, then a command descriptor
		// (with a timeouts descriptor when RCTD) for each.
		n := 4
		for i := range opTable {
			o := &opTable[i]
			if o.enabled != nil && !o.enabled(lu) {
				continue
			}
			d := b[n : n+8]
			clear(d)
			d[0] = byte(o.op)
			if o.hasSA {
				d[3] = o.sa
				d[5] = 0x01 // SERVACTV
			}
			if cmd.rctd {
				d[5] |= 0x02 // CTDP
			}
			binary.BigEndian.PutUint16(d[6:], uint16(len(o.usage)))
			n += 8
			if cmd.rctd {
				n += putCommandTimeouts(b[n:])
			}
		}
		binary.BigEndian.PutUint32(b, uint32(n-4))
		return n, Sense{}, true
	}
	// One command: 001b names an opcode without service actions, 010b
	// an opcode and one of its service actions.
	var found *opInfo
	for i := range opTable {
		o := &opTable[i]
		if o.op != Opcode(cmd.reqOp) {
			continue
		}
		switch {
		case cmd.options == 1 && o.hasSA, cmd.options == 2 && !o.hasSA:
			return 0, invalidField(3, 7), false
		case cmd.options == 2 && uint16(o.sa) != cmd.reqSA:
			continue
		}
		if o.enabled == nil || o.enabled(lu) {
			found = o
		}
		break
	}
	clear(b[:4])
	if found == nil {
		b[1] = 0x01 // SUPPORT 001b: not supported; CDB SIZE 0
		return 4, Sense{}, true
	}
	b[1] = 0x03 // SUPPORT 011b: supported as the standard says
	if cmd.rctd {
		b[1] |= 0x80 // CTDP
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(found.usage)))
	n := 4 + copy(b[4:], found.usage)
	if cmd.rctd {
		n += putCommandTimeouts(b[n:])
	}
	return n, Sense{}, true
}

// Parameter list offsets of the mode parameter headers (SPC-4 7.5.4).
const (
	modeHdr6  = 4
	modeHdr10 = 8
)

// modeSelect carries out MODE SELECT(6/10) (SPC-4 6.9, 6.10, 7.5): every
// field of the parameter list is checked before anything changes, then
// WCE and D_SENSE are applied and every other nexus gets MODE PARAMETERS
// CHANGED.
func (e *Executor) modeSelect(t *Task) {
	cmd := &t.cmd
	lu := t.b.lu
	if t.DataLen != int(cmd.paramLen) {
		e.fail(t, Sense{Reason: ReasonInvalidFieldIU})
		return
	}
	if cmd.paramLen == 0 {
		e.good(t, 0, 0) // SPC-4 6.9: nothing to transfer, not an error
		return
	}
	wce, dsense, s, ok := checkModeSelect(lu, cmd.op == ModeSelect10, t.Data[:t.DataLen], e.scratch)
	if !ok {
		e.fail(t, s)
		return
	}
	wasWCE := lu.wce.Swap(wce)
	changed := wasWCE != wce
	if lu.dsense.Swap(dsense) != dsense {
		changed = true
	}
	if changed {
		lu.Establish(UAModeChanged, t.b.n)
	}
	if wasWCE && !wce {
		// Turning the write cache off: what it held is flushed before
		// GOOD, so the initiator may take every acknowledged write as
		// durable from here on, as write-through promises.
		e.submit(t, ioengine.OpFlush, 0, 0, nil)
		return
	}
	e.good(t, 0, 0)
}

// checkModeSelect validates a MODE SELECT parameter list p against the
// LU's pages and returns the WCE and D_SENSE it asks for. scratch holds
// the current and changeable pages while it compares.
func checkModeSelect(lu *LU, ten bool, p, scratch []byte) (wce, dsense bool, s Sense, ok bool) {
	wce, dsense = lu.wce.Load(), lu.dsense.Load()
	hdr := modeHdr6
	if ten {
		hdr = modeHdr10
	}
	if len(p) < hdr {
		return wce, dsense, Sense{Reason: ReasonParamListLength}, false
	}
	// MODE DATA LENGTH is reserved in MODE SELECT and the DEVICE-SPECIFIC
	// PARAMETER's WP and DPOFUA are ignored (SBC-3 6.4.1): initiators
	// send back what MODE SENSE gave them, or zero. MEDIUM TYPE must be
	// 00h (SBC-3: the only one of a direct-access device).
	var bdl, mt int
	long := false
	if ten {
		mt = 2
		if v := p[4] & 0xFE; v != 0 { // byte 4: reserved 7-1, LONGLBA 0
			return wce, dsense, invalidParam(4, uint8(bits.Len8(v)-1)), false
		}
		if p[5] != 0 {
			return wce, dsense, invalidParam(5, uint8(bits.Len8(p[5])-1)), false
		}
		long = p[4]&1 != 0
		bdl = int(binary.BigEndian.Uint16(p[6:]))
	} else {
		mt = 1
		bdl = int(p[3])
	}
	if p[mt] != 0 {
		return wce, dsense, invalidParam(mt, 7), false
	}
	bdlOff := hdr - 1
	if ten {
		bdlOff = 6
	}
	want := 8
	if long {
		want = 16
	}
	if bdl != 0 && bdl != want {
		return wce, dsense, invalidParam(bdlOff, 7), false
	}
	if hdr+bdl > len(p) {
		return wce, dsense, Sense{Reason: ReasonParamListLength}, false
	}
	if bdl != 0 {
		if s, bad := checkBlockDescriptor(lu, p[hdr:hdr+bdl], hdr); bad {
			return wce, dsense, s, false
		}
	}
	cur, chg := scratch[:cachingPageLen], scratch[cachingPageLen:2*cachingPageLen]
	for off := hdr + bdl; off < len(p); {
		if off+2 > len(p) {
			return wce, dsense, Sense{Reason: ReasonParamListLength}, false
		}
		if p[off]&0x80 != 0 { // PS is reserved in MODE SELECT
			return wce, dsense, invalidParam(off, 7), false
		}
		if p[off]&0x40 != 0 { // SPF: we have no subpages
			return wce, dsense, invalidParam(off, 6), false
		}
		code := p[off] & 0x3F
		var plen int
		switch code {
		case pageCaching:
			plen = cachingPageLen
		case pageControl:
			plen = controlPageLen
		case pageIEC:
			plen = iecPageLen
		default:
			return wce, dsense, invalidParam(off, 5), false
		}
		if int(p[off+1]) != plen-2 {
			return wce, dsense, invalidParam(off+1, 7), false
		}
		if off+plen > len(p) {
			return wce, dsense, Sense{Reason: ReasonParamListLength}, false
		}
		got := p[off : off+plen]
		putModePages(cur, lu, code, pcCurrent)
		putModePages(chg, lu, code, pcChangeable)
		// The current values are the live ones; let the earlier pages of
		// this same list count as current too.
		switch code {
		case pageCaching:
			setBit(cur, 2, 0x04, wce)
		case pageControl:
			setBit(cur, 2, 0x04, dsense)
		}
		for j := 2; j < plen; j++ {
			if d := (got[j] ^ cur[j]) &^ chg[j]; d != 0 {
				return wce, dsense, invalidParam(off+j, uint8(bits.Len8(d)-1)), false
			}
		}
		switch code {
		case pageCaching:
			wce = got[2]&0x04 != 0
		case pageControl:
			dsense = got[2]&0x04 != 0
		}
		off += plen
	}
	return wce, dsense, Sense{}, true
}

func setBit(b []byte, i int, mask byte, on bool) {
	if on {
		b[i] |= mask
	} else {
		b[i] &^= mask
	}
}

// checkBlockDescriptor checks a mode parameter block descriptor (SBC-3
// 6.4.2) at offset off of the parameter list: it may only repeat the
// logical block length and capacity (NUMBER OF LOGICAL BLOCKS 0: keep
// the capacity), since neither can change.
func checkBlockDescriptor(lu *LU, d []byte, off int) (Sense, bool) {
	blocks := lu.blocks.Load()
	var nb uint64
	var lenOff int
	if len(d) == 16 {
		nb = binary.BigEndian.Uint64(d[0:])
		for i := 8; i < 12; i++ {
			if d[i] != 0 {
				return invalidParam(off+i, uint8(bits.Len8(d[i])-1)), true
			}
		}
		lenOff = 12
	} else {
		nb = uint64(binary.BigEndian.Uint32(d[0:]))
		blocks = min(blocks, 0xFFFFFFFF)
		if d[4] != 0 {
			return invalidParam(off+4, uint8(bits.Len8(d[4])-1)), true
		}
		lenOff = 4 // the 24-bit LOGICAL BLOCK LENGTH is bytes 5-7
	}
	if nb != 0 && nb != blocks {
		return invalidParam(off, 7), true
	}
	bl := binary.BigEndian.Uint32(d[lenOff:])
	if len(d) == 8 {
		bl &= 0xFFFFFF
	}
	if int(bl) != lu.blockSize {
		if len(d) == 8 {
			return invalidParam(off+5, 7), true
		}
		return invalidParam(off+lenOff, 7), true
	}
	return Sense{}, false
}

// canFlush reports whether the LU's engine can flush, which a write cache
// (WCE=1) needs.
func canFlush(lu *LU) bool { return lu.cfg.Engine.Supports(ioengine.OpFlush) }
