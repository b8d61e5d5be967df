package scsi_test

import (
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/scsi"
)

// FuzzDecodeExecute feeds random CDBs, LUNs and expected lengths through
// an Executor over a small mem LU whose engine fails now and then. Every
// task must come back exactly once, never with more data than expected,
// and a CHECK CONDITION must carry sense that parses with a key other than
// NO SENSE.
func FuzzDecodeExecute(f *testing.F) {
	for _, c := range cdbCases() {
		f.Add(c.cdb, c.lun, uint16(c.dataLen), uint8(0))
	}
	f.Add([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint64(0), uint16(0), uint8(2))
	f.Add(rw16(0x8A, 1, 1, true), uint64(0), uint16(512), uint8(0x80|1<<3))
	f.Add(rw16(0x8A, 1, 1, true), uint64(0), uint16(512), uint8(0x80|4<<3))

	md, err := mem.Open(1<<20, 512)
	if err != nil {
		f.Skip(err)
	}
	d := faulty.Wrap(md,
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Every: 7, Errno: syscall.EIO},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Every: 5, Short: true, Delay: 1})
	f.Cleanup(func() { _ = d.Close() })
	lu := luOn(f, d, func(c *scsi.Config) { c.WriteCache = true; c.MaxTransferBytes = 64 << 10 })
	e := newExec(f, lu, d, 2)
	data := make([]byte, 1<<16)
	var out [4]*scsi.Task

	// extra: bits 2-0 the task attribute (invalid ones too); bit 7 sends
	// a task management function (bits 5-3) right behind the command.
	f.Fuzz(func(t *testing.T, cdb []byte, lunField uint64, dataLen uint16, extra uint8) {
		task := &scsi.Task{LUN: lunField, CDB: cdb, Data: data[:dataLen], DataLen: int(dataLen), Attr: scsi.Attr(extra & 7), Tag: 1}
		if len(cdb) > 0 && cdb[0]&1 == 1 {
			task.LUN = 0 // reach the LU more often than chance would
		}
		start(e, task)
		var m *scsi.Task
		if extra&0x80 != 0 {
			m = &scsi.Task{TMF: scsi.TMF(extra >> 3 & 7), LUN: task.LUN, RefTag: 1}
			start(e, m)
		}
		got, gotM, mFirst := 0, 0, false
		for i := 0; i < 100 && (got == 0 || m != nil && gotM == 0); i++ {
			n := e.Poll(out[:])
			for _, o := range out[:n] {
				switch {
				case o == task:
					got++
				case o == m && m != nil:
					if got == 0 {
						mFirst = true
					}
					gotM++
				default:
					t.Fatalf("Poll returned a task not started")
				}
			}
		}
		if got != 1 || m != nil && gotM != 1 {
			t.Fatalf("task % x came back %d times, TMF %d times", cdb, got, gotM)
		}
		if task.Aborted {
			if mFirst {
				t.Fatalf("%v answered before the task it aborted", m.TMF)
			}
			if task.Status != scsi.StatusTaskAborted || task.Xfer != 0 {
				t.Fatalf("aborted task: %v, %d bytes", task.Status, task.Xfer)
			}
			return
		}
		if e.Inflight() != 0 || e.Pending() != 0 {
			t.Fatalf("after completion: %d in flight, %d pending", e.Inflight(), e.Pending())
		}
		if task.Xfer < 0 || task.Xfer > task.DataLen {
			t.Fatalf("moved %d bytes of %d expected", task.Xfer, task.DataLen)
		}
		switch task.Status {
		case scsi.StatusGood:
			if task.SenseLen != 0 {
				t.Fatalf("GOOD with sense % x", task.Sense[:task.SenseLen])
			}
		case scsi.StatusCheckCondition:
			k, _, _, ok := scsi.ParseSense(task.Sense[:task.SenseLen])
			if !ok || k == scsi.KeyNoSense || task.Xfer != 0 {
				t.Fatalf("CHECK CONDITION (%v) with sense % x, %d bytes moved", task.Reason, task.Sense[:task.SenseLen], task.Xfer)
			}
		case scsi.StatusReservationConflict:
			// RESERVE(6/10) and PERSISTENT RESERVE OUT can make it.
			if task.SenseLen != 0 || task.Xfer != 0 {
				t.Fatalf("RESERVATION CONFLICT with sense % x, %d bytes moved", task.Sense[:task.SenseLen], task.Xfer)
			}
		default:
			t.Fatalf("status %v", task.Status)
		}
	})
}
