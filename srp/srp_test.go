package srp_test

import (
	"errors"
	"testing"

	"github.com/usrpt/usrpt/srp"
)

func TestSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"LOGIN_REQ", srp.LoginReqLen, 64},
		{"LOGIN_REQ RDMA/CM", srp.LoginReqRDMALen, 56},
		{"LOGIN_RSP", srp.LoginRspLen, 52},
		{"LOGIN_REJ", srp.LoginRejLen, 32},
		{"CMD", srp.CmdLen, 48},
		{"RSP", srp.RspLen, 36},
		{"TSK_MGMT", srp.TskMgmtLen, 48},
		{"AER_REQ", srp.AerReqLen, 36},
		{"I_LOGOUT", srp.ILogoutLen, 16},
		{"T_LOGOUT", srp.TLogoutLen, 16},
		{"CRED_REQ", srp.CredReqLen, 16},
		{"CRED_RSP", srp.CredRspLen, 16},
		{"AER_RSP", srp.AerRspLen, 16},
		{"direct descriptor", srp.DirectDescLen, 16},
		{"indirect header", srp.IndirectHdrLen, 20},
		{"immediate header", srp.ImmHdrLen, 4},
		{"Linux imm_data_offset", srp.LinuxImmDataOffset, 68},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	// Builders write exactly the fixed sizes.
	b := make([]byte, 256)
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"LoginReq.Put", (&srp.LoginReq{}).Put(b), 64},
		{"LoginReq.PutRDMA", (&srp.LoginReq{}).PutRDMA(b), 56},
		{"LoginRsp.Put", (&srp.LoginRsp{}).Put(b), 52},
		{"LoginRej.Put", (&srp.LoginRej{}).Put(b), 32},
		{"TskMgmt.Put", (&srp.TskMgmt{}).Put(b), 48},
		{"Rsp.Put", (&srp.Rsp{}).Put(b), 36},
		{"ILogout.Put", (&srp.ILogout{}).Put(b), 16},
		{"TLogout.Put", (&srp.TLogout{}).Put(b), 16},
		{"CredReq.Put", (&srp.CredReq{}).Put(b), 16},
		{"CredRsp.Put", (&srp.CredRsp{}).Put(b), 16},
		{"AerReq.Put", (&srp.AerReq{}).Put(b), 36},
		{"AerRsp.Put", (&srp.AerRsp{}).Put(b), 16},
		{"Cmd.Put", (&srp.Cmd{}).Put(b, 0), 48},
		{"LoginRsp.Put short", (&srp.LoginRsp{}).Put(b[:51]), 0},
		{"Rsp.Put short", (&srp.Rsp{}).Put(b[:35]), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestOpcodes(t *testing.T) {
	want := map[srp.Opcode]string{
		0x00: "SRP_LOGIN_REQ", 0x01: "SRP_TSK_MGMT", 0x02: "SRP_CMD", 0x03: "SRP_I_LOGOUT",
		0xC0: "SRP_LOGIN_RSP", 0xC1: "SRP_RSP", 0xC2: "SRP_LOGIN_REJ",
		0x80: "SRP_T_LOGOUT", 0x81: "SRP_CRED_REQ", 0x82: "SRP_AER_REQ",
		0x41: "SRP_CRED_RSP", 0x42: "SRP_AER_RSP",
	}
	for i := 0; i < 256; i++ {
		o := srp.Opcode(i)
		name, ok := want[o]
		if o.Known() != ok {
			t.Errorf("%#x Known = %v", i, o.Known())
		}
		_, err := srp.Peek([]byte{byte(i)})
		if ok && (o.String() != name || err != nil) {
			t.Errorf("%#x: %q %v, want %q", i, o.String(), err, name)
		}
		if !ok && !errors.Is(err, srp.ErrOpcode) {
			t.Errorf("%#x: Peek %v", i, err)
		}
	}
	if _, err := srp.Peek(nil); err != srp.ErrShortIU {
		t.Errorf("Peek(nil) = %v", err)
	}
}

// linuxTag is a tag as the Linux initiator stores it: a host-order u64
// (here written little-endian, as on x86), so its bytes are not a
// big-endian number.
var linuxTag = srp.Tag{0x2a, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00}

func TestTagOpaque(t *testing.T) {
	if linuxTag.Uint64() != 0x8000002a || srp.TagOf(0x8000002a) != linuxTag {
		t.Fatalf("Uint64 %#x", linuxTag.Uint64())
	}
	odd := srp.Tag{1, 2, 3, 4, 5, 6, 7, 0xff}
	if srp.TagOf(odd.Uint64()) != odd {
		t.Fatal("TagOf(Uint64) does not round-trip")
	}
	// A tag read from a request comes back byte for byte in the answer.
	req := make(iu, 64).raw(8, odd[:]).u8(5, 0)
	req[0] = byte(srp.OpCmd)
	c, err := srp.ParseCmd(req, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	n := (&srp.Rsp{Tag: c.Tag}).Put(out)
	if [8]byte(out[8:16]) != odd || n != 36 {
		t.Fatalf("RSP tag % x", out[8:16])
	}
	tm := make(iu, 48).raw(8, odd[:]).raw(32, linuxTag[:]).u8(0, byte(srp.OpTskMgmt))
	m, _ := srp.ParseTskMgmt(tm)
	srp.PutTMRsp(out, m.Tag, 1, srp.TMFComplete)
	if [8]byte(out[8:16]) != odd || m.TaskTag != linuxTag {
		t.Fatalf("TMF tags % x %v", out[8:16], m.TaskTag)
	}
	var lr srp.LoginReq
	lr.Tag = odd
	lr.PutRDMA(out)
	if [8]byte(out[0:8]) != odd {
		t.Fatalf("RDMA login tag % x", out[:8])
	}
}

var (
	initiatorPortID = [16]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xc9, 0x03, 0x00, 0x11, 0x22, 0x33}
	targetPortID    = [16]byte{0x00, 0x02, 0xc9, 0x03, 0x00, 0xaa, 0xbb, 0xcc, 0x00, 0x02, 0xc9, 0x03, 0x00, 0xaa, 0xbb, 0xcc}
)

// TestLinuxLoginReq parses a login built by hand from what ib_srp's
// srp_send_req sends (reference A.4): tag 0, req_it_iu_len 8260,
// buf_fmt DIRECT|INDIRECT, SINGLE or MULTI plus IMMED_REQUESTED,
// imm_data_offset 68, in both wire forms.
func TestLinuxLoginReq(t *testing.T) {
	ib := make(iu, 64).u8(0, 0x00).u32(16, 8260).u16(24, 0x0006).u8(26, 0x80|0x01).u16(28, 68).
		raw(32, initiatorPortID[:]).raw(48, targetPortID[:])
	cm := make(iu, 56).u16(8, 0x0006).u8(10, 0x80|0x01).u8(11, 0x00).u32(12, 8260).
		raw(16, initiatorPortID[:]).raw(32, targetPortID[:]).u16(48, 68)
	want := srp.LoginReq{
		ReqITIULen: 8260, BufFmt: srp.BufDirect | srp.BufIndirect, Flags: srp.MultiChanMulti | srp.LoginImmRequested,
		ImmDataOffset: 68, InitiatorPortID: initiatorPortID, TargetPortID: targetPortID,
	}
	got, err := srp.ParseLoginReq(ib)
	if err != nil || got != want {
		t.Fatalf("64-byte form: %+v %v\nwant %+v", got, err, want)
	}
	if got.MultiChan() != srp.MultiChanMulti || !got.ImmRequested() {
		t.Fatalf("flags %#x", got.Flags)
	}
	got, err = srp.ParseLoginReqRDMA(cm)
	if err != nil || got != want {
		t.Fatalf("56-byte form: %+v %v\nwant %+v", got, err, want)
	}
	// Padded private data (longer than 56) parses the same.
	got, err = srp.ParseLoginReqRDMA(append(cm, make([]byte, 36)...))
	if err != nil || got != want {
		t.Fatalf("padded form: %+v %v", got, err)
	}
	// Builders give back the same bytes.
	b := make([]byte, 64)
	if n := want.Put(b); n != 64 || string(b) != string(ib) {
		t.Errorf("Put:\n% x\nwant\n% x", b, ib)
	}
	if n := want.PutRDMA(b); n != 56 || string(b[:56]) != string(cm) {
		t.Errorf("PutRDMA:\n% x\nwant\n% x", b[:56], cm)
	}

	for _, c := range []struct {
		name string
		b    []byte
		rdma bool
		err  srp.Error
	}{
		{"short IB", ib[:63], false, srp.ErrLoginShort},
		{"short RDMA", cm[:55], true, srp.ErrLoginShort},
		{"opcode IB", append(iu(nil), ib...).u8(0, 0x02), false, srp.ErrLoginOpcode},
		{"opcode RDMA", append(iu(nil), cm...).u8(11, 0x02), true, srp.ErrLoginOpcode},
		{"it_iu_len 63", append(iu(nil), ib...).u32(16, 63), false, srp.ErrLoginITIULen},
		{"it_iu_len 0 RDMA", append(iu(nil), cm...).u32(12, 0), true, srp.ErrLoginITIULen},
		{"multichannel 2", append(iu(nil), ib...).u8(26, 0x02), false, srp.ErrLoginMultiChan},
		{"multichannel 3", append(iu(nil), cm...).u8(10, 0x83), true, srp.ErrLoginMultiChan},
	} {
		parse := srp.ParseLoginReq
		if c.rdma {
			parse = srp.ParseLoginReqRDMA
		}
		_, err := parse(c.b)
		if err != c.err {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
		if e, ok := err.(srp.Error); !ok || e.Answer() != srp.AnswerLoginRej {
			t.Errorf("%s: answer %v", c.name, err)
		}
	}
	if srp.ErrLoginITIULen.LoginRej() != srp.RejITIULenTooLarge || srp.ErrLoginMultiChan.LoginRej() != srp.RejUnable {
		t.Error("login reject reasons")
	}
}

func TestRejReasons(t *testing.T) {
	for _, c := range []struct {
		r srp.RejReason
		v uint32
	}{
		{srp.RejUnable, 0x00010000}, {srp.RejNoResources, 0x00010001}, {srp.RejITIULenTooLarge, 0x00010002},
		{srp.RejUnableAssociate, 0x00010003}, {srp.RejUnsupportedDescFmt, 0x00010004},
		{srp.RejNoMultiChan, 0x00010005}, {srp.RejChanLimit, 0x00010006},
	} {
		if uint32(c.r) != c.v || c.r.String() == "" || c.r.String()[0] == 'R' {
			t.Errorf("%#x: %v", c.v, c.r)
		}
	}
}

// TestGolden writes what initiators see; the offsets are also checked by
// hand so the golden files are not the only witness.
func TestGolden(t *testing.T) {
	tag := srp.Tag{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	b := make([]byte, 256)

	n := (&srp.LoginRsp{Tag: tag, ReqLimDelta: 128, MaxITIULen: 8276, MaxTIIULen: 8260,
		BufFmt: srp.BufDirect | srp.BufIndirect, Flags: srp.ChanMaintained | srp.LoginImmSupp}).Put(b)
	want := make(iu, 52).u8(0, 0xC0).u32(4, 128).raw(8, tag[:]).u32(16, 8276).u32(20, 8260).u16(24, 6).u8(26, 0x82)
	checkIU(t, "login_rsp", b[:n], want)

	n = (&srp.LoginRej{Tag: tag, Reason: srp.RejUnableAssociate, BufFmt: srp.BufDirect | srp.BufIndirect}).Put(b)
	want = make(iu, 32).u8(0, 0xC2).u32(4, 0x00010003).raw(8, tag[:]).u16(24, 6)
	checkIU(t, "login_rej", b[:n], want)

	sense := []byte{0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0, 0, 0}
	n = (&srp.Rsp{Tag: tag, ReqLimDelta: 3, Status: 0x02, Flags: srp.DIUnder, DataInResCnt: 512, Sense: sense}).Put(b)
	want = make(iu, 36+18).u8(0, 0xC1).u32(4, 3).raw(8, tag[:]).u8(18, 0x02|0x20).u8(19, 0x02).
		u32(24, 512).u32(28, 18).raw(36, sense)
	checkIU(t, "rsp_sense", b[:n], want)

	// Sense is truncated to the caller's buffer (max_ti_iu_len).
	n = (&srp.Rsp{Tag: tag, Status: 0x02, Sense: sense}).Put(b[:40])
	if n != 40 || b[31] != 4 || b[18] != 0x02 {
		t.Errorf("truncated sense: n %d len %d flags %#x", n, b[31], b[18])
	}

	n = srp.PutTMRsp(b, tag, 1, srp.TMFNotSupported)
	want = make(iu, 40).u8(0, 0xC1).u32(4, 1).raw(8, tag[:]).u8(18, 0x01).u32(32, 4).u8(39, 0x04)
	checkIU(t, "rsp_tmf", b[:n], want)

	n = (&srp.TLogout{Tag: tag, SolNot: srp.SolNt, Reason: srp.LogoutInvalidIULen}).Put(b)
	want = make(iu, 16).u8(0, 0x80).u8(1, 1).u32(4, 8).raw(8, tag[:])
	checkIU(t, "t_logout", b[:n], want)

	n = (&srp.CredReq{Tag: tag, ReqLimDelta: 16}).Put(b)
	want = make(iu, 16).u8(0, 0x81).u32(4, 16).raw(8, tag[:])
	checkIU(t, "cred_req", b[:n], want)

	ua := []byte{0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x3f, 0x0e, 0, 0, 0, 0}
	n = (&srp.AerReq{Tag: tag, ReqLimDelta: 1, LUN: 0x0001000000000000, Sense: ua}).Put(b)
	want = make(iu, 36+18).u8(0, 0x82).u32(4, 1).raw(8, tag[:]).u64(20, 0x0001000000000000).u32(28, 18).raw(36, ua)
	checkIU(t, "aer_req", b[:n], want)
}

func checkIU(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if string(got) != string(want) {
		t.Errorf("%s:\n% x\nwant\n% x", name, got, want)
	}
	golden(t, name, got)
}

// TestParseBack: what the builders write parses back to the same values.
func TestParseBack(t *testing.T) {
	tag := srp.TagOf(7)
	b := make([]byte, 128)
	lr := srp.LoginRsp{Tag: tag, ReqLimDelta: 64, MaxITIULen: 1, MaxTIIULen: 2, BufFmt: 6, Flags: srp.ChanTerminated}
	lr.Put(b)
	if got, err := srp.ParseLoginRsp(b); err != nil || got != lr {
		t.Errorf("LoginRsp %+v %v", got, err)
	}
	rj := srp.LoginRej{Tag: tag, Reason: srp.RejChanLimit, BufFmt: 6}
	rj.Put(b)
	if got, err := srp.ParseLoginRej(b); err != nil || got != rj {
		t.Errorf("LoginRej %+v %v", got, err)
	}
	tl := srp.TLogout{Tag: tag, SolNot: 1, Reason: srp.LogoutDataInFmt}
	tl.Put(b)
	if got, err := srp.ParseTLogout(b); err != nil || got != tl {
		t.Errorf("TLogout %+v %v", got, err)
	}
	il := srp.ILogout{Tag: tag}
	il.Put(b)
	if got, err := srp.ParseILogout(b); err != nil || got != il {
		t.Errorf("ILogout %+v %v", got, err)
	}
	cq := srp.CredReq{Tag: tag, SolNot: 1, ReqLimDelta: 9}
	cq.Put(b)
	if got, err := srp.ParseCredReq(b); err != nil || got != cq {
		t.Errorf("CredReq %+v %v", got, err)
	}
	cr := srp.CredRsp{Tag: tag}
	cr.Put(b)
	if got, err := srp.ParseCredRsp(b); err != nil || got != cr {
		t.Errorf("CredRsp %+v %v", got, err)
	}
	ar := srp.AerRsp{Tag: tag}
	ar.Put(b)
	if got, err := srp.ParseAerRsp(b); err != nil || got != ar {
		t.Errorf("AerRsp %+v %v", got, err)
	}
	tm := srp.TskMgmt{Tag: tag, SolNot: 2, LUN: 1 << 48, Func: srp.TMFLUNReset, TaskTag: srp.TagOf(^uint64(0))}
	tm.Put(b)
	if got, err := srp.ParseTskMgmt(b); err != nil || got != tm {
		t.Errorf("TskMgmt %+v %v", got, err)
	}
	srp.PutTMRsp(b, tag, 1, srp.TMFFailed)
	r, err := srp.ParseRsp(b)
	if code, ok := r.TMRspCode(); err != nil || !ok || code != srp.TMFFailed || r.Tag != tag {
		t.Errorf("TM RSP %+v %v", r, err)
	}
	// Wrong type and short IUs for every fixed parser.
	for name, parse := range map[string]func([]byte) error{
		"LoginRsp": func(b []byte) error { _, err := srp.ParseLoginRsp(b); return err },
		"LoginRej": func(b []byte) error { _, err := srp.ParseLoginRej(b); return err },
		"TLogout":  func(b []byte) error { _, err := srp.ParseTLogout(b); return err },
		"ILogout":  func(b []byte) error { _, err := srp.ParseILogout(b); return err },
		"CredReq":  func(b []byte) error { _, err := srp.ParseCredReq(b); return err },
		"CredRsp":  func(b []byte) error { _, err := srp.ParseCredRsp(b); return err },
		"AerReq":   func(b []byte) error { _, err := srp.ParseAerReq(b); return err },
		"AerRsp":   func(b []byte) error { _, err := srp.ParseAerRsp(b); return err },
		"TskMgmt":  func(b []byte) error { _, err := srp.ParseTskMgmt(b); return err },
		"Rsp":      func(b []byte) error { _, err := srp.ParseRsp(b); return err },
		"Cmd":      func(b []byte) error { _, err := srp.ParseCmd(b, 0); return err },
	} {
		if err := parse(make([]byte, 15)); err != srp.ErrShortIU {
			t.Errorf("%s short: %v", name, err)
		}
		bad := make([]byte, 64)
		bad[0] = 0x7f
		if err := parse(bad); err != srp.ErrOpcode {
			t.Errorf("%s opcode: %v", name, err)
		}
	}
}

func TestRspRules(t *testing.T) {
	base := func() iu { return make(iu, 48).u8(0, 0xC1) }
	for _, c := range []struct {
		name string
		b    iu
		err  error
	}{
		{"no data", base(), nil},
		{"resp data fits", base().u8(18, 0x01).u32(32, 12), nil},
		{"resp past IU", base().u8(18, 0x01).u32(32, 13), srp.ErrRspLen},
		{"sense after resp past IU", base().u8(18, 0x03).u32(32, 8).u32(28, 5), srp.ErrRspLen},
		{"sense len huge", base().u8(18, 0x02).u32(28, 0xFFFFFFFF), srp.ErrRspLen},
		{"lengths ignored without valid bits", base().u32(32, 0xFFFFFFFF).u32(28, 0xFFFFFFFF), nil},
		{"DOOVER and DOUNDER", base().u8(18, 0x0C), srp.ErrRspResid},
		{"DIOVER and DIUNDER", base().u8(18, 0x30), srp.ErrRspResid},
	} {
		if _, err := srp.ParseRsp(c.b); err != c.err {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	aer := make(iu, 40).u8(0, 0x82).u32(28, 5)
	if _, err := srp.ParseAerReq(aer); err != srp.ErrSenseLen {
		t.Errorf("AER sense past IU: %v", err)
	}
	if a, err := srp.ParseAerReq(aer.u32(28, 4)); err != nil || len(a.Sense) != 4 {
		t.Errorf("AER sense: %v", err)
	}
}
