package srp_test

import (
	"testing"

	"github.com/usrpt/usrpt/srp"
)

// The fuzz targets check, for every parser: no panic on any input, slices
// that stay inside the input, and parse → build → parse giving the same
// values where a builder exists. scripts/fuzz.sh and `make fuzz` find them
// by name.

func FuzzLoginReq(f *testing.F) {
	var r srp.LoginReq
	r.ReqITIULen, r.BufFmt, r.Flags, r.ImmDataOffset = 8260, 6, 0x81, 68
	b := make([]byte, 64)
	r.Put(b)
	f.Add(append([]byte(nil), b...), false)
	r.PutRDMA(b)
	f.Add(append([]byte(nil), b[:56]...), true)
	f.Add(make([]byte, 10), false)
	f.Fuzz(func(t *testing.T, in []byte, rdma bool) {
		parse, put := srp.ParseLoginReq, (*srp.LoginReq).Put
		if rdma {
			parse, put = srp.ParseLoginReqRDMA, (*srp.LoginReq).PutRDMA
		}
		r, err := parse(in)
		_ = srp.Summary(in, 68)
		if err != nil {
			if err.(srp.Error).Answer() != srp.AnswerLoginRej {
				t.Fatalf("%v is not a login rule", err)
			}
			return
		}
		out := make([]byte, 64)
		n := put(&r, out)
		r2, err := parse(out[:n])
		if err != nil || r2 != r {
			t.Fatalf("round trip: %+v %v, want %+v", r2, err, r)
		}
	})
}

func FuzzCmd(f *testing.F) {
	f.Add([]byte(cmdIU(64, 0x01, 0, 0).u32(60, 4096)), uint8(68))
	f.Add([]byte(cmdIU(68+16, 0x30, 0, 0).u32(48, 16)), uint8(68))
	f.Add([]byte(cmdIU(48+16+20+48, 0x02, 0, 3).u8(31, 16).indirect(64, 3, 12288, 4096, 4096, 4096)), uint8(0))
	f.Add([]byte(cmdIU(48+20+32, 0x20, 2, 0).indirect(48, 4, 16384, 4096, 4096)), uint8(0))
	f.Add([]byte(cmdIU(48+16+20+16, 0x12, 1, 1).u32(60, 100).indirect(64, 1, 200, 200)), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, immOff uint8) {
		c, err := srp.ParseCmd(in, int(immOff))
		_ = srp.Summary(in, int(immOff))
		if err != nil {
			e := err.(srp.Error)
			if e.Answer() == srp.AnswerLoginRej || e.Answer() == srp.AnswerTLogout && e.TLogout() == srp.LogoutNone {
				t.Fatalf("%v: answer %v", e, e.Answer())
			}
			return
		}
		for _, d := range []*srp.DataBuf{&c.DataOut, &c.DataIn} {
			for i := range d.NumDesc() {
				_ = d.ListDesc(i)
			}
		}
		out := make([]byte, len(in))
		n := c.Put(out, int(immOff))
		if n == 0 {
			t.Fatalf("Put failed for a parsed command %+v", c)
		}
		c2, err := srp.ParseCmd(out[:n], int(immOff))
		if err != nil || !cmdEqual(&c2, &c) {
			t.Fatalf("round trip: %+v %v\nwant %+v", c2, err, c)
		}
	})
}

func FuzzTskMgmt(f *testing.F) {
	b := make([]byte, 48)
	(&srp.TskMgmt{Tag: srp.TagOf(1 << 31), LUN: 1 << 48, Func: srp.TMFAbortTask, TaskTag: srp.TagOf(7)}).Put(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := srp.ParseTskMgmt(in)
		if err != nil {
			return
		}
		_ = m.Func.String()
		out := make([]byte, 48)
		m.Put(out)
		m2, err := srp.ParseTskMgmt(out)
		if err != nil || m2 != m {
			t.Fatalf("round trip: %+v %v, want %+v", m2, err, m)
		}
	})
}

func FuzzRsp(f *testing.F) {
	b := make([]byte, 64)
	n := srp.PutTMRsp(b, srp.TagOf(3), 1, srp.TMFFailed)
	f.Add(append([]byte(nil), b[:n]...))
	n = (&srp.Rsp{Status: 2, Flags: srp.DIUnder, DataInResCnt: 4, Sense: make([]byte, 18)}).Put(b)
	f.Add(append([]byte(nil), b[:n]...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := srp.ParseRsp(in)
		_ = srp.Summary(in, 0)
		if err != nil {
			return
		}
		out := make([]byte, len(in))
		n := r.Put(out)
		if n == 0 {
			t.Fatal("Put failed for a parsed response")
		}
		r2, err := srp.ParseRsp(out[:n])
		const valid = srp.RspValid | srp.SnsValid
		if err != nil || r2.Tag != r.Tag || r2.ReqLimDelta != r.ReqLimDelta || r2.Status != r.Status ||
			r2.Flags&^valid != r.Flags&^valid || r2.DataOutResCnt != r.DataOutResCnt || r2.DataInResCnt != r.DataInResCnt ||
			string(r2.RespData) != string(r.RespData) || string(r2.Sense) != string(r.Sense) {
			t.Fatalf("round trip: %+v %v, want %+v", r2, err, r)
		}
	})
}

func FuzzLoginRsp(f *testing.F) {
	b := make([]byte, 52)
	(&srp.LoginRsp{ReqLimDelta: 128, MaxITIULen: 8276, MaxTIIULen: 8260, BufFmt: 6, Flags: 0x82}).Put(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := srp.ParseLoginRsp(in)
		if err != nil {
			return
		}
		out := make([]byte, 52)
		r.Put(out)
		if r2, err := srp.ParseLoginRsp(out); err != nil || r2 != r {
			t.Fatalf("round trip: %+v %v, want %+v", r2, err, r)
		}
	})
}

func FuzzLoginRej(f *testing.F) {
	b := make([]byte, 32)
	(&srp.LoginRej{Reason: srp.RejChanLimit, BufFmt: 6}).Put(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := srp.ParseLoginRej(in)
		if err != nil {
			return
		}
		_ = r.Reason.String()
		out := make([]byte, 32)
		r.Put(out)
		if r2, err := srp.ParseLoginRej(out); err != nil || r2 != r {
			t.Fatalf("round trip: %+v %v, want %+v", r2, err, r)
		}
	})
}

func FuzzAerReq(f *testing.F) {
	b := make([]byte, 64)
	n := (&srp.AerReq{ReqLimDelta: 1, LUN: 1 << 48, Sense: make([]byte, 18)}).Put(b)
	f.Add(b[:n])
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := srp.ParseAerReq(in)
		if err != nil {
			return
		}
		out := make([]byte, len(in))
		n := a.Put(out)
		a2, err := srp.ParseAerReq(out[:n])
		if err != nil || a2.Tag != a.Tag || a2.SolNot != a.SolNot || a2.ReqLimDelta != a.ReqLimDelta ||
			a2.LUN != a.LUN || string(a2.Sense) != string(a.Sense) {
			t.Fatalf("round trip: %+v %v, want %+v", a2, err, a)
		}
	})
}

// FuzzShortIUs covers the 16-byte IUs: I_LOGOUT, T_LOGOUT, CRED_REQ,
// CRED_RSP and AER_RSP, picked by the first byte.
func FuzzShortIUs(f *testing.F) {
	for _, op := range []srp.Opcode{srp.OpILogout, srp.OpTLogout, srp.OpCredReq, srp.OpCredRsp, srp.OpAerRsp} {
		b := make([]byte, 16)
		b[0], b[1], b[7], b[8] = byte(op), 1, 8, 0xff
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := make([]byte, 16)
		_ = srp.Summary(in, 0)
		op, err := srp.Peek(in)
		if err != nil {
			return
		}
		var ok bool
		switch op {
		case srp.OpILogout:
			if v, err := srp.ParseILogout(in); err == nil {
				v.Put(out)
				v2, err := srp.ParseILogout(out)
				ok = err == nil && v2 == v
			} else {
				ok = true
			}
		case srp.OpTLogout:
			if v, err := srp.ParseTLogout(in); err == nil {
				_ = v.Reason.String()
				v.Put(out)
				v2, err := srp.ParseTLogout(out)
				ok = err == nil && v2 == v
			} else {
				ok = true
			}
		case srp.OpCredReq:
			if v, err := srp.ParseCredReq(in); err == nil {
				v.Put(out)
				v2, err := srp.ParseCredReq(out)
				ok = err == nil && v2 == v
			} else {
				ok = true
			}
		case srp.OpCredRsp:
			if v, err := srp.ParseCredRsp(in); err == nil {
				v.Put(out)
				v2, err := srp.ParseCredRsp(out)
				ok = err == nil && v2 == v
			} else {
				ok = true
			}
		case srp.OpAerRsp:
			if v, err := srp.ParseAerRsp(in); err == nil {
				v.Put(out)
				v2, err := srp.ParseAerRsp(out)
				ok = err == nil && v2 == v
			} else {
				ok = true
			}
		default:
			ok = true
		}
		if !ok {
			t.Fatalf("%v: round trip of % x", op, in)
		}
	})
}
