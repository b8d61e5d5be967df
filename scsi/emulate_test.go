package scsi_test

import (
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/null"
	"github.com/usrpt/usrpt/scsi"
)

// noDiscard hides OpDiscard, for the LBP bits' other side.
type noDiscard struct{ ioengine.Device }

func (d noDiscard) Supports(op ioengine.Op) bool {
	return op != ioengine.OpDiscard && d.Device.Supports(op)
}

// TestEmulatedGolden records the bytes an initiator sees. Each golden file
// has been checked by hand against SPC-4/SBC-3 (the table each builder
// cites); a change here must be checked the same way, not just re-recorded.
func TestEmulatedGolden(t *testing.T) {
	lu, d := memLU(t, 512, func(c *scsi.Config) { c.WriteCache = true })
	e := newExec(t, lu, d, 4)
	// A second LU without discard, read-only, descriptor sense, 4096-byte
	// blocks on a null engine of 2^32+1 blocks (beyond READ CAPACITY(10)).
	nd, err := null.Open((1<<32+1)*4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nd.Close() })
	big := luOn(t, noDiscard{nd}, func(c *scsi.Config) { c.ReadOnly, c.DescriptorSense = true, true })
	eb := newExec(t, big, nd, 4)

	for _, tc := range []struct {
		name string
		e    *scsi.Executor
		cdb  []byte
	}{
		{"inquiry_std", e, []byte{0x12, 0, 0, 0, 255, 0}},
		{"inquiry_std_no_lun", e, []byte{0x12, 0, 0, 0, 255, 0}},
		{"vpd_00", e, []byte{0x12, 1, 0x00, 0, 255, 0}},
		{"vpd_80", e, []byte{0x12, 1, 0x80, 0, 255, 0}},
		{"vpd_83", e, []byte{0x12, 1, 0x83, 0, 255, 0}},
		{"vpd_b0", e, []byte{0x12, 1, 0xB0, 0, 255, 0}},
		{"vpd_b1", e, []byte{0x12, 1, 0xB1, 0, 255, 0}},
		{"vpd_b2", e, []byte{0x12, 1, 0xB2, 0, 255, 0}},
		{"vpd_b2_no_discard", eb, []byte{0x12, 1, 0xB2, 0, 255, 0}},
		{"read_capacity_10", e, []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"read_capacity_10_big", eb, []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"read_capacity_16", e, []byte{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}},
		{"read_capacity_16_big", eb, []byte{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}},
		{"mode_sense_6_all", e, []byte{0x1A, 0, 0x3F, 0, 255, 0}},
		{"mode_sense_6_all_changeable", e, []byte{0x1A, 0, 0x7F, 0, 255, 0}},
		{"mode_sense_6_all_default", e, []byte{0x1A, 0, 0xBF, 0, 255, 0}},
		{"mode_sense_6_all_ro_dsense", eb, []byte{0x1A, 0, 0x3F, 0, 255, 0}},
		{"mode_sense_6_caching", e, []byte{0x1A, 0x08, 0x08, 0, 255, 0}},
		{"mode_sense_6_control", e, []byte{0x1A, 0x08, 0x0A, 0, 255, 0}},
		{"mode_sense_6_iec", e, []byte{0x1A, 0x08, 0x1C, 0, 255, 0}},
		{"mode_sense_10_all", e, []byte{0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 255, 0}},
		{"mode_sense_10_all_llbaa", eb, []byte{0x5A, 0x10, 0x3F, 0, 0, 0, 0, 0, 255, 0}},
		{"mode_sense_10_all_dbd", e, []byte{0x5A, 0x08, 0x3F, 0, 0, 0, 0, 0, 255, 0}},
		{"request_sense", e, []byte{0x03, 0, 0, 0, 255, 0}},
		{"request_sense_no_lun", e, []byte{0x03, 1, 0, 0, 255, 0}},
		{"report_luns", e, []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}},
		{"check_condition_descriptor", eb, []byte{0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &scsi.Task{CDB: tc.cdb, Data: make([]byte, 512), DataLen: 512}
			if tc.name == "inquiry_std_no_lun" || tc.name == "request_sense_no_lun" {
				task.LUN = lun(5)
			}
			if tc.name == "check_condition_descriptor" {
				task.Data, task.DataLen = make([]byte, 4096), 4096
			}
			run(t, tc.e, task)
			if tc.name == "check_condition_descriptor" {
				if task.Status != scsi.StatusCheckCondition {
					t.Fatalf("status %v", task.Status)
				}
				golden(t, tc.name, task.Sense[:task.SenseLen])
				return
			}
			if task.Status != scsi.StatusGood {
				t.Fatalf("status %v (%v)", task.Status, task.Reason)
			}
			golden(t, tc.name, task.Data[:task.Xfer])
		})
	}
}

// TestReportLUNsMany checks the LUN list order and formats with LUNs on
// both sides of 256.
func TestReportLUNsMany(t *testing.T) {
	d, err := null.Open(1<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	lu := luOn(t, d, nil)
	var m []scsi.Mapping
	for _, n := range []uint16{300, 0, 16383, 7, 255} {
		m = append(m, scsi.Mapping{LUN: n, LU: lu})
	}
	e, err := scsi.NewExecutor(1)
	if err != nil {
		t.Fatal(err)
	}
	attach(t, e, lu, d, 1)
	nx := newNexus(t, 1, m...)
	task := &scsi.Task{Nexus: nx, LUN: lun(300), CDB: []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, Data: make([]byte, 256), DataLen: 256}
	run(t, e, task)
	want := []byte{0, 0, 0, 40, 0, 0, 0, 0,
		0x00, 0, 0, 0, 0, 0, 0, 0,
		0x00, 7, 0, 0, 0, 0, 0, 0,
		0x00, 255, 0, 0, 0, 0, 0, 0,
		0x41, 0x2C, 0, 0, 0, 0, 0, 0,
		0x7F, 0xFF, 0, 0, 0, 0, 0, 0}
	if string(task.Data[:task.Xfer]) != string(want) {
		t.Errorf("REPORT LUNS\n% x\nwant\n% x", task.Data[:task.Xfer], want)
	}
	if _, err := scsi.NewNexus(scsi.NexusConfig{TransportID: testTID(2), RelPort: 1, LUNs: append(m, m[0])}); err == nil {
		t.Error("NewNexus accepted a LUN twice")
	}
}
