package target

import (
	"bytes"
	"testing"

	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
)

func TestLoginAndIO(t *testing.T) {
	r := newRig(t)
	c := r.login(1)
	if c.rsp.ReqLimDelta != DefaultCredits || c.rsp.MaxITIULen != DefaultMaxITIULen || c.rsp.MaxTIIULen != DefaultMaxTIIULen {
		t.Fatalf("LOGIN_RSP %+v", c.rsp)
	}
	if c.rsp.Flags&srp.LoginImmSupp == 0 {
		t.Fatal("immediate data not granted")
	}
	// Write 8 KiB by RDMA READ (direct), read it back (direct).
	for i := range 8192 {
		c.data[i] = byte(i*7 + 1)
	}
	rsp := c.do(1, rw16(true, 8, 16), direct(c.desc(0, 8192)), srp.DataBuf{})
	if rsp.Status != 0 {
		t.Fatalf("write: status %#x sense %x", rsp.Status, rsp.Sense)
	}
	rsp = c.do(2, rw16(false, 8, 16), srp.DataBuf{}, direct(c.desc(65536, 8192)))
	if rsp.Status != 0 || rsp.Flags != 0 {
		t.Fatalf("read: %+v", rsp)
	}
	if !bytes.Equal(c.data[65536:65536+8192], c.data[:8192]) {
		t.Fatal("read back differs")
	}
	// Immediate data, then an indirect read split over three segments.
	imm := bytes.Repeat([]byte{0xA5}, 4096)
	rsp = c.do(3, rw16(true, 100, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: imm}, srp.DataBuf{})
	if rsp.Status != 0 {
		t.Fatalf("immediate write: %+v", rsp)
	}
	clear(c.data[1<<20 : 1<<20+8192])
	rsp = c.do(4, rw16(false, 100, 8), srp.DataBuf{}, indirect(c.desc(1<<20, 1000), c.desc(1<<20+4096, 3000), c.desc(1<<20+8000, 96)))
	if rsp.Status != 0 {
		t.Fatalf("indirect read: %+v", rsp)
	}
	got := append(append(append([]byte{}, c.data[1<<20:1<<20+1000]...), c.data[1<<20+4096:1<<20+7096]...), c.data[1<<20+8000:1<<20+8096]...)
	if !bytes.Equal(got, imm) {
		t.Fatal("indirect read differs")
	}
	// Residual: a 4 KiB read into an 8 KiB buffer is DIUNDER 4096.
	rsp = c.do(5, rw16(false, 0, 8), srp.DataBuf{}, direct(c.desc(0, 8192)))
	if rsp.Flags&srp.DIUnder == 0 || rsp.DataInResCnt != 4096 {
		t.Fatalf("residual: %+v", rsp)
	}
	// Out of range: CHECK CONDITION, LBA OUT OF RANGE.
	rsp = c.do(6, rw16(false, rigLUBytes/512, 1), srp.DataBuf{}, direct(c.desc(0, 512)))
	if k, asc, _ := senseKey(rsp); rsp.Status != uint8(scsi.StatusCheckCondition) || k != scsi.KeyIllegalRequest || asc != 0x21 {
		t.Fatalf("out of range: %+v", rsp)
	}
	st := r.tgt.Stats()
	if st.Logins != 1 || st.Total.Commands < 6 || st.LUNs[0].Commands < 6 {
		t.Fatalf("stats %+v", st)
	}
}
