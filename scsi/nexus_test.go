package scsi_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/usrpt/usrpt/ioengine/null"
	"github.com/usrpt/usrpt/scsi"
)

var (
	cdbTUR        = []byte{0x00, 0, 0, 0, 0, 0}
	cdbReportLUNs = []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}
)

// tur sends TEST UNIT READY to lun through n and returns the task.
func tur(t *testing.T, e *scsi.Executor, n *scsi.Nexus, l uint16) *scsi.Task {
	t.Helper()
	task := &scsi.Task{Nexus: n, LUN: lun(l), CDB: cdbTUR}
	run(t, e, task)
	return task
}

// wantUA checks task ended in UNIT ATTENTION with asc/ascq.
func wantUA(t *testing.T, task *scsi.Task, ascq uint16) {
	t.Helper()
	if task.Status != scsi.StatusCheckCondition {
		t.Fatalf("%v, want CHECK CONDITION / UNIT ATTENTION %04x", task.Status, ascq)
	}
	if k, a := senseOf(t, task); k != scsi.KeyUnitAttention || a != ascq {
		t.Fatalf("sense %v %04x, want UNIT ATTENTION %04x", k, a, ascq)
	}
}

func TestUnitAttentionLifecycle(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	e, err := scsi.NewExecutor(8)
	if err != nil {
		t.Fatal(err)
	}
	attach(t, e, lu, d, 8)
	a := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	b := newNexus(t, 2, scsi.Mapping{LUN: 0, LU: lu})
	if a.Pending(0) != scsi.UAPowerOnReset || lu.Nexuses() != 2 {
		t.Fatalf("new nexus: pending %b, LU sees %d nexuses", a.Pending(0), lu.Nexuses())
	}

	// INQUIRY neither reports nor clears it.
	inq := &scsi.Task{Nexus: a, CDB: []byte{0x12, 0, 0, 0, 36, 0}, Data: make([]byte, 36), DataLen: 36}
	run(t, e, inq)
	if inq.Status != scsi.StatusGood || a.Pending(0) != scsi.UAPowerOnReset {
		t.Fatalf("INQUIRY: %v, pending %b", inq.Status, a.Pending(0))
	}
	// The first other command reports it, the next is GOOD.
	wantUA(t, tur(t, e, a, 0), 0x2900)
	if task := tur(t, e, a, 0); task.Status != scsi.StatusGood {
		t.Fatalf("second TUR: %v", task.Status)
	}
	// REQUEST SENSE returns it as data, with GOOD, and clears it.
	rs := &scsi.Task{Nexus: b, CDB: []byte{0x03, 0, 0, 0, 252, 0}, Data: make([]byte, 252), DataLen: 252}
	run(t, e, rs)
	if k, asc, ascq, ok := scsi.ParseSense(rs.Data[:rs.Xfer]); rs.Status != scsi.StatusGood || !ok || k != scsi.KeyUnitAttention || asc != 0x29 || ascq != 0 {
		t.Fatalf("REQUEST SENSE: %v % x", rs.Status, rs.Data[:rs.Xfer])
	}
	run(t, e, rs)
	if k, _, _, _ := scsi.ParseSense(rs.Data[:rs.Xfer]); k != scsi.KeyNoSense {
		t.Fatalf("second REQUEST SENSE: key %v", k)
	}

	// Resize: every nexus gets CAPACITY DATA HAS CHANGED, once.
	if err := lu.Resize(lu.Blocks() / 2); err != nil {
		t.Fatal(err)
	}
	if err := lu.Resize(lu.Blocks() * 4); !errors.Is(err, scsi.ErrConfig) {
		t.Fatalf("resize past the engine: %v", err)
	}
	for _, n := range []*scsi.Nexus{a, b} {
		wantUA(t, tur(t, e, n, 0), 0x2A09)
		if task := tur(t, e, n, 0); task.Status != scsi.StatusGood {
			t.Fatalf("after the capacity UA: %v", task.Status)
		}
	}
	rc := &scsi.Task{Nexus: a, CDB: []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Data: make([]byte, 8), DataLen: 8}
	run(t, e, rc)
	if last := binary.BigEndian.Uint32(rc.Data); uint64(last) != lu.Blocks()-1 {
		t.Fatalf("READ CAPACITY after resize: last LBA %d, want %d", last, lu.Blocks()-1)
	}
	beyond := &scsi.Task{Nexus: a, CDB: rw16(0x88, lu.Blocks(), 1, false), Data: make([]byte, 512), DataLen: 512}
	run(t, e, beyond)
	if k, asc := senseOf(t, beyond); k != scsi.KeyIllegalRequest || asc != 0x2100 {
		t.Fatalf("read past the new capacity: %v %04x", k, asc)
	}

	// Priority: the lowest condition first, each once.
	a.Establish(scsi.UALUNsChanged | scsi.UAModeChanged)
	wantUA(t, tur(t, e, a, 0), 0x2A01)
	wantUA(t, tur(t, e, a, 0), 0x3F0E)
	if task := tur(t, e, a, 0); task.Status != scsi.StatusGood {
		t.Fatalf("after both: %v", task.Status)
	}
	// LU.Establish skips the nexus named.
	lu.Establish(scsi.UAModeChanged, a)
	if a.Pending(0) != 0 || b.Pending(0) != scsi.UAModeChanged {
		t.Fatalf("Establish skipping a: a %b, b %b", a.Pending(0), b.Pending(0))
	}
	b.Close()
	b.Close() // twice is harmless
	if lu.Nexuses() != 1 {
		t.Fatalf("after Close the LU sees %d nexuses", lu.Nexuses())
	}
}

func TestLUNMapChanges(t *testing.T) {
	d, err := null.Open(1<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	lu0, lu1 := luOn(t, d, nil), luOn(t, d, func(c *scsi.Config) { c.Serial = "other" })
	e, _ := scsi.NewExecutor(4)
	attach(t, e, lu0, d, 4)
	attach(t, e, lu1, d, 4)
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu0})
	clearUA(t, e, n, 0)

	if err := n.SetLUNs([]scsi.Mapping{{LUN: 0, LU: lu0}, {LUN: 1, LU: lu1}}); err != nil {
		t.Fatal(err)
	}
	// The new LUN starts with POWER ON; the old one learns the map changed
	// and REPORT LUNS (which runs despite it) clears that.
	wantUA(t, tur(t, e, n, 1), 0x2900)
	rl := &scsi.Task{Nexus: n, CDB: cdbReportLUNs, Data: make([]byte, 256), DataLen: 256}
	run(t, e, rl)
	if rl.Status != scsi.StatusGood || binary.BigEndian.Uint32(rl.Data) != 16 {
		t.Fatalf("REPORT LUNS: %v, list length %d", rl.Status, binary.BigEndian.Uint32(rl.Data))
	}
	if task := tur(t, e, n, 0); task.Status != scsi.StatusGood {
		t.Fatalf("LUN 0 after REPORT LUNS: %v %v", task.Status, task.Reason)
	}
	// Removing a LUN: it is gone for the nexus, and the LU lets the nexus go.
	if err := n.SetLUNs([]scsi.Mapping{{LUN: 1, LU: lu1}}); err != nil {
		t.Fatal(err)
	}
	if lu0.Nexuses() != 0 || lu1.Nexuses() != 1 {
		t.Fatalf("nexuses: lu0 %d, lu1 %d", lu0.Nexuses(), lu1.Nexuses())
	}
	if task := tur(t, e, n, 0); task.Reason != scsi.ReasonLUNotSupported {
		t.Fatalf("removed LUN: %v %v", task.Status, task.Reason)
	}
	wantUA(t, tur(t, e, n, 1), 0x3F0E)
	for _, bad := range [][]scsi.Mapping{{{LUN: 0}}, {{LUN: 16384, LU: lu0}}, {{LUN: 3, LU: lu0}, {LUN: 3, LU: lu1}}} {
		if err := n.SetLUNs(bad); !errors.Is(err, scsi.ErrNexus) {
			t.Errorf("SetLUNs(%v): %v", bad, err)
		}
	}
	n.Close()
	if err := n.SetLUNs(nil); !errors.Is(err, scsi.ErrNexus) {
		t.Errorf("SetLUNs after Close: %v", err)
	}
	// An LU mapped by a nexus but not attached to this executor.
	other := luOn(t, d, func(c *scsi.Config) { c.Serial = "third" })
	m := newNexus(t, 2, scsi.Mapping{LUN: 0, LU: other})
	wantUA(t, tur(t, e, m, 0), 0x2900)
	if task := tur(t, e, m, 0); task.Reason != scsi.ReasonNotReady {
		t.Errorf("unattached LU: %v %v", task.Status, task.Reason)
	}
}

func TestNewNexusRejects(t *testing.T) {
	for name, cfg := range map[string]scsi.NexusConfig{
		"no TransportID":   {RelPort: 1},
		"huge TransportID": {TransportID: make([]byte, 300), RelPort: 1},
		"port 0":           {TransportID: testTID(1)},
	} {
		if _, err := scsi.NewNexus(cfg); !errors.Is(err, scsi.ErrNexus) {
			t.Errorf("%s: %v", name, err)
		}
	}
	tid := scsi.SRPTransportID([16]byte{15: 9})
	if len(tid) != 24 || tid[0] != 4 || tid[23] != 9 {
		t.Errorf("SRP TransportID % x", tid)
	}
}

// TestWellKnownLUN covers the REPORT LUNS well-known LUN (SPC-4 8.2) and
// SELECT REPORT.
func TestWellKnownLUN(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	e := newExec(t, lu, d, 4)
	const wlun = 0xC101_0000_0000_0000
	for _, tc := range []struct {
		sel  byte
		want []uint64
	}{
		{0, []uint64{0}},
		{1, []uint64{wlun}},
		{2, []uint64{0, wlun}},
	} {
		cdb := append([]byte(nil), cdbReportLUNs...)
		cdb[2] = tc.sel
		task := &scsi.Task{LUN: wlun, CDB: cdb, Data: make([]byte, 64), DataLen: 64}
		run(t, e, task)
		if task.Status != scsi.StatusGood || int(binary.BigEndian.Uint32(task.Data)) != 8*len(tc.want) {
			t.Fatalf("SELECT REPORT %d: %v, % x", tc.sel, task.Status, task.Data[:task.Xfer])
		}
		for i, w := range tc.want {
			if got := binary.BigEndian.Uint64(task.Data[8+8*i:]); got != w {
				t.Errorf("SELECT REPORT %d entry %d: %x, want %x", tc.sel, i, got, w)
			}
		}
	}
	inq := &scsi.Task{LUN: wlun, CDB: []byte{0x12, 0, 0, 0, 36, 0}, Data: make([]byte, 36), DataLen: 36}
	run(t, e, inq)
	if inq.Status != scsi.StatusGood || inq.Data[0] != 0x1E {
		t.Errorf("INQUIRY of the well-known LUN: %v, byte 0 %#x", inq.Status, inq.Data[0])
	}
	if task := (&scsi.Task{LUN: wlun, CDB: cdbTUR}); true {
		run(t, e, task)
		if task.Status != scsi.StatusGood {
			t.Errorf("TUR of the well-known LUN: %v", task.Status)
		}
	}
	rd := &scsi.Task{LUN: wlun, CDB: rw16(0x88, 0, 1, false), Data: make([]byte, 512), DataLen: 512}
	run(t, e, rd)
	if rd.Reason != scsi.ReasonLUNotSupported {
		t.Errorf("READ of the well-known LUN: %v", rd.Reason)
	}
}

// TestUnitAttentionTakenOnce races two executors (two reactors of one
// multichannel nexus) for one unit attention: exactly one reports it.
func TestUnitAttentionTakenOnce(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	e1, _ := scsi.NewExecutor(4)
	e2, _ := scsi.NewExecutor(4)
	attach(t, e1, lu, d, 4)
	attach(t, e2, lu, d, 4)
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	clearUA(t, e1, n, 0)
	for round := 0; round < 200; round++ {
		n.Establish(scsi.UACapacityChanged)
		var got [2]scsi.Status
		var wg sync.WaitGroup
		for i, e := range []*scsi.Executor{e1, e2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				task := &scsi.Task{Nexus: n, CDB: cdbTUR}
				e.Start(task)
				var out [1]*scsi.Task
				for e.Poll(out[:]) == 0 {
				}
				got[i] = task.Status
			}()
		}
		wg.Wait()
		if ua := b2i(got[0] == scsi.StatusCheckCondition) + b2i(got[1] == scsi.StatusCheckCondition); ua != 1 || n.Pending(0) != 0 {
			t.Fatalf("round %d: %d reactors reported the unit attention (%v)", round, ua, got)
		}
	}
}
