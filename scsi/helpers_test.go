package scsi_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/scsi"
)

var update = flag.Bool("update", false, "rewrite scsi/testdata/*.golden")

// golden compares got with testdata/name.golden, a hex dump; -update
// rewrites the file (then review it against the spec).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	dump := []byte(hex.Dump(got))
	if *update {
		if err := os.WriteFile(path, dump, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./scsi -update)", err)
	}
	if !bytes.Equal(dump, want) {
		t.Errorf("%s differs from %s:\ngot:\n%swant:\n%s", name, path, dump, want)
	}
}

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

// newExec makes an executor with lu at LUN 0 on a queue of d.
func newExec(t testing.TB, lu *scsi.LU, d ioengine.Device, depth int) *scsi.Executor {
	t.Helper()
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	e, err := scsi.NewExecutor([]scsi.Attached{{LUN: 0, LU: lu, Queue: q}}, depth)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run starts t and polls until it is back; it fails if anything else comes
// back or the task never does.
func run(tb testing.TB, e *scsi.Executor, t *scsi.Task) {
	tb.Helper()
	e.Start(t)
	var out [4]*scsi.Task
	for i := 0; i < 1_000_000; i++ {
		n := e.Poll(out[:])
		if n == 0 {
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
