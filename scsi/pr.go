package scsi

// Reservations: PERSISTENT RESERVE IN/OUT (SPC-4 5.13, 6.15, 6.16) and
// RESERVE/RELEASE(6/10) (SPC-2 7.21, 7.13).
//
// The state of an LU's reservations is an immutable snapshot (prSnap)
// behind an atomic pointer: the data path (prConflict) loads it without a
// lock and returns at once when there is no reservation at all. The
// commands that change it (PERSISTENT RESERVE OUT, RESERVE, RELEASE, LUN
// RESET, nexus loss) copy it under prState.mu, change the copy and store
// it. Registrations belong to an I_T nexus identifier (Nexus.key:
// TransportID ‖ relative target port), so they outlive a logout and come
// back with the same initiator port's next login, as SPC-4 5.13.7 wants.
//
// What is refused, and why:
//   - SPEC_I_PT and ALL_TG_PT (INVALID FIELD IN PARAMETER LIST; SIP_C=0,
//     ATP_C=0): registrations are made only for the I_T nexus the command
//     came through.
//   - Scopes other than LU_SCOPE (INVALID FIELD IN CDB).
//   - REGISTER AND MOVE (INVALID FIELD IN CDB, service action): it needs
//     a TransportID of another nexus, as SPEC_I_PT does.
//   - PREEMPT AND ABORT on an Executor whose transport does not fan fences
//     out (AcceptFences): its abort half must end the preempted nexuses'
//     tasks in every Executor, which one reactor cannot do, and a PREEMPT
//     that leaves their writes in flight would be an unsafe fence. With
//     AcceptFences the command finishes with Task.Fence set, and the
//     transport runs TMFFence on every Executor before it answers.
//   - APTPL=1 when the LU has no PRStateFile (INVALID FIELD IN PARAMETER
//     LIST; PTPL_C=0).
//
// CRH=1 (SPC-4 5.13.3): RESERVE/RELEASE(6/10) from a persistent
// reservation holder, or from a registrant under a registrants only or all
// registrants reservation, complete with GOOD and change nothing; any other
// RESERVE while registrations or a persistent reservation exist is a
// RESERVATION CONFLICT, any other RELEASE a GOOD no-op (no RESERVE(6/10)
// reservation can exist then). While a RESERVE(6/10) reservation exists,
// every PERSISTENT RESERVE IN and OUT conflicts, whoever sends it (SPC-2
// 5.5.1, SPC-3 5.6.1; LIO does the same).

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// PERSISTENT RESERVE IN service actions (SPC-4 6.15.1).
const (
	prInReadKeys        = 0x00
	prInReadReservation = 0x01
	prInReportCaps      = 0x02
	prInReadFullStatus  = 0x03
)

// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.1).
const (
	prOutRegister       = 0x00
	prOutReserve        = 0x01
	prOutRelease        = 0x02
	prOutClear          = 0x03
	prOutPreempt        = 0x04
	prOutPreemptAbort   = 0x05
	prOutRegisterIgnore = 0x06
	prOutRegisterMove   = 0x07
)

// Persistent reservation types (SPC-4 6.16.3, table 197).
const (
	prWriteExclusive    = 0x1
	prExclusiveAccess   = 0x3
	prWriteExclusiveRO  = 0x5
	prExclusiveAccessRO = 0x6
	prWriteExclusiveAR  = 0x7
	prExclusiveAccessAR = 0x8
)

// prMaxRegs is the most registrations an LU keeps; one more is
// INSUFFICIENT REGISTRATION RESOURCES.
const prMaxRegs = 128

// prOutParamLen is the PERSISTENT RESERVE OUT parameter list without
// SPEC_I_PT (SPC-4 6.16.3): the only length accepted.
const prOutParamLen = 24

// maintInRTPG is the MAINTENANCE IN service action REPORT TARGET PORT
// GROUPS, which no reservation blocks.
const maintInRTPG = 0x0A

func prValidType(t uint8) bool {
	switch t {
	case prWriteExclusive, prExclusiveAccess, prWriteExclusiveRO, prExclusiveAccessRO, prWriteExclusiveAR, prExclusiveAccessAR:
		return true
	}
	return false
}

// prAllRegs says every registrant holds a reservation of type t.
func prAllRegs(t uint8) bool { return t == prWriteExclusiveAR || t == prExclusiveAccessAR }

// prRegsOnly says a reservation of type t lets every registrant in:
// registrants only and all registrants.
func prRegsOnly(t uint8) bool { return t >= prWriteExclusiveRO && t <= prExclusiveAccessAR }

// prReg is one registration: a reservation key of an I_T nexus.
type prReg struct {
	nexus string // Nexus.key: TransportID ‖ relative target port (big endian)
	key   uint64
}

// prSnap is the reservation state of an LU at one moment. It is never
// changed once stored: prState.update copies it.
type prSnap struct {
	gen    uint32  // PRGENERATION
	regs   []prReg // in registration order, each nexus once
	typ    uint8   // persistent reservation type; 0: none
	holder string  // nexus holding it (for all registrants types, the one that reserved)
	aptpl  bool    // activate persist through power loss is in effect
	spc2   string  // nexus holding a RESERVE(6/10) reservation; "": none
}

func (s *prSnap) find(nexus string) int {
	for i := range s.regs {
		if s.regs[i].nexus == nexus {
			return i
		}
	}
	return -1
}

// isHolder says nexus holds the persistent reservation (SPC-4 5.13.10).
func (s *prSnap) isHolder(nexus string) bool {
	if s.typ == 0 {
		return false
	}
	if prAllRegs(s.typ) {
		return s.find(nexus) >= 0
	}
	return s.holder == nexus
}

// persistent says there is anything persistent: a registration or a
// persistent reservation.
func (s *prSnap) persistent() bool { return len(s.regs) > 0 || s.typ != 0 }

func (s *prSnap) clone() *prSnap {
	c := *s
	c.regs = slices.Clone(s.regs)
	return &c
}

// prState is an LU's reservation state.
type prState struct {
	mu   sync.Mutex             // serializes changes (control plane)
	snap atomic.Pointer[prSnap] // nil: nothing at all
}

func (p *prState) load() *prSnap {
	if s := p.snap.Load(); s != nil {
		return s
	}
	return &prSnap{}
}

// prClass is how a command fares against a persistent reservation it
// does not hold (SPC-4 table 66 "SPC commands that are allowed in the
// presence of various reservations", SBC-3 table 13).
type prClass uint8

const (
	prAllowed prClass = iota // allowed under every type
	prReads                  // allowed through Write Exclusive types, conflicts with Exclusive Access
	prWrites                 // conflicts unless registered under a registrants only/all registrants type
)

func classify(cmd *command) prClass {
	switch cmd.kind {
	case kInquiry, kReportLUNs, kRequestSense, kReadCap10, kReadCap16, kTUR:
		return prAllowed
	case kPRIn, kPROut, kReserve, kRelease:
		// PR OUT: REGISTER is allowed from anyone, the other service
		// actions need a registration, which execPR checks (SPC-4 table
		// 66 note). RESERVE/RELEASE(6/10): the CRH rules in execPR.
		return prAllowed
	case kMaintIn:
		if cmd.sa == maintInRTPG {
			return prAllowed
		}
		// REPORT SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS:
		// allowed through Write Exclusive (ALLOW COMMANDS 011b).
		return prReads
	case kRead, kVerify, kModeSense6, kModeSense10:
		return prReads
	}
	// Writes (WRITE, WRITE AND VERIFY, WRITE SAME, UNMAP, COMPARE AND
	// WRITE), SYNCHRONIZE CACHE, MODE SELECT, and START STOP UNIT and
	// PREVENT ALLOW MEDIUM REMOVAL, which SBC-3 allows only with START=1
	// or PREVENT=0: the command does not keep those bits, so they are
	// taken the strict way.
	return prWrites
}

// prConflict reports whether cmd from nexus n conflicts with a reservation
// (RESERVATION CONFLICT). It is on the data path: no lock, no allocation.
func (lu *LU) prConflict(n *Nexus, cmd *command) bool {
	s := lu.pr.snap.Load()
	if s == nil || (s.typ == 0 && s.spc2 == "") {
		return false
	}
	if s.spc2 != "" {
		// SPC-2 7.21.2: the holder may do anything but PERSISTENT
		// RESERVE IN/OUT (SPC-2 5.5.1); others only what cannot hurt.
		switch cmd.kind {
		case kPRIn, kPROut:
			return true
		case kInquiry, kReportLUNs, kRequestSense, kRelease:
			return false
		case kMaintIn:
			if cmd.sa == maintInRTPG {
				return false
			}
		}
		return s.spc2 != n.key
	}
	c := classify(cmd)
	if c == prAllowed || s.isHolder(n.key) {
		return false
	}
	if prRegsOnly(s.typ) && s.find(n.key) >= 0 {
		return false
	}
	switch s.typ {
	case prWriteExclusive, prWriteExclusiveRO, prWriteExclusiveAR:
		return c == prWrites
	}
	return true // Exclusive Access types
}

// prLUNReset releases a RESERVE(6/10) reservation (LUN RESET).
func (lu *LU) prLUNReset() {
	lu.pr.mu.Lock()
	defer lu.pr.mu.Unlock()
	s := lu.pr.load()
	if s.spc2 == "" {
		return
	}
	next := s.clone()
	next.spc2 = ""
	lu.pr.snap.Store(next)
}

// prNexusGone releases a RESERVE(6/10) reservation held by n (logout,
// I_T NEXUS RESET).
func (lu *LU) prNexusGone(n *Nexus) {
	lu.pr.mu.Lock()
	defer lu.pr.mu.Unlock()
	s := lu.pr.load()
	if s.spc2 == "" || s.spc2 != n.key {
		return
	}
	next := s.clone()
	next.spc2 = ""
	lu.pr.snap.Store(next)
}

// decodePR decodes PERSISTENT RESERVE IN/OUT and RESERVE/RELEASE(6/10).
func decodePR(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	switch op {
	case PersistentResIn:
		// byte 1: reserved 7-5, SERVICE ACTION 4-0; 2-6 reserved;
		// 7-8 ALLOCATION LENGTH.
		cmd.kind = kPRIn
		if s, bad := rsvd(c, 1, 0xE0); bad {
			return s, true
		}
		cmd.sa = c[1] & 0x1F
		if cmd.sa > prInReadFullStatus {
			return invalidField(1, 4), true
		}
		if s, bad := rsvdBytes(c, 2, 7); bad {
			return s, true
		}
		cmd.alloc = uint32(binary.BigEndian.Uint16(c[7:]))
	case PersistentResOut:
		// byte 1: reserved 7-5, SERVICE ACTION 4-0; 2: SCOPE 7-4, TYPE
		// 3-0; 3-4 reserved; 5-8 PARAMETER LIST LENGTH.
		cmd.kind = kPROut
		if s, bad := rsvd(c, 1, 0xE0); bad {
			return s, true
		}
		cmd.sa = c[1] & 0x1F
		switch cmd.sa {
		case prOutRegister, prOutRegisterIgnore, prOutClear, prOutReserve, prOutRelease, prOutPreempt, prOutPreemptAbort:
		default:
			// REGISTER AND MOVE (see the top of this file) and the
			// reserved values.
			return invalidField(1, 4), true
		}
		cmd.scope, cmd.typ = c[2]>>4, c[2]&0x0F
		switch cmd.sa {
		case prOutReserve, prOutRelease, prOutPreempt, prOutPreemptAbort:
			// SCOPE and TYPE matter only here; REGISTER and CLEAR
			// ignore them (SPC-4 6.16.2).
			if cmd.scope != 0 {
				return invalidField(2, 7), true // LU_SCOPE only
			}
			if !prValidType(cmd.typ) {
				return invalidField(2, 3), true
			}
		}
		if s, bad := rsvdBytes(c, 3, 5); bad {
			return s, true
		}
		cmd.paramLen = binary.BigEndian.Uint32(c[5:])
	case Reserve6, Release6:
		// SPC-2 7.21.1, 7.13.1: byte 1 reserved 7-5 and obsolete 4-0
		// (third-party and extent reservations, which we refuse), bytes
		// 2-4 obsolete or reserved.
		cmd.kind = kReserve
		if op == Release6 {
			cmd.kind = kRelease
		}
		if s, bad := rsvdBytes(c, 1, 5); bad {
			return s, true
		}
	case Reserve10, Release10:
		// SPC-2 7.21.2, 7.13.2: byte 1 reserved 7-5, 3RDPTY 4, reserved
		// 3-2, LONGID 1, obsolete 0; 2 obsolete; 3 THIRD-PARTY DEVICE ID;
		// 4-6 reserved; 7-8 PARAMETER LIST LENGTH (only with LONGID).
		cmd.kind = kReserve
		if op == Release10 {
			cmd.kind = kRelease
		}
		if s, bad := rsvd(c, 1, 0xFF); bad {
			return s, true
		}
		if s, bad := rsvdBytes(c, 2, 9); bad {
			return s, true
		}
	default:
		return Sense{Reason: ReasonInvalidOpcode}, true
	}
	return Sense{}, false
}

// execPR executes a decoded reservation command. It runs on the reactor;
// a change while APTPL is in effect writes the state file synchronously
// from here, which is acceptable for a rare administrative command.
func (e *Executor) execPR(t *Task) {
	switch t.cmd.kind {
	case kPRIn:
		e.prIn(t)
	case kPROut:
		e.prOut(t)
	case kReserve:
		e.reserve(t)
	case kRelease:
		e.release(t)
	default:
		e.fail(t, Sense{Reason: ReasonInvalidOpcode})
	}
}

// prIn answers PERSISTENT RESERVE IN (SPC-4 6.15).
func (e *Executor) prIn(t *Task) {
	cmd := &t.cmd
	lu := t.b.lu
	s := lu.pr.load()
	b := e.scratch
	n := 8
	binary.BigEndian.PutUint32(b[0:], s.gen)
	switch cmd.sa {
	case prInReadKeys:
		for _, r := range s.regs {
			binary.BigEndian.PutUint64(b[n:], r.key)
			n += 8
		}
		binary.BigEndian.PutUint32(b[4:], uint32(n-8))
	case prInReadReservation:
		binary.BigEndian.PutUint32(b[4:], 0)
		if s.typ != 0 {
			clear(b[8:24])
			if !prAllRegs(s.typ) { // all registrants: the key is zero
				if i := s.find(s.holder); i >= 0 {
					binary.BigEndian.PutUint64(b[8:], s.regs[i].key)
				}
			}
			b[21] = s.typ // SCOPE 0 (LU_SCOPE)
			n = 24
			binary.BigEndian.PutUint32(b[4:], 16)
		}
	case prInReportCaps:
		clear(b[:8])
		binary.BigEndian.PutUint16(b[0:], 8) // LENGTH
		b[2] = 0x10                          // CRH=1, SIP_C=0, ATP_C=0
		if lu.cfg.PRStateFile != "" {
			b[2] |= 0x01 // PTPL_C
		}
		b[3] = 0x80 | 0x30 // TMV, ALLOW COMMANDS 011b (see classify)
		if s.aptpl {
			b[3] |= 0x01 // PTPL_A
		}
		// PERSISTENT RESERVATION TYPE MASK: WR_EX_AR, EX_AC_RO,
		// WR_EX_RO, EX_AC, WR_EX; EX_AC_AR.
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02
		b[5] = 0x01
	case prInReadFullStatus:
		for _, r := range s.regs {
			d := b[n:]
			tid, port := r.nexus[:len(r.nexus)-2], r.nexus[len(r.nexus)-2:]
			clear(d[:24])
			binary.BigEndian.PutUint64(d[0:], r.key)
			if s.isHolder(r.nexus) {
				d[12] = 0x01 // R_HOLDER (ALL_TG_PT 0)
				d[13] = s.typ
			}
			copy(d[18:20], port)
			binary.BigEndian.PutUint32(d[20:], uint32(len(tid)))
			n += 24 + copy(d[24:], tid)
		}
		binary.BigEndian.PutUint32(b[4:], uint32(n-8))
	}
	want := min(n, int(cmd.alloc))
	xfer := copy(t.Data[:t.DataLen], b[:want])
	e.good(t, xfer, want)
}

// prOut carries out PERSISTENT RESERVE OUT (SPC-4 5.13, 6.16).
func (e *Executor) prOut(t *Task) {
	cmd := &t.cmd
	if t.DataLen != int(cmd.paramLen) {
		e.fail(t, Sense{Reason: ReasonInvalidFieldIU})
		return
	}
	p := t.Data[:t.DataLen]
	if len(p) > 20 && p[20]&0x08 != 0 {
		e.fail(t, invalidParam(20, 3)) // SPEC_I_PT: SIP_C=0
		return
	}
	if len(p) != prOutParamLen {
		e.fail(t, Sense{Reason: ReasonParamListLength})
		return
	}
	// byte 20: reserved 7-4, SPEC_I_PT 3, ALL_TG_PT 2, reserved 1,
	// APTPL 0; 21 reserved. 16-19 and 22-23 are obsolete and ignored.
	switch {
	case p[20]&0xF0 != 0:
		e.fail(t, invalidParam(20, 7))
		return
	case p[20]&0x04 != 0:
		e.fail(t, invalidParam(20, 2)) // ALL_TG_PT: ATP_C=0
		return
	case p[20]&0x02 != 0:
		e.fail(t, invalidParam(20, 1))
		return
	case p[21] != 0:
		e.fail(t, invalidParam(21, 7))
		return
	}
	lu := t.b.lu
	a := prArgs{
		nexus: t.b.n.key,
		key:   binary.BigEndian.Uint64(p[0:]),
		sak:   binary.BigEndian.Uint64(p[8:]),
		aptpl: p[20]&0x01 != 0,
		sa:    cmd.sa,
		typ:   cmd.typ,
	}
	if a.aptpl && lu.cfg.PRStateFile == "" && (a.sa == prOutRegister || a.sa == prOutRegisterIgnore) {
		e.fail(t, invalidParam(20, 0)) // PTPL_C=0
		return
	}
	if a.sa == prOutPreemptAbort && !e.fences {
		e.fail(t, invalidField(1, 4)) // see the top of this file
		return
	}
	st, s, victims := lu.prUpdate(a)
	switch {
	case st == StatusReservationConflict:
		e.status(t, st)
	case st != StatusGood:
		e.fail(t, s)
	default:
		if a.sa == prOutPreemptAbort && len(victims) > 0 {
			t.Fence = &Fence{lu: lu, keys: victims}
		}
		e.good(t, 0, 0)
	}
}

// Fence is the abort half of PERSISTENT RESERVE OUT with PREEMPT AND
// ABORT (SPC-4 5.13.11.2.5): every task of the preempted I_T nexuses on
// the LU, in every Executor, is aborted before the command completes, so
// that no write of theirs lands after the initiator is told it is fenced
// off. The Executor that ran the command sets Task.Fence and returns the
// command with its status; the transport then starts a Task with TMF
// TMFFence, TMFLocal and this Fence on every Executor (that one
// included) and sends the command's response when all are back.
// Preempted nexuses get COMMANDS CLEARED BY ANOTHER INITIATOR for the
// tasks they lose, besides REGISTRATIONS PREEMPTED.
type Fence struct {
	lu   *LU
	keys []string // the preempted I_T nexuses
}

// Covers reports whether a command of nexus n at lun is one the fence
// aborts: transports use it for commands they hold before the Executor
// has them (waiting for buffers, reading their data-out).
func (f *Fence) Covers(n *Nexus, lun uint64) bool {
	if n == nil || !slices.Contains(f.keys, n.key) {
		return false
	}
	k, ok := DecodeLUN(lun)
	if !ok {
		return false
	}
	b := n.luns.Load().find(k)
	return b != nil && b.lu == f.lu
}

// AcceptFences declares that the transport carries out Task.Fence on every
// Executor; until it is called PREEMPT AND ABORT is refused here (INVALID
// FIELD IN CDB), since no one would abort the preempted tasks elsewhere.
func (e *Executor) AcceptFences() { e.fences = true }

// prArgs is one PERSISTENT RESERVE OUT, decoded.
type prArgs struct {
	nexus string // the I_T nexus it came through
	key   uint64 // RESERVATION KEY
	sak   uint64 // SERVICE ACTION RESERVATION KEY
	aptpl bool
	sa    uint8
	typ   uint8
}

// prUpdate applies a to the LU's state. It returns GOOD, RESERVATION
// CONFLICT, or CHECK CONDITION with the sense.
func (lu *LU) prUpdate(a prArgs) (Status, Sense, []string) {
	p := &lu.pr
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.load()
	if s.spc2 != "" {
		return StatusReservationConflict, Sense{}, nil // prConflict saw it too, unless it raced
	}
	me := s.find(a.nexus)
	// Every service action but REGISTER AND IGNORE EXISTING KEY checks the
	// RESERVATION KEY against the nexus's registration (0 when none).
	if a.sa != prOutRegisterIgnore {
		var mine uint64
		if me >= 0 {
			mine = s.regs[me].key
		}
		if a.key != mine {
			return StatusReservationConflict, Sense{}, nil
		}
	}
	if me < 0 && a.sa != prOutRegister && a.sa != prOutRegisterIgnore {
		return StatusReservationConflict, Sense{}, nil // SPC-4 5.13.5: register first
	}
	next := s.clone()
	var uas []prUA
	switch a.sa {
	case prOutRegister, prOutRegisterIgnore:
		switch {
		case me < 0 && a.sak == 0:
			return StatusGood, Sense{}, nil // nothing to register or remove
		case me < 0:
			if len(next.regs) >= prMaxRegs {
				return StatusCheckCondition, Sense{Reason: ReasonInsufficientRegResources}, nil
			}
			next.regs = append(next.regs, prReg{nexus: a.nexus, key: a.sak})
		case a.sak == 0:
			uas = next.unregister(me)
		default:
			next.regs[me].key = a.sak
		}
		next.aptpl = a.aptpl // the most recent APTPL value governs (SPC-4 5.13.5)
		next.gen++
	case prOutReserve:
		if s.typ != 0 {
			if s.isHolder(a.nexus) && s.typ == a.typ {
				return StatusGood, Sense{}, nil // already so: nothing changes
			}
			return StatusReservationConflict, Sense{}, nil
		}
		next.typ, next.holder = a.typ, a.nexus
	case prOutRelease:
		if s.typ == 0 || !s.isHolder(a.nexus) {
			return StatusGood, Sense{}, nil // SPC-4 5.13.11.2: nothing to release
		}
		if s.typ != a.typ {
			return StatusCheckCondition, Sense{Reason: ReasonInvalidReleasePR}, nil
		}
		if prRegsOnly(s.typ) {
			uas = next.others(a.nexus, UAReservationsReleased)
		}
		next.typ, next.holder = 0, ""
	case prOutClear:
		uas = next.others(a.nexus, UAReservationsPreempted)
		next.regs = next.regs[:0]
		next.typ, next.holder = 0, ""
		next.gen++
	case prOutPreempt, prOutPreemptAbort:
		var ok bool
		if uas, ok = next.preempt(a); !ok {
			if a.sak == 0 {
				return StatusCheckCondition, invalidParam(8, 7), nil
			}
			return StatusReservationConflict, Sense{}, nil
		}
		next.gen++
	}
	next.normalize()
	if err := lu.prSave(s, next); err != nil {
		return StatusCheckCondition, Sense{Reason: ReasonInternalFailure}, nil
	}
	p.snap.Store(next)
	lu.eachBinding(func(b *binding) {
		for _, u := range uas {
			if b.n.key == u.nexus {
				b.ua.Or(uint32(u.ua))
			}
		}
	})
	// The preempted nexuses, whose tasks PREEMPT AND ABORT aborts.
	var victims []string
	for _, u := range uas {
		if u.ua == UARegistrationsPreempted && !slices.Contains(victims, u.nexus) {
			victims = append(victims, u.nexus)
		}
	}
	return StatusGood, Sense{}, victims
}

// normalize keeps the holder of an all registrants reservation a
// registrant (the one that reserved may have gone; the reservation stays
// while anyone is registered), and drops a reservation nobody holds.
func (s *prSnap) normalize() {
	if s.typ == 0 || s.find(s.holder) >= 0 {
		return
	}
	if prAllRegs(s.typ) && len(s.regs) > 0 {
		s.holder = s.regs[0].nexus
		return
	}
	s.typ, s.holder = 0, ""
}

// prUA is a unit attention for the initiator port of a registration.
type prUA struct {
	nexus string
	ua    UA
}

// others is ua for every registrant but nexus.
func (s *prSnap) others(nexus string, ua UA) []prUA {
	var out []prUA
	for _, r := range s.regs {
		if r.nexus != nexus {
			out = append(out, prUA{r.nexus, ua})
		}
	}
	return out
}

// unregister removes registration i and what goes with it (SPC-4
// 5.13.11.3): a reservation it held is released, and under a registrants
// only type the other registrants learn of it.
func (s *prSnap) unregister(i int) []prUA {
	nexus := s.regs[i].nexus
	s.regs = slices.Delete(s.regs, i, i+1)
	var uas []prUA
	switch {
	case s.typ == 0:
	case prAllRegs(s.typ):
		if len(s.regs) == 0 {
			s.typ, s.holder = 0, ""
		}
	case s.holder == nexus:
		if prRegsOnly(s.typ) {
			uas = s.others(nexus, UAReservationsReleased)
		}
		s.typ, s.holder = 0, ""
	}
	return uas
}

// preempt carries out PREEMPT (SPC-4 5.13.11.4) on s; false when it must
// fail: RESERVATION CONFLICT, or INVALID FIELD IN PARAMETER LIST when the
// SERVICE ACTION RESERVATION KEY is zero.
func (s *prSnap) preempt(a prArgs) ([]prUA, bool) {
	holderKey := uint64(0)
	if s.typ != 0 && !prAllRegs(s.typ) {
		if i := s.find(s.holder); i >= 0 {
			holderKey = s.regs[i].key
		}
	}
	var uas []prUA
	if s.typ != 0 && (prAllRegs(s.typ) && a.sak == 0 || !prAllRegs(s.typ) && a.sak == holderKey) {
		// 5.13.11.4.3: the key names the holder. Remove the registrations
		// it names (with all registrants, every one) but the preempting
		// nexus's, and take the reservation with the new type.
		all := prAllRegs(s.typ)
		kept := s.regs[:0]
		for _, r := range s.regs {
			if r.nexus != a.nexus && (all || r.key == a.sak) {
				uas = append(uas, prUA{r.nexus, UARegistrationsPreempted})
				continue
			}
			kept = append(kept, r)
		}
		s.regs = kept
		if s.typ != a.typ {
			// The type changed: the remaining registrants lose what
			// they had (5.13.11.4.3 e).
			for _, r := range s.regs {
				if r.nexus != a.nexus {
					uas = append(uas, prUA{r.nexus, UAReservationsReleased})
				}
			}
		}
		s.typ, s.holder = a.typ, a.nexus
		return uas, true
	}
	// 5.13.11.4.4: no reservation, or the key names no holder: remove
	// the registrations with that key, the preempting nexus's included.
	if a.sak == 0 {
		return nil, false
	}
	removed := false
	kept := s.regs[:0]
	for _, r := range s.regs {
		if r.key == a.sak {
			removed = true
			if r.nexus != a.nexus {
				uas = append(uas, prUA{r.nexus, UARegistrationsPreempted})
			}
			continue
		}
		kept = append(kept, r)
	}
	s.regs = kept
	if !removed {
		return nil, false
	}
	if s.typ != 0 && prAllRegs(s.typ) && len(s.regs) == 0 {
		s.typ, s.holder = 0, ""
	}
	return uas, true
}

// reserve carries out RESERVE(6/10) (SPC-2 7.21; SPC-4 5.13.3 with CRH=1).
func (e *Executor) reserve(t *Task) {
	lu, n := t.b.lu, t.b.n
	p := &lu.pr
	p.mu.Lock()
	s := p.load()
	var st Status
	switch {
	case s.persistent():
		if s.isHolder(n.key) || prRegsOnly(s.typ) && s.find(n.key) >= 0 {
			st = StatusGood // CRH: GOOD, nothing changes
		} else {
			st = StatusReservationConflict
		}
	case s.spc2 != "" && s.spc2 != n.key:
		st = StatusReservationConflict
	default:
		st = StatusGood
		if s.spc2 != n.key {
			next := s.clone()
			next.spc2 = n.key
			p.snap.Store(next)
		}
	}
	p.mu.Unlock()
	if st != StatusGood {
		e.status(t, st)
		return
	}
	e.good(t, 0, 0)
}

// release carries out RELEASE(6/10): the holder's releases the
// reservation, anyone else's does nothing (SPC-2 7.13).
func (e *Executor) release(t *Task) {
	lu, n := t.b.lu, t.b.n
	p := &lu.pr
	p.mu.Lock()
	if s := p.load(); s.spc2 != "" && s.spc2 == n.key {
		next := s.clone()
		next.spc2 = ""
		p.snap.Store(next)
	}
	p.mu.Unlock()
	e.good(t, 0, 0)
}

// The APTPL state file (Config.PRStateFile) is JSON:
//
//	{
//	  "version": 1,
//	  "generation": 7,
//	  "registrations": [
//	    {"transport_id": "0400…", "rel_port": 1, "key": 4660}
//	  ],
//	  "reservation": {"transport_id": "0400…", "rel_port": 1, "type": 1}
//	}
//
// transport_id is the initiator's TransportID in hex, rel_port the
// relative target port, key the reservation key; "reservation" is absent
// when there is none, and for the all registrants types names the I_T
// nexus that reserved. It exists only while APTPL is in effect: written
// (temporary file, fsync, rename, fsync of the directory) after every
// change, removed when a REGISTER with APTPL=0 turns it off.
const prFileVersion = 1

type prFile struct {
	Version       int         `json:"version"`
	Generation    uint32      `json:"generation"`
	Registrations []prFileReg `json:"registrations"`
	Reservation   *prFileRes  `json:"reservation,omitempty"`
}

type prFileReg struct {
	TransportID string `json:"transport_id"`
	RelPort     uint16 `json:"rel_port"`
	Key         uint64 `json:"key"`
}

type prFileRes struct {
	TransportID string `json:"transport_id"`
	RelPort     uint16 `json:"rel_port"`
	Type        uint8  `json:"type"`
}

func splitNexus(k string) (string, uint16) {
	return hex.EncodeToString([]byte(k[:len(k)-2])), binary.BigEndian.Uint16([]byte(k[len(k)-2:]))
}

func joinNexus(tid string, port uint16) (string, error) {
	b, err := hex.DecodeString(tid)
	if err != nil {
		return "", fmt.Errorf("transport_id %q: %w", tid, err)
	}
	if len(b) == 0 || len(b) > 256 {
		return "", fmt.Errorf("transport_id of %d bytes", len(b))
	}
	if port == 0 {
		return "", errors.New("relative target port 0")
	}
	return string(binary.BigEndian.AppendUint16(b, port)), nil
}

// prSave makes the state file follow the change from old to next: written
// while APTPL is in effect, removed when it goes off.
func (lu *LU) prSave(old, next *prSnap) error {
	path := lu.cfg.PRStateFile
	if path == "" {
		return nil
	}
	if !next.aptpl {
		if !old.aptpl {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	f := prFile{Version: prFileVersion, Generation: next.gen, Registrations: []prFileReg{}}
	for _, r := range next.regs {
		tid, port := splitNexus(r.nexus)
		f.Registrations = append(f.Registrations, prFileReg{tid, port, r.key})
	}
	if next.typ != 0 {
		tid, port := splitNexus(next.holder)
		f.Reservation = &prFileRes{tid, port, next.typ}
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(path, append(data, '\n'))
}

// writeFileSync replaces path with data atomically and durably.
func writeFileSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		_ = os.Remove(name)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; not every file system can
		_ = d.Close()
	}
	return nil
}

// prLoad reads the APTPL state file, if there is one.
func (lu *LU) prLoad(path string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reservation state: %w", err)
	}
	s, err := parsePRFile(data)
	if err != nil {
		return fmt.Errorf("reservation state %s: %w", path, err)
	}
	lu.pr.snap.Store(s)
	return nil
}

func parsePRFile(data []byte) (*prSnap, error) {
	var f prFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Version != prFileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, prFileVersion)
	}
	if len(f.Registrations) > prMaxRegs {
		return nil, fmt.Errorf("%d registrations, at most %d", len(f.Registrations), prMaxRegs)
	}
	s := &prSnap{gen: f.Generation, aptpl: true}
	for _, r := range f.Registrations {
		k, err := joinNexus(r.TransportID, r.RelPort)
		if err != nil {
			return nil, err
		}
		if r.Key == 0 {
			return nil, errors.New("registration with key 0")
		}
		if s.find(k) >= 0 {
			return nil, fmt.Errorf("I_T nexus %s/%d registered twice", r.TransportID, r.RelPort)
		}
		s.regs = append(s.regs, prReg{nexus: k, key: r.Key})
	}
	if r := f.Reservation; r != nil {
		k, err := joinNexus(r.TransportID, r.RelPort)
		if err != nil {
			return nil, err
		}
		if !prValidType(r.Type) {
			return nil, fmt.Errorf("reservation type %d", r.Type)
		}
		if s.find(k) < 0 {
			return nil, errors.New("reservation holder is not registered")
		}
		s.typ, s.holder = r.Type, k
	}
	return s, nil
}
