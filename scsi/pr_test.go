package scsi_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/scsi"
)

// PERSISTENT RESERVE OUT service actions and types, as on the wire.
const (
	saRegister       = 0x00
	saReserve        = 0x01
	saRelease        = 0x02
	saClear          = 0x03
	saPreempt        = 0x04
	saPreemptAbort   = 0x05
	saRegisterIgnore = 0x06
	saRegisterMove   = 0x07

	typWE   = 1
	typEA   = 3
	typWERO = 5
	typEARO = 6
	typWEAR = 7
	typEAAR = 8
)

// prEnv is one LU at LUN 0 of an Executor, seen by three initiators.
type prEnv struct {
	t  *testing.T
	e  *scsi.Executor
	lu *scsi.LU
	d  ioengine.Device
	n  [4]*scsi.Nexus // 1, 2, 3
}

func newPREnv(t *testing.T, mod func(*scsi.Config)) *prEnv {
	t.Helper()
	lu, d := memLU(t, 512, mod)
	return prEnvOn(t, lu, d)
}

func prEnvOn(t *testing.T, lu *scsi.LU, d ioengine.Device) *prEnv {
	t.Helper()
	e, err := scsi.NewExecutor(8)
	if err != nil {
		t.Fatal(err)
	}
	attach(t, e, lu, d, 8)
	p := &prEnv{t: t, e: e, lu: lu, d: d}
	for i := 1; i <= 3; i++ {
		p.n[i] = newNexus(t, byte(i), scsi.Mapping{LUN: 0, LU: lu})
		clearUA(t, e, p.n[i], 0)
	}
	return p
}

func (p *prEnv) do(n *scsi.Nexus, cdb []byte, data []byte, dataLen int) *scsi.Task {
	p.t.Helper()
	if data == nil {
		data = make([]byte, dataLen)
	}
	task := &scsi.Task{Nexus: n, LUN: lun(0), CDB: cdb, Data: data, DataLen: dataLen}
	run(p.t, p.e, task)
	return task
}

func prOutCDB(sa, scopeType byte, paramLen uint32) []byte {
	c := []byte{0x5F, sa, scopeType, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(c[5:], paramLen)
	return c
}

func prParams(key, sak uint64, flags byte) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], key)
	binary.BigEndian.PutUint64(b[8:], sak)
	b[20] = flags
	return b
}

// out sends PERSISTENT RESERVE OUT.
func (p *prEnv) out(n *scsi.Nexus, sa, typ byte, key, sak uint64, aptpl bool) *scsi.Task {
	p.t.Helper()
	var f byte
	if aptpl {
		f = 1
	}
	return p.do(n, prOutCDB(sa, typ, 24), prParams(key, sak, f), 24)
}

// in sends PERSISTENT RESERVE IN with an allocation length of alloc.
func (p *prEnv) in(n *scsi.Nexus, sa byte, alloc int) *scsi.Task {
	p.t.Helper()
	c := []byte{0x5E, sa, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(c[7:], uint16(alloc))
	return p.do(n, c, nil, alloc)
}

// must fails the test unless task ended with status st.
func (p *prEnv) must(task *scsi.Task, st scsi.Status, what string) {
	p.t.Helper()
	if task.Status != st {
		p.t.Fatalf("%s: %v (%v), want %v", what, task.Status, task.Reason, st)
	}
}

func (p *prEnv) mustFail(task *scsi.Task, r scsi.Reason, what string) {
	p.t.Helper()
	if task.Status != scsi.StatusCheckCondition || task.Reason != r {
		p.t.Fatalf("%s: %v (%v), want CHECK CONDITION (%v)", what, task.Status, task.Reason, r)
	}
}

// ok runs a PERSISTENT RESERVE OUT that must be GOOD.
func (p *prEnv) ok(n *scsi.Nexus, sa, typ byte, key, sak uint64) {
	p.t.Helper()
	p.must(p.out(n, sa, typ, key, sak, false), scsi.StatusGood, "PR OUT")
}

// keys is READ KEYS: the generation and the keys.
func (p *prEnv) keys(n *scsi.Nexus) (uint32, []uint64) {
	p.t.Helper()
	task := p.in(n, 0, 4096)
	p.must(task, scsi.StatusGood, "READ KEYS")
	b := task.Data[:task.Xfer]
	l := int(binary.BigEndian.Uint32(b[4:]))
	if l%8 != 0 || 8+l != len(b) {
		p.t.Fatalf("READ KEYS: additional length %d, %d bytes", l, len(b))
	}
	var ks []uint64
	for i := 8; i < len(b); i += 8 {
		ks = append(ks, binary.BigEndian.Uint64(b[i:]))
	}
	return binary.BigEndian.Uint32(b), ks
}

// reservation is READ RESERVATION: the key and type, type 0 for none.
func (p *prEnv) reservation(n *scsi.Nexus) (uint64, byte) {
	p.t.Helper()
	task := p.in(n, 1, 4096)
	p.must(task, scsi.StatusGood, "READ RESERVATION")
	b := task.Data[:task.Xfer]
	switch binary.BigEndian.Uint32(b[4:]) {
	case 0:
		if len(b) != 8 {
			p.t.Fatalf("READ RESERVATION: %d bytes with no reservation", len(b))
		}
		return 0, 0
	case 16:
		if len(b) != 24 || b[21]>>4 != 0 {
			p.t.Fatalf("READ RESERVATION: % x", b)
		}
		return binary.BigEndian.Uint64(b[8:]), b[21] & 0x0F
	}
	p.t.Fatalf("READ RESERVATION: % x", b)
	return 0, 0
}

func read10(op byte) []byte { return []byte{op, 0, 0, 0, 0, 0, 0, 0, 1, 0} }

func (p *prEnv) read(n *scsi.Nexus) *scsi.Task  { return p.do(n, read10(0x28), nil, 512) }
func (p *prEnv) write(n *scsi.Nexus) *scsi.Task { return p.do(n, read10(0x2A), nil, 512) }

// takeUA checks that n's next command reports exactly the unit attention
// ua (ASC/ASCQ code) and then nothing more.
func (p *prEnv) takeUA(n *scsi.Nexus, code uint16) {
	p.t.Helper()
	tur := p.do(n, make([]byte, 6), nil, 0)
	if tur.Status != scsi.StatusCheckCondition {
		p.t.Fatalf("TUR: %v, want the unit attention %04x", tur.Status, code)
	}
	k, c := senseOf(p.t, tur)
	if k != scsi.KeyUnitAttention || c != code {
		p.t.Fatalf("sense %v/%04x, want UNIT ATTENTION/%04x", k, c, code)
	}
	p.must(p.do(n, make([]byte, 6), nil, 0), scsi.StatusGood, "TUR after the unit attention")
}

func TestPRRegister(t *testing.T) {
	p := newPREnv(t, nil)
	n1, n2, n3 := p.n[1], p.n[2], p.n[3]
	if gen, ks := p.keys(n1); gen != 0 || len(ks) != 0 {
		t.Fatalf("fresh LU: generation %d, keys %x", gen, ks)
	}
	p.ok(n1, saRegister, 0, 0, 0xA)
	// REGISTER from a registered nexus with the wrong key.
	p.must(p.out(n1, saRegister, 0, 0, 0xB, false), scsi.StatusReservationConflict, "REGISTER with key 0 when registered")
	p.must(p.out(n1, saRegister, 0, 0x9, 0xB, false), scsi.StatusReservationConflict, "REGISTER with a wrong key")
	// An unregistered nexus must give key 0.
	p.must(p.out(n2, saRegister, 0, 0x9, 0xB, false), scsi.StatusReservationConflict, "REGISTER unregistered with a key")
	p.ok(n1, saRegister, 0, 0xA, 0xB) // change the key
	p.ok(n2, saRegisterIgnore, 0, 0x999, 0xC)
	p.ok(n2, saRegisterIgnore, 0, 0x0, 0xD)
	if gen, ks := p.keys(n3); gen != 4 || !equalKeys(ks, 0xB, 0xD) {
		t.Fatalf("generation %d, keys %x; want 4, [b d]", gen, ks)
	}
	p.ok(n1, saRegister, 0, 0xB, 0) // unregister
	p.ok(n3, saRegister, 0, 0, 0)   // unregistered, key 0: nothing
	p.ok(n3, saRegisterIgnore, 0, 0x5, 0)
	if gen, ks := p.keys(n3); gen != 5 || !equalKeys(ks, 0xD) {
		t.Fatalf("generation %d, keys %x; want 5, [d]", gen, ks)
	}
	// Only REGISTER is for the unregistered.
	for _, sa := range []byte{saReserve, saRelease, saClear, saPreempt} {
		p.must(p.out(n3, sa, typWE, 0, 0xD, false), scsi.StatusReservationConflict, "unregistered service action")
	}
	// A registered nexus with the wrong key is refused too.
	p.must(p.out(n2, saReserve, typWE, 0xE, 0, false), scsi.StatusReservationConflict, "RESERVE with a wrong key")
	p.must(p.out(n2, saClear, 0, 0xE, 0, false), scsi.StatusReservationConflict, "CLEAR with a wrong key")
	// RESERVE and RELEASE leave the generation alone; CLEAR counts.
	p.ok(n2, saReserve, typWE, 0xD, 0)
	p.ok(n2, saReserve, typWE, 0xD, 0) // again, same type: GOOD
	p.must(p.out(n2, saReserve, typEA, 0xD, 0, false), scsi.StatusReservationConflict, "RESERVE of another type by the holder")
	p.ok(n2, saRelease, typWE, 0xD, 0)
	if gen, _ := p.keys(n3); gen != 5 {
		t.Fatalf("generation %d after RESERVE, RELEASE; want 5", gen)
	}
	p.ok(n2, saClear, 0, 0xD, 0)
	if gen, ks := p.keys(n3); gen != 6 || len(ks) != 0 {
		t.Fatalf("after CLEAR: generation %d, keys %x", gen, ks)
	}
}

func equalKeys(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestPRTypes mirrors SPC-4 table 66 and SBC-3 table 13 for READ and
// WRITE, and for a few SPC commands: n1 holds the reservation, n2 is
// registered, n3 is not.
func TestPRTypes(t *testing.T) {
	const A, C = true, false // allowed, conflict
	type who struct{ read, write bool }
	for _, tc := range []struct {
		typ                byte
		holder, reg, other who
		modeSense          bool // MODE SENSE from n3
	}{
		{typWE, who{A, A}, who{A, C}, who{A, C}, A},
		{typEA, who{A, A}, who{C, C}, who{C, C}, C},
		{typWERO, who{A, A}, who{A, A}, who{A, C}, A},
		{typEARO, who{A, A}, who{A, A}, who{C, C}, C},
		{typWEAR, who{A, A}, who{A, A}, who{A, C}, A},
		{typEAAR, who{A, A}, who{A, A}, who{C, C}, C},
	} {
		p := newPREnv(t, nil)
		n1, n2, n3 := p.n[1], p.n[2], p.n[3]
		p.ok(n1, saRegister, 0, 0, 0x1)
		p.ok(n2, saRegister, 0, 0, 0x2)
		p.ok(n1, saReserve, tc.typ, 0x1, 0)
		key, typ := p.reservation(n3)
		wantKey := uint64(1)
		if tc.typ == typWEAR || tc.typ == typEAAR {
			wantKey = 0 // all registrants: RESERVATION KEY 0
		}
		if key != wantKey || typ != tc.typ {
			t.Fatalf("type %d: READ RESERVATION key %x type %d", tc.typ, key, typ)
		}
		for i, w := range []who{tc.holder, tc.reg, tc.other} {
			n := p.n[i+1]
			for _, c := range []struct {
				name  string
				task  *scsi.Task
				allow bool
			}{
				{"READ", p.read(n), w.read},
				{"WRITE", p.write(n), w.write},
				{"SYNCHRONIZE CACHE", p.do(n, []byte{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 0), w.write},
			} {
				got := c.task.Status != scsi.StatusReservationConflict
				if got != c.allow || c.allow && c.task.Status != scsi.StatusGood {
					t.Errorf("type %d, nexus %d: %s: %v (%v), allowed %v", tc.typ, i+1, c.name, c.task.Status, c.task.Reason, c.allow)
				}
			}
			// Always allowed: INQUIRY, TEST UNIT READY, READ CAPACITY,
			// REPORT LUNS, PERSISTENT RESERVE IN.
			for _, cdb := range [][]byte{
				{0x12, 0, 0, 0, 36, 0},
				{0x00, 0, 0, 0, 0, 0},
				{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0},
				{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0},
				{0x5E, 2, 0, 0, 0, 0, 0, 0, 8, 0},
			} {
				if task := p.do(n, cdb, nil, 64); task.Status != scsi.StatusGood {
					t.Errorf("type %d, nexus %d: %x: %v", tc.typ, i+1, cdb[0], task.Status)
				}
			}
		}
		ms := p.do(n3, []byte{0x1A, 0, 0x3F, 0, 255, 0}, nil, 255)
		if got := ms.Status != scsi.StatusReservationConflict; got != tc.modeSense {
			t.Errorf("type %d: MODE SENSE from an unregistered nexus: %v", tc.typ, ms.Status)
		}
		// The unregistered may still register, and then, under the
		// registrants types, write.
		p.ok(n3, saRegister, 0, 0, 0x3)
		w := p.write(n3)
		if want := tc.typ >= typWERO; (w.Status == scsi.StatusGood) != want {
			t.Errorf("type %d: WRITE from a new registrant: %v", tc.typ, w.Status)
		}
		// A registrant cannot take a reservation someone else holds,
		// except that under all registrants it is a holder already.
		r := p.out(n2, saReserve, tc.typ, 0x2, 0, false)
		if want := tc.typ == typWEAR || tc.typ == typEAAR; (r.Status == scsi.StatusGood) != want {
			t.Errorf("type %d: RESERVE by a registrant: %v", tc.typ, r.Status)
		}
	}
}

func TestPRRelease(t *testing.T) {
	p := newPREnv(t, nil)
	n1, n2, n3 := p.n[1], p.n[2], p.n[3]
	p.ok(n1, saRegister, 0, 0, 0x1)
	p.ok(n2, saRegister, 0, 0, 0x2)
	p.ok(n1, saReserve, typWERO, 0x1, 0)
	p.mustFail(p.out(n1, saRelease, typWE, 0x1, 0, false), scsi.ReasonInvalidReleasePR, "RELEASE of the wrong type")
	p.ok(n2, saRelease, typWERO, 0x2, 0) // not the holder: nothing
	if _, typ := p.reservation(n3); typ != typWERO {
		t.Fatalf("a registrant's RELEASE released: type %d", typ)
	}
	if n2.Pending(0) != 0 {
		t.Fatalf("unit attention %v after a no-op RELEASE", n2.Pending(0))
	}
	p.ok(n1, saRelease, typWERO, 0x1, 0)
	if _, typ := p.reservation(n3); typ != 0 {
		t.Fatalf("still reserved after RELEASE: type %d", typ)
	}
	// Registrants only: the other registrants learn of the release.
	p.takeUA(n2, 0x2A04)
	if n1.Pending(0) != 0 || n3.Pending(0) != 0 {
		t.Fatalf("unit attentions %v, %v for the releaser and the unregistered", n1.Pending(0), n3.Pending(0))
	}
	p.ok(n1, saRelease, typWERO, 0x1, 0) // nothing reserved: GOOD
	// A Write Exclusive release tells nobody.
	p.ok(n1, saReserve, typWE, 0x1, 0)
	p.ok(n1, saRelease, typWE, 0x1, 0)
	if n2.Pending(0) != 0 {
		t.Fatalf("unit attention %v after releasing Write Exclusive", n2.Pending(0))
	}
	// The holder unregistering releases a registrants only reservation
	// and tells the others.
	p.ok(n1, saReserve, typEARO, 0x1, 0)
	p.ok(n1, saRegister, 0, 0x1, 0)
	if _, typ := p.reservation(n3); typ != 0 {
		t.Fatalf("reserved after the holder unregistered: type %d", typ)
	}
	p.takeUA(n2, 0x2A04)
	// All registrants: the reservation stays while anyone is registered.
	p.ok(n1, saRegister, 0, 0, 0x1)
	p.ok(n1, saReserve, typEAAR, 0x1, 0)
	p.ok(n1, saRegister, 0, 0x1, 0)
	if _, typ := p.reservation(n3); typ != typEAAR {
		t.Fatalf("all registrants reservation gone with one registrant: type %d", typ)
	}
	p.must(p.read(n1), scsi.StatusReservationConflict, "READ by the unregistered under EA-AR")
	p.must(p.read(n2), scsi.StatusGood, "READ by a registrant under EA-AR")
	p.ok(n2, saRegister, 0, 0x2, 0)
	if _, typ := p.reservation(n3); typ != 0 {
		t.Fatalf("all registrants reservation with nobody registered: type %d", typ)
	}
}

func TestPRClear(t *testing.T) {
	p := newPREnv(t, nil)
	n1, n2, n3 := p.n[1], p.n[2], p.n[3]
	p.ok(n1, saRegister, 0, 0, 0x1)
	p.ok(n2, saRegister, 0, 0, 0x2)
	p.ok(n1, saReserve, typEA, 0x1, 0)
	gen, _ := p.keys(n3)
	p.ok(n2, saClear, 0, 0x2, 0)
	if g, ks := p.keys(n3); g != gen+1 || len(ks) != 0 {
		t.Fatalf("after CLEAR: generation %d (was %d), keys %x", g, gen, ks)
	}
	if _, typ := p.reservation(n3); typ != 0 {
		t.Fatalf("reserved after CLEAR: type %d", typ)
	}
	p.takeUA(n1, 0x2A03) // RESERVATIONS PREEMPTED
	if n2.Pending(0) != 0 || n3.Pending(0) != 0 {
		t.Fatalf("unit attentions %v, %v", n2.Pending(0), n3.Pending(0))
	}
	p.must(p.write(n3), scsi.StatusGood, "WRITE after CLEAR")
}

func TestPRPreempt(t *testing.T) {
	p := newPREnv(t, nil)
	n1, n2, n3 := p.n[1], p.n[2], p.n[3]
	p.ok(n1, saRegister, 0, 0, 0x1)
	p.ok(n2, saRegister, 0, 0, 0x2)
	p.ok(n3, saRegister, 0, 0, 0x3)
	// No reservation: PREEMPT only removes registrations.
	p.mustFail(p.out(n2, saPreempt, typWE, 0x2, 0, false), scsi.ReasonInvalidFieldParam, "PREEMPT of key 0 with no reservation")
	p.must(p.out(n2, saPreempt, typWE, 0x2, 0x77, false), scsi.StatusReservationConflict, "PREEMPT of a key nobody has")
	gen, _ := p.keys(n1)
	p.ok(n2, saPreempt, typWE, 0x2, 0x3)
	if g, ks := p.keys(n1); g != gen+1 || !equalKeys(ks, 0x1, 0x2) {
		t.Fatalf("after PREEMPT of 3: generation %d (was %d), keys %x", g, gen, ks)
	}
	if _, typ := p.reservation(n1); typ != 0 {
		t.Fatalf("PREEMPT with no reservation made one: type %d", typ)
	}
	p.takeUA(n3, 0x2A05) // REGISTRATIONS PREEMPTED
	// Preempting the holder takes the reservation, with the new type.
	p.ok(n1, saReserve, typWE, 0x1, 0)
	p.ok(n2, saPreempt, typEA, 0x2, 0x1)
	if k, typ := p.reservation(n3); k != 0x2 || typ != typEA {
		t.Fatalf("after PREEMPT: key %x type %d; want 2, EA", k, typ)
	}
	if _, ks := p.keys(n3); !equalKeys(ks, 0x2) {
		t.Fatalf("keys %x after preempting 1", ks)
	}
	// The preempted nexus hears of it, then conflicts.
	w := p.write(n1)
	if w.Status != scsi.StatusCheckCondition {
		t.Fatalf("WRITE from the preempted: %v, want its unit attention", w.Status)
	}
	if k, c := senseOf(t, w); k != scsi.KeyUnitAttention || c != 0x2A05 {
		t.Fatalf("preempted: sense %v/%04x, want REGISTRATIONS PREEMPTED", k, c)
	}
	p.must(p.read(n1), scsi.StatusReservationConflict, "READ from the preempted under EA")
	p.must(p.read(n2), scsi.StatusGood, "READ from the new holder")
	// PREEMPT AND ABORT is refused where the transport does not fan
	// fences out (see pr.go); REGISTER AND MOVE always.
	p.mustFail(p.out(n2, saPreemptAbort, typEA, 0x2, 0x2, false), scsi.ReasonInvalidFieldCDB, "PREEMPT AND ABORT")
	p.mustFail(p.out(n2, saRegisterMove, typEA, 0x2, 0x2, false), scsi.ReasonInvalidFieldCDB, "REGISTER AND MOVE")

	// All registrants: PREEMPT of key 0 removes everyone else.
	p.ok(n1, saRegister, 0, 0, 0x1)
	p.ok(n3, saRegister, 0, 0, 0x3)
	p.ok(n2, saRelease, typEA, 0x2, 0)
	p.ok(n2, saReserve, typWEAR, 0x2, 0)
	p.ok(n3, saPreempt, typWE, 0x3, 0)
	if k, typ := p.reservation(n3); k != 0x3 || typ != typWE {
		t.Fatalf("after PREEMPT of all registrants: key %x type %d; want 3, WE", k, typ)
	}
	if _, ks := p.keys(n3); !equalKeys(ks, 0x3) {
		t.Fatalf("keys %x after preempting all registrants", ks)
	}
	p.takeUA(n1, 0x2A05)
	p.takeUA(n2, 0x2A05)
	if n3.Pending(0) != 0 {
		t.Fatalf("unit attention %v for the preempting nexus", n3.Pending(0))
	}
	// The holder preempting itself changes the type; the remaining
	// registrants hear their reservation went.
	p.ok(n1, saRegister, 0, 0, 0x1)
	p.ok(n3, saPreempt, typEA, 0x3, 0x3)
	if k, typ := p.reservation(n3); k != 0x3 || typ != typEA {
		t.Fatalf("after the holder's own PREEMPT: key %x type %d; want 3, EA", k, typ)
	}
	if _, ks := p.keys(n3); !equalKeys(ks, 0x3, 0x1) {
		t.Fatalf("keys %x after the holder's own PREEMPT", ks)
	}
	p.takeUA(n1, 0x2A04)
}

// TestPRInGolden checks the PERSISTENT RESERVE IN data layouts.
func TestPRInGolden(t *testing.T) {
	p := newPREnv(t, nil)
	n1, n2 := p.n[1], p.n[2]
	p.ok(n1, saRegister, 0, 0, 0x1122334455667788)
	p.ok(n2, saRegister, 0, 0, 0xAABBCCDDEEFF0011)
	p.ok(n1, saReserve, typWERO, 0x1122334455667788, 0)
	for _, c := range []struct {
		name string
		sa   byte
	}{
		{"pr_in_read_keys", 0},
		{"pr_in_read_reservation", 1},
		{"pr_in_report_capabilities", 2},
		{"pr_in_read_full_status", 3},
	} {
		task := p.in(p.n[3], c.sa, 1024)
		p.must(task, scsi.StatusGood, c.name)
		if task.Resid != scsi.ResidUnder {
			t.Errorf("%s: resid %v", c.name, task.Resid)
		}
		golden(t, c.name, task.Data[:task.Xfer])
	}
	// With a state file, PTPL_C is set; with APTPL in effect, PTPL_A.
	q := newPREnv(t, func(c *scsi.Config) { c.PRStateFile = filepath.Join(t.TempDir(), "pr.json") })
	caps := func() byte {
		task := q.in(q.n[1], 2, 8)
		q.must(task, scsi.StatusGood, "REPORT CAPABILITIES")
		return task.Data[2]&1<<1 | task.Data[3]&1
	}
	if got := caps(); got != 0b10 {
		t.Fatalf("PTPL_C, PTPL_A = %02b, want 10", got)
	}
	q.must(q.out(q.n[1], saRegister, 0, 0, 1, true), scsi.StatusGood, "REGISTER with APTPL")
	if got := caps(); got != 0b11 {
		t.Fatalf("PTPL_C, PTPL_A = %02b, want 11", got)
	}
}

func TestPRInAllocationLength(t *testing.T) {
	p := newPREnv(t, nil)
	p.ok(p.n[1], saRegister, 0, 0, 0x1)
	p.ok(p.n[2], saRegister, 0, 0, 0x2)
	// Allocation length 12 cuts READ KEYS in the second key's first half.
	task := p.in(p.n[1], 0, 12)
	p.must(task, scsi.StatusGood, "READ KEYS")
	if task.Xfer != 12 || task.Resid != scsi.ResidNone || binary.BigEndian.Uint32(task.Data[4:]) != 16 {
		t.Fatalf("READ KEYS, 12 bytes: xfer %d resid %v, % x", task.Xfer, task.Resid, task.Data[:task.Xfer])
	}
	// An expected length shorter than the allocation length: overflow.
	c := []byte{0x5E, 3, 0, 0, 0, 0, 0, 0, 255, 0}
	task = p.do(p.n[1], c, nil, 8)
	p.must(task, scsi.StatusGood, "READ FULL STATUS")
	if task.Xfer != 8 || task.Resid != scsi.ResidOver || task.Residual != 2*48 || binary.BigEndian.Uint32(task.Data[4:]) != 2*48 {
		t.Fatalf("READ FULL STATUS into 8 bytes: xfer %d resid %v %d, % x", task.Xfer, task.Resid, task.Residual, task.Data[:task.Xfer])
	}
	// Allocation length 0: nothing, and GOOD.
	task = p.in(p.n[1], 1, 0)
	p.must(task, scsi.StatusGood, "READ RESERVATION, allocation length 0")
	if task.Xfer != 0 {
		t.Fatalf("allocation length 0 moved %d bytes", task.Xfer)
	}
}

func TestPRAPTPL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pr.json")
	mod := func(c *scsi.Config) { c.PRStateFile = path }
	p := newPREnv(t, mod)
	n1, n2 := p.n[1], p.n[2]
	p.must(p.out(n1, saRegister, 0, 0, 0xA, true), scsi.StatusGood, "REGISTER with APTPL")
	p.must(p.out(n2, saRegister, 0, 0, 0xB, true), scsi.StatusGood, "REGISTER with APTPL")
	p.ok(n1, saReserve, typEARO, 0xA, 0)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no state file: %v", err)
	}
	gen, _ := p.keys(n1)

	// A second LU on the same engine and file: a restart.
	q := prEnvOn(t, luOn(t, p.d, mod), p.d)
	if g, ks := q.keys(q.n[3]); g != gen || !equalKeys(ks, 0xA, 0xB) {
		t.Fatalf("after restart: generation %d (was %d), keys %x", g, gen, ks)
	}
	if k, typ := q.reservation(q.n[3]); k != 0xA || typ != typEARO {
		t.Fatalf("after restart: reservation key %x type %d", k, typ)
	}
	q.must(q.read(q.n[3]), scsi.StatusReservationConflict, "READ from the unregistered after restart")
	q.must(q.write(q.n[2]), scsi.StatusGood, "WRITE from a registrant after restart")
	q.ok(q.n[1], saRelease, typEARO, 0xA, 0) // the holder is the same I_T nexus
	q.takeUA(q.n[2], 0x2A04)
	full := q.in(q.n[3], 3, 1024)
	if full.Xfer != 8+2*48 || !bytes.Equal(full.Data[8+24:8+48], testTID(1)) {
		t.Fatalf("READ FULL STATUS after restart: % x", full.Data[:full.Xfer])
	}

	// The most recent APTPL wins: 0 removes the file.
	q.ok(q.n[2], saRegister, 0, 0xB, 0xC)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file after APTPL=0: %v", err)
	}
	r := prEnvOn(t, luOn(t, p.d, mod), p.d)
	if g, ks := r.keys(r.n[1]); g != 0 || len(ks) != 0 {
		t.Fatalf("after APTPL=0 and restart: generation %d, keys %x", g, ks)
	}
}

func TestPRAPTPLRefused(t *testing.T) {
	p := newPREnv(t, nil)
	task := p.out(p.n[1], saRegister, 0, 0, 0xA, true)
	p.mustFail(task, scsi.ReasonInvalidFieldParam, "APTPL without a state file")
	if s := task.Sense[15:18]; s[0] != 0x88 || s[1] != 0 || s[2] != 20 {
		t.Fatalf("field pointer % x, want byte 20 bit 0 of the parameter list", s)
	}
	if _, ks := p.keys(p.n[1]); len(ks) != 0 {
		t.Fatalf("refused REGISTER registered %x", ks)
	}
}

func TestPRStateFileCorrupt(t *testing.T) {
	d := t.TempDir()
	_, dev := memLU(t, 512, nil)
	tid := "04000000000000000000000000000000000000000000000001"
	for i, bad := range []string{
		"{",
		`{"version": 2, "generation": 0, "registrations": []}`,
		`{"version": 1, "generation": 0, "registrations": [{"transport_id": "zz", "rel_port": 1, "key": 1}]}`,
		`{"version": 1, "generation": 0, "registrations": [{"transport_id": "` + tid + `", "rel_port": 1, "key": 0}]}`,
		`{"version": 1, "generation": 0, "registrations": [], "reservation": {"transport_id": "` + tid + `", "rel_port": 1, "type": 1}}`,
	} {
		path := filepath.Join(d, "pr.json")
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := scsi.NewLU(scsi.Config{Engine: dev, Serial: testSerial, PRStateFile: path})
		if !errors.Is(err, scsi.ErrConfig) {
			t.Errorf("file %d: NewLU: %v, want ErrConfig", i, err)
		}
	}
	// A missing file is no error.
	if _, err := scsi.NewLU(scsi.Config{Engine: dev, Serial: testSerial, PRStateFile: filepath.Join(d, "none")}); err != nil {
		t.Fatal(err)
	}
}

func TestPROutChecks(t *testing.T) {
	p := newPREnv(t, nil)
	n1 := p.n[1]
	cdbBad := func(cdb []byte, field, bit int, what string) {
		t.Helper()
		task := p.do(n1, cdb, prParams(0, 1, 0), 24)
		p.mustFail(task, scsi.ReasonInvalidFieldCDB, what)
		s := task.Sense[15:18]
		if s[0]&0xC8 != 0xC8 || int(s[0]&7) != bit || int(s[2]) != field {
			t.Errorf("%s: field pointer % x, want byte %d bit %d", what, s, field, bit)
		}
	}
	cdbBad(prOutCDB(0x08, 0, 24), 1, 4, "reserved service action")
	cdbBad(prOutCDB(0x20, 0, 24), 1, 5, "reserved bit of byte 1")
	cdbBad(prOutCDB(saReserve, 0x11, 24), 2, 7, "element scope")
	cdbBad(prOutCDB(saReserve, 0x02, 24), 2, 3, "reserved type")
	cdbBad(prOutCDB(saPreempt, 0x00, 24), 2, 3, "type 0")
	c := prOutCDB(saRegister, 0, 24)
	c[4] = 1
	cdbBad(c, 4, 0, "reserved byte 4")
	cdbBad([]byte{0x5E, 4, 0, 0, 0, 0, 0, 0, 8, 0}, 1, 4, "PR IN reserved service action")
	cdbBad([]byte{0x5E, 0, 0, 1, 0, 0, 0, 0, 8, 0}, 3, 0, "PR IN reserved byte 3")
	cdbBad([]byte{0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 4, "RESERVE(10) 3RDPTY")
	cdbBad([]byte{0x57, 0x02, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 1, "RELEASE(10) LONGID")
	cdbBad([]byte{0x16, 0x01, 0, 0, 0, 0}, 1, 0, "RESERVE(6) extent")

	// REGISTER ignores SCOPE and TYPE.
	p.ok(n1, saRegister, 0x2F, 0, 0x1)
	p.ok(n1, saRegister, 0, 0x1, 0)

	param := func(data []byte, paramLen uint32, dataLen int, r scsi.Reason, field, bit int, what string) {
		t.Helper()
		task := p.do(n1, prOutCDB(saRegister, 0, paramLen), data, dataLen)
		p.mustFail(task, r, what)
		if field >= 0 {
			s := task.Sense[15:18]
			if s[0] != 0x88|byte(bit) || int(s[2]) != field {
				t.Errorf("%s: field pointer % x, want byte %d bit %d", what, s, field, bit)
			}
		}
	}
	param(make([]byte, 23), 23, 23, scsi.ReasonParamListLength, -1, 0, "23-byte parameter list")
	param(make([]byte, 32), 32, 32, scsi.ReasonParamListLength, -1, 0, "32-byte parameter list")
	param(nil, 0, 0, scsi.ReasonParamListLength, -1, 0, "no parameter list")
	param(make([]byte, 24), 24, 16, scsi.ReasonInvalidFieldIU, -1, 0, "expected length short of the parameter list")
	param(prParams(0, 1, 0x08), 24, 24, scsi.ReasonInvalidFieldParam, 20, 3, "SPEC_I_PT")
	param(append(prParams(0, 1, 0x08), make([]byte, 24)...), 48, 48, scsi.ReasonInvalidFieldParam, 20, 3, "SPEC_I_PT with TransportIDs")
	param(prParams(0, 1, 0x04), 24, 24, scsi.ReasonInvalidFieldParam, 20, 2, "ALL_TG_PT")
	param(prParams(0, 1, 0x02), 24, 24, scsi.ReasonInvalidFieldParam, 20, 1, "reserved bit 1 of byte 20")
	param(prParams(0, 1, 0x40), 24, 24, scsi.ReasonInvalidFieldParam, 20, 7, "reserved bits of byte 20")
	bad21 := prParams(0, 1, 0)
	bad21[21] = 1
	param(bad21, 24, 24, scsi.ReasonInvalidFieldParam, 21, 7, "reserved byte 21")
	if _, ks := p.keys(n1); len(ks) != 0 {
		t.Fatalf("refused REGISTERs registered %x", ks)
	}
}

func TestPRRegistrationLimit(t *testing.T) {
	p := newPREnv(t, nil)
	const limit = 128
	for i := 0; i < limit; i++ {
		n := newNexus(t, byte(10+i), scsi.Mapping{LUN: 0, LU: p.lu})
		clearUA(t, p.e, n, 0)
		p.ok(n, saRegister, 0, 0, uint64(i+1))
	}
	p.mustFail(p.out(p.n[1], saRegister, 0, 0, 0x999, false), scsi.ReasonInsufficientRegResources, "registration 129")
	// Changing a key needs no new room.
	p.ok(p.n[1], saRegister, 0, 0, 0)
}

func TestPRRelogin(t *testing.T) {
	p := newPREnv(t, nil)
	p.ok(p.n[2], saRegister, 0, 0, 0x2)
	p.ok(p.n[2], saReserve, typWE, 0x2, 0)
	p.n[2].Close()
	if k, typ := p.reservation(p.n[1]); k != 0x2 || typ != typWE {
		t.Fatalf("logout dropped the persistent reservation: key %x type %d", k, typ)
	}
	n2 := newNexus(t, 2, scsi.Mapping{LUN: 0, LU: p.lu})
	clearUA(t, p.e, n2, 0)
	p.must(p.write(n2), scsi.StatusGood, "WRITE from the holder after re-login")
	p.must(p.write(p.n[1]), scsi.StatusReservationConflict, "WRITE from another")
	p.ok(n2, saRelease, typWE, 0x2, 0)
}

func TestSPC2Reserve(t *testing.T) {
	p := newPREnv(t, nil)
	n1, n2 := p.n[1], p.n[2]
	reserve6 := []byte{0x16, 0, 0, 0, 0, 0}
	release6 := []byte{0x17, 0, 0, 0, 0, 0}
	reserve10 := []byte{0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	release10 := []byte{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	p.must(p.do(n1, reserve6, nil, 0), scsi.StatusGood, "RESERVE(6)")
	p.must(p.do(n1, reserve10, nil, 0), scsi.StatusGood, "RESERVE(10) by the holder")
	p.must(p.read(n2), scsi.StatusReservationConflict, "READ from another nexus")
	p.must(p.do(n2, make([]byte, 6), nil, 0), scsi.StatusReservationConflict, "TEST UNIT READY from another nexus")
	p.must(p.do(n2, []byte{0x12, 0, 0, 0, 36, 0}, nil, 36), scsi.StatusGood, "INQUIRY from another nexus")
	p.must(p.do(n2, []byte{0x03, 0, 0, 0, 18, 0}, nil, 18), scsi.StatusGood, "REQUEST SENSE from another nexus")
	p.must(p.do(n2, []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0}, nil, 16), scsi.StatusGood, "REPORT LUNS from another nexus")
	p.must(p.do(n2, reserve10, nil, 0), scsi.StatusReservationConflict, "RESERVE(10) from another nexus")
	p.must(p.do(n2, release6, nil, 0), scsi.StatusGood, "RELEASE(6) from another nexus")
	p.must(p.read(n2), scsi.StatusReservationConflict, "READ after another's RELEASE")
	// SPC-2 5.5.1: PERSISTENT RESERVE IN/OUT conflict, whoever sends them.
	p.must(p.in(n1, 0, 8), scsi.StatusReservationConflict, "PR IN from the holder")
	p.must(p.out(n2, saRegister, 0, 0, 1, false), scsi.StatusReservationConflict, "PR OUT from another")
	p.must(p.write(n1), scsi.StatusGood, "WRITE from the holder")
	p.must(p.do(n1, release10, nil, 0), scsi.StatusGood, "RELEASE(10)")
	p.must(p.read(n2), scsi.StatusGood, "READ after RELEASE")

	// LUN RESET releases it.
	p.must(p.do(n1, reserve6, nil, 0), scsi.StatusGood, "RESERVE(6)")
	reset := &scsi.Task{Nexus: n2, LUN: lun(0), TMF: scsi.TMFLUNReset}
	run(t, p.e, reset)
	if reset.Response != scsi.TMFComplete {
		t.Fatalf("LUN RESET: %v", reset.Response)
	}
	for _, n := range p.n[1:] {
		clearUA(t, p.e, n, 0)
	}
	p.must(p.write(n2), scsi.StatusGood, "WRITE after LUN RESET")

	// So does the holder's logout.
	p.must(p.do(n1, reserve6, nil, 0), scsi.StatusGood, "RESERVE(6)")
	p.must(p.write(n2), scsi.StatusReservationConflict, "WRITE from another nexus")
	n1.Close()
	p.must(p.write(n2), scsi.StatusGood, "WRITE after the holder's logout")

	// With a registration, RESERVE conflicts (CRH=1) but for a holder.
	p.ok(n2, saRegister, 0, 0, 0x2)
	p.must(p.do(p.n[3], reserve6, nil, 0), scsi.StatusReservationConflict, "RESERVE(6) with registrations")
	p.must(p.do(n2, reserve6, nil, 0), scsi.StatusReservationConflict, "RESERVE(6) from a registrant, no reservation")
	p.ok(n2, saReserve, typWE, 0x2, 0)
	p.must(p.do(n2, reserve6, nil, 0), scsi.StatusGood, "RESERVE(6) from the holder")
	p.must(p.do(n2, release6, nil, 0), scsi.StatusGood, "RELEASE(6) from the holder")
	if _, typ := p.reservation(p.n[3]); typ != typWE {
		t.Fatalf("RESERVE/RELEASE(6) changed the persistent reservation: type %d", typ)
	}
	p.must(p.write(p.n[3]), scsi.StatusReservationConflict, "WRITE from another under WE")
}

// TestPRZeroAllocs: the reservation check allocates nothing.
func TestPRZeroAllocs(t *testing.T) {
	p := newPREnv(t, nil)
	p.ok(p.n[1], saRegister, 0, 0, 0x1)
	p.ok(p.n[2], saRegister, 0, 0, 0x2)
	p.ok(p.n[1], saReserve, typWERO, 0x1, 0)
	buf := make([]byte, 512)
	for _, task := range []*scsi.Task{
		{Nexus: p.n[1], LUN: lun(0), CDB: read10(0x28), Data: buf, DataLen: 512},
		{Nexus: p.n[2], LUN: lun(0), CDB: read10(0x28), Data: buf, DataLen: 512},
		{Nexus: p.n[3], LUN: lun(0), CDB: read10(0x2A), Data: buf, DataLen: 512},
	} {
		run(t, p.e, task)
		if n := testing.AllocsPerRun(1000, func() { run(t, p.e, task) }); n != 0 {
			t.Errorf("%x: %v allocations per command", task.CDB[0], n)
		}
	}
}

// FuzzPROut sends random PERSISTENT RESERVE OUT commands, from one of
// three nexuses, then reads the state back: the command must complete
// once, and READ KEYS, READ RESERVATION and READ FULL STATUS must agree.
func FuzzPROut(f *testing.F) {
	f.Add(byte(0), prOutCDB(saRegister, 0, 24), prParams(0, 1, 0))
	f.Add(byte(1), prOutCDB(saRegisterIgnore, 0, 24), prParams(0, 2, 1))
	f.Add(byte(0), prOutCDB(saReserve, typWERO, 24), prParams(1, 0, 0))
	f.Add(byte(1), prOutCDB(saPreempt, typEA, 24), prParams(2, 1, 0))
	f.Add(byte(2), prOutCDB(saClear, 0, 24), prParams(3, 0, 0))
	f.Add(byte(0), prOutCDB(saRelease, typWERO, 24), prParams(1, 0, 0))
	f.Add(byte(2), prOutCDB(saRegister, 0, 48), append(prParams(0, 3, 8), make([]byte, 24)...))
	f.Add(byte(1), []byte{0x16, 0, 0, 0, 0, 0}, []byte{})
	f.Add(byte(1), []byte{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{})

	lu, d := memLU(f, 512, func(c *scsi.Config) { c.PRStateFile = filepath.Join(f.TempDir(), "pr.json") })
	e, err := scsi.NewExecutor(4)
	if err != nil {
		f.Fatal(err)
	}
	attach(f, e, lu, d, 4)
	var ns [3]*scsi.Nexus
	for i := range ns {
		ns[i] = newNexus(f, byte(i+1), scsi.Mapping{LUN: 0, LU: lu})
	}
	var out [4]*scsi.Task
	exec := func(t *testing.T, task *scsi.Task) {
		e.Start(task)
		got := 0
		for i := 0; i < 100 && got == 0; i++ {
			n := e.Poll(out[:])
			for _, o := range out[:n] {
				if o != task {
					t.Fatal("Poll returned a task not started")
				}
				got++
			}
		}
		if got != 1 {
			t.Fatalf("task % x came back %d times", task.CDB, got)
		}
	}
	pin := func(t *testing.T, n *scsi.Nexus, sa byte) []byte {
		buf := make([]byte, 8192)
		task := &scsi.Task{Nexus: n, LUN: lun(0), CDB: []byte{0x5E, sa, 0, 0, 0, 0, 0, 0x20, 0, 0}, Data: buf, DataLen: len(buf)}
		for i := 0; i < 16; i++ { // through any unit attention
			exec(t, task)
			if task.Status != scsi.StatusCheckCondition {
				break
			}
		}
		if task.Status == scsi.StatusReservationConflict {
			return nil // a RESERVE(6) reservation
		}
		if task.Status != scsi.StatusGood {
			t.Fatalf("PR IN %d: %v (%v)", sa, task.Status, task.Reason)
		}
		return buf[:task.Xfer]
	}

	f.Fuzz(func(t *testing.T, who byte, cdb []byte, param []byte) {
		if len(param) > 4096 {
			param = param[:4096]
		}
		if len(cdb) > 0 && cdb[0]&1 == 1 {
			cdb[0] = 0x5F // mostly PERSISTENT RESERVE OUT
		}
		n := ns[int(who)%len(ns)]
		task := &scsi.Task{Nexus: n, LUN: lun(0), CDB: cdb, Data: param, DataLen: len(param)}
		exec(t, task)
		switch task.Status {
		case scsi.StatusGood, scsi.StatusReservationConflict:
		case scsi.StatusCheckCondition:
			if k, _, _, ok := scsi.ParseSense(task.Sense[:task.SenseLen]); !ok || k == scsi.KeyNoSense {
				t.Fatalf("CHECK CONDITION (%v) with sense % x", task.Reason, task.Sense[:task.SenseLen])
			}
		default:
			t.Fatalf("status %v", task.Status)
		}
		keys := pin(t, ns[0], 0)
		if keys == nil {
			return
		}
		res, full := pin(t, ns[0], 1), pin(t, ns[0], 3)
		nk := int(binary.BigEndian.Uint32(keys[4:])) / 8
		if len(keys) != 8+8*nk || nk > len(ns) {
			t.Fatalf("READ KEYS % x", keys)
		}
		if g := binary.BigEndian.Uint32(res); g != binary.BigEndian.Uint32(keys) || g != binary.BigEndian.Uint32(full) {
			t.Fatalf("generations differ: % x, % x, % x", keys[:4], res[:4], full[:4])
		}
		holders, typ := 0, byte(0)
		if len(res) == 24 {
			typ = res[21]
		}
		for i, d := 0, full[8:]; i < nk; i++ {
			if len(d) < 24+24 || binary.BigEndian.Uint64(d) != binary.BigEndian.Uint64(keys[8+8*i:]) || binary.BigEndian.Uint64(d) == 0 {
				t.Fatalf("READ FULL STATUS % x against READ KEYS % x", full, keys)
			}
			if d[12]&1 != 0 {
				holders++
				if d[13] != typ {
					t.Fatalf("holder of type %d, READ RESERVATION says %d", d[13], typ)
				}
			}
			d = d[48:]
		}
		switch {
		case typ == 0 && holders != 0, typ != 0 && holders == 0,
			typ != 0 && typ != typWEAR && typ != typEAAR && holders != 1,
			(typ == typWEAR || typ == typEAAR) && holders != nk:
			t.Fatalf("type %d with %d holders of %d registrants", typ, holders, nk)
		}
	})
}

// PREEMPT AND ABORT: the preempted nexus's write, held in an engine on
// another Executor (another reactor), is aborted by the fence; the fence
// on that Executor comes back only after it; the preempted nexus then
// hears COMMANDS CLEARED BY ANOTHER INITIATOR and REGISTRATIONS PREEMPTED
// and conflicts. Without AcceptFences the service action is refused.
func TestPreemptAndAbortFence(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	slow := faulty.Wrap(d, faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Delay: 200})
	a, b := newExec(t, lu, d, 8), newExec(t, lu, slow, 8) // reactor A, reactor B (its writes take 200 polls)
	a.AcceptFences()
	b.AcceptFences()
	n1 := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu}) // the one fenced off, on B
	n2 := newNexus(t, 2, scsi.Mapping{LUN: 0, LU: lu}) // the fencer, on A
	clearUA(t, a, n2, 0)
	clearUA(t, b, n1, 0)
	pa := &prEnv{t: t, e: a, lu: lu, d: d}
	pb := &prEnv{t: t, e: b, lu: lu, d: slow}
	pb.ok(n1, saRegister, 0, 0, 0x1)
	pa.ok(n2, saRegister, 0, 0, 0x2)
	pb.ok(n1, saReserve, typWE, 0x1, 0)
	// n1 has a write in B's engine.
	w := &scsi.Task{Nexus: n1, LUN: lun(0), CDB: read10(0x2A), Data: make([]byte, 512), DataLen: 512}
	start(b, w)
	var out [4]*scsi.Task
	if n := b.Poll(out[:]); n != 0 {
		t.Fatalf("the held write came back early: %v", out[0].Status)
	}
	// PREEMPT AND ABORT from n2 on A.
	task := pa.out(n2, saPreemptAbort, typEA, 0x2, 0x1, false)
	pa.must(task, scsi.StatusGood, "PREEMPT AND ABORT")
	if task.Fence == nil {
		t.Fatal("no Fence on the finished PREEMPT AND ABORT")
	}
	if !task.Fence.Covers(n1, lun(0)) || task.Fence.Covers(n2, lun(0)) || task.Fence.Covers(n1, lun(1)) {
		t.Fatal("Covers: want n1 at LUN 0 only")
	}
	// The transport runs the fence everywhere: A has nothing of n1's.
	fa := &scsi.Task{Nexus: n2, LUN: lun(0), TMF: scsi.TMFFence, TMFLocal: true, Fence: task.Fence}
	run(t, a, fa)
	if fa.Response != scsi.TMFComplete {
		t.Fatalf("fence on A: %v", fa.Response)
	}
	fb := &scsi.Task{Nexus: n2, LUN: lun(0), TMF: scsi.TMFFence, TMFLocal: true, Fence: task.Fence}
	start(b, fb)
	// The fence comes back only after the write it aborted has left the
	// engine: the write first (aborted, no response for it), then the
	// fence.
	var got []*scsi.Task
	for polls := 0; len(got) < 2 && polls < 100000; polls++ {
		n := b.Poll(out[:])
		got = append(got, out[:n]...)
	}
	if len(got) != 2 {
		t.Fatalf("%d tasks back, want the write and the fence", len(got))
	}
	if got[0] != w || !w.Aborted || got[1] != fb || fb.Response != scsi.TMFComplete {
		t.Fatalf("order or result: %v aborted=%v, fence %v", got[0] == w, w.Aborted, fb.Response)
	}
	tur := pb.do(n1, make([]byte, 6), nil, 0)
	if k, c := senseOf(t, tur); k != scsi.KeyUnitAttention || c != 0x2F00 {
		t.Fatalf("first: %v/%04x, want COMMANDS CLEARED BY ANOTHER INITIATOR", k, c)
	}
	pb.takeUA(n1, 0x2A05) // REGISTRATIONS PREEMPTED
	pb.must(pb.write(n1), scsi.StatusReservationConflict, "WRITE from the fenced-off nexus")

	// Without AcceptFences it stays refused.
	c := newExec(t, lu, d, 8)
	pc := &prEnv{t: t, e: c, lu: lu, d: d}
	pc.mustFail(pc.out(n2, saPreemptAbort, typEA, 0x2, 0x2, false), scsi.ReasonInvalidFieldCDB, "PREEMPT AND ABORT without AcceptFences")
}
