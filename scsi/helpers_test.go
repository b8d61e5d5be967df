package scsi_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	goldenfile "github.com/usrpt/usrpt/internal/golden"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/scsi"
)

// golden compares got with testdata/name.golden (internal/golden; -update
// rewrites the files, then review them against the spec).
func golden(t *testing.T, name string, got []byte) { t.Helper(); goldenfile.Check(t, name, got) }

const testSerial = "usrpt-0001"

// memLU is a 4 MiB RAM-disk LU with the test serial; mod edits the config.
func memLU(t testing.TB, bs int, mod func(*scsi.Config)) (*scsi.LU, ioengine.Device) {
	t.Helper()
	d, err := mem.Open(4<<20, bs)
	if err != nil {
		t.Skipf("mem: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return luOn(t, d, mod), d
}

func luOn(t testing.TB, d ioengine.Device, mod func(*scsi.Config)) *scsi.LU {
	t.Helper()
	cfg := scsi.Config{Engine: d, Serial: testSerial, Vendor: "USRPT", Product: "test disk", Revision: "0.1"}
	if mod != nil {
		mod(&cfg)
	}
	lu, err := scsi.NewLU(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lu
}

// nexusOf is the nexus newExec made for an executor; run and start use it
// for tasks that name none.
var nexusOf sync.Map // *scsi.Executor → *scsi.Nexus

// testTID is the SRP TransportID of the test initiator.
func testTID(b byte) []byte {
	var id [16]byte
	id[15] = b
	return scsi.SRPTransportID(id)
}

// newExec makes an executor with lu attached on a queue of d, and a nexus
// that sees lu at LUN 0, its POWER ON unit attention already taken.
func newExec(t testing.TB, lu *scsi.LU, d ioengine.Device, depth int) *scsi.Executor {
	t.Helper()
	e, err := scsi.NewExecutor(depth)
	if err != nil {
		t.Fatal(err)
	}
	attach(t, e, lu, d, depth)
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	clearUA(t, e, n, 0)
	nexusOf.Store(e, n)
	return e
}

// attach opens a queue of d and attaches lu to e through it.
func attach(t testing.TB, e *scsi.Executor, lu *scsi.LU, d ioengine.Device, depth int) {
	t.Helper()
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	if err := e.Attach(lu, q); err != nil {
		t.Fatal(err)
	}
}

// newNexus makes a nexus for initiator id on port 1, closed at cleanup.
func newNexus(t testing.TB, id byte, m ...scsi.Mapping) *scsi.Nexus {
	t.Helper()
	n, err := scsi.NewNexus(scsi.NexusConfig{TransportID: testTID(id), RelPort: 1, LUNs: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// clearUA sends TEST UNIT READY to lun through n until it is GOOD, taking
// the unit attentions a new nexus starts with.
func clearUA(t testing.TB, e *scsi.Executor, n *scsi.Nexus, l uint16) {
	t.Helper()
	for i := 0; i < 16; i++ {
		tur := &scsi.Task{Nexus: n, LUN: lun(l), CDB: make([]byte, 6)}
		run(t, e, tur)
		if tur.Status == scsi.StatusGood {
			return
		}
	}
	t.Fatalf("LUN %d never ready", l)
}

// start is e.Start with the executor's test nexus filled in.
func start(e *scsi.Executor, t *scsi.Task) {
	if t.Nexus == nil {
		n, _ := nexusOf.Load(e)
		t.Nexus = n.(*scsi.Nexus)
	}
	e.Start(t)
}

// run starts t and polls until it is back; it fails if anything else comes
// back or the task never does.
func run(tb testing.TB, e *scsi.Executor, t *scsi.Task) {
	tb.Helper()
	start(e, t)
	var out [4]*scsi.Task
	began := time.Now()
	for i := 0; ; i++ {
		n := e.Poll(out[:])
		if n == 0 {
			// Engines with worker threads (psync) need the CPU too; give
			// up only after a generous wall-clock time, not a poll count.
			if i&4095 == 4095 {
				if time.Since(began) > 30*time.Second {
					break
				}
				runtime.Gosched()
			}
			continue
		}
		if n != 1 || out[0] != t {
			tb.Fatalf("Poll returned %d tasks, want just ours", n)
		}
		return
	}
	tb.Fatalf("task %x never completed", t.CDB)
}

func lun(n uint16) uint64 { l, _ := scsi.EncodeLUN(n); return l }

// senseOf is the sense key and ASC/ASCQ of a completed task.
func senseOf(t *testing.T, task *scsi.Task) (scsi.Key, uint16) {
	t.Helper()
	k, asc, ascq, ok := scsi.ParseSense(task.Sense[:task.SenseLen])
	if !ok {
		t.Fatalf("sense % x does not parse", task.Sense[:task.SenseLen])
	}
	return k, uint16(asc)<<8 | uint16(ascq)
}
