package srp_test

import (
	"testing"

	"github.com/usrpt/usrpt/srp"
)

// cmdIU is an SRP_CMD header with READ(10) in the CDB, LUN 1 and tag 5.
func cmdIU(size int, bufFmt, outCnt, inCnt uint8) iu {
	tag := srp.TagOf(5)
	return make(iu, size).u8(0, 0x02).u8(5, bufFmt).u8(6, outCnt).u8(7, inCnt).raw(8, tag[:]).
		u64(20, 0x0001000000000000).u8(32, 0x28)
}

// indirect writes an indirect header at off with a table of n entries and
// total, followed by list descriptors of the given lengths.
func (b iu) indirect(off int, tableN uint32, total uint32, lens ...uint32) iu {
	b.u64(off, 0xfeed0000).u32(off+8, 0x1234).u32(off+12, tableN*16).u32(off+16, total)
	for i, l := range lens {
		d := off + 20 + 16*i
		b.u64(d, uint64(0x10000*(i+1))).u32(d+8, 0x77).u32(d+12, l)
	}
	return b
}

func TestCmdLinux(t *testing.T) {
	// A 4 KiB READ with one direct descriptor, as ib_srp sends it with a
	// global rkey: DATA-IN format 1, descriptor count left at 0.
	b := cmdIU(64, 0x01, 0, 0).u64(48, 0x7f0000001000).u32(56, 0xabcd).u32(60, 4096)
	c, err := srp.ParseCmd(b, srp.LinuxImmDataOffset)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tag != srp.TagOf(5) || c.LUN != 1<<48 || len(c.CDB) != 16 || c.CDB[0] != 0x28 || c.DataOut.Format != srp.FmtNone ||
		c.DataIn.Format != srp.FmtDirect || c.DataIn.Desc != (srp.Desc{VA: 0x7f0000001000, Key: 0xabcd, Len: 4096}) ||
		c.DataIn.Len() != 4096 || c.DataIn.NumDesc() != 1 || c.DataIn.ListDesc(0) != c.DataIn.Desc {
		t.Fatalf("direct: %+v", c)
	}

	// A 512-byte WRITE with immediate data: header at 48, data at 68.
	b = cmdIU(68+512, 0x30, 0, 0).u8(32, 0x2a).u32(48, 512)
	for i := range 512 {
		b[68+i] = byte(i)
	}
	c, err = srp.ParseCmd(b, srp.LinuxImmDataOffset)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataOut.Format != srp.FmtImmediate || c.DataOut.Len() != 512 || len(c.DataOut.List) != 512 || c.DataOut.List[511] != 255 {
		t.Fatalf("immediate: %+v", c.DataOut)
	}

	// A 32-byte CDB (add_cdb_len 16) with an indirect DATA-IN of 3
	// descriptors, the whole table in the IU.
	b = cmdIU(48+16+20+48, 0x02, 0, 3).u8(31, 16).u8(32, 0x7f).indirect(64, 3, 12288, 4096, 4096, 4096)
	c, err = srp.ParseCmd(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CDB) != 32 || c.DataIn.NumDesc() != 3 || c.DataIn.Partial() || c.DataIn.Len() != 12288 ||
		c.DataIn.ListDesc(2) != (srp.Desc{VA: 0x30000, Key: 0x77, Len: 4096}) || c.DataIn.Desc.Len != 48 {
		t.Fatalf("indirect: %+v", c)
	}

	// A partial list: table of 4, 2 in the IU.
	b = cmdIU(48+20+32, 0x20, 2, 0).indirect(48, 4, 16384, 4096, 4096)
	c, err = srp.ParseCmd(b, 0)
	if err != nil || !c.DataOut.Partial() || c.DataOut.NumDesc() != 2 {
		t.Fatalf("partial: %+v %v", c.DataOut, err)
	}

	// Bidirectional: direct DATA-OUT, then indirect DATA-IN.
	b = cmdIU(48+16+20+16, 0x12, 1, 1).u32(60, 100).indirect(64, 1, 200, 200)
	c, err = srp.ParseCmd(b, 0)
	if err != nil || c.DataOut.Len() != 100 || c.DataIn.Len() != 200 {
		t.Fatalf("bidi: %+v %v", c, err)
	}

	// add_cdb_len bits 1:0 are reserved and ignored.
	if c, err := srp.ParseCmd(cmdIU(48, 0, 0, 0).u8(31, 3), 0); err != nil || len(c.CDB) != 16 {
		t.Fatalf("add_cdb_len 3: %v", err)
	}
}

// TestCmdRules: one case per rule of ParseCmd, with the answer it maps to.
func TestCmdRules(t *testing.T) {
	for _, c := range []struct {
		name   string
		b      iu
		immOff int
		err    srp.Error
		answer srp.Answer
		logout srp.TLogoutReason
	}{
		{"short IU", cmdIU(47, 0, 0, 0), 0, srp.ErrShortIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"wrong type", cmdIU(48, 0, 0, 0).u8(0, 0x01), 0, srp.ErrOpcode, srp.AnswerTLogout, srp.LogoutInvalidIUType},
		{"add_cdb_len past IU", cmdIU(60, 0, 0, 0).u8(31, 16), 0, srp.ErrAddCDBLen, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"add_cdb_len 252 past IU", cmdIU(299, 0, 0, 0).u8(31, 252), 0, srp.ErrAddCDBLen, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"direct past IU", cmdIU(63, 0x01, 0, 0), 0, srp.ErrDescPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"direct after add CDB past IU", cmdIU(70, 0x10, 0, 0).u8(31, 8), 0, srp.ErrDescPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"indirect header past IU", cmdIU(67, 0x02, 0, 0), 0, srp.ErrDescPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"partial list past IU", cmdIU(48+20+16, 0x02, 0, 2).indirect(48, 2, 2, 1), 0, srp.ErrDescPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"second buffer past IU", cmdIU(64, 0x11, 0, 0), 0, srp.ErrDescPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"imm header past IU", cmdIU(50, 0x30, 0, 0), 68, srp.ErrDescPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"immediate data past IU", cmdIU(68+511, 0x30, 0, 0).u32(48, 512), 68, srp.ErrImmPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"immediate length 2^32-1", cmdIU(100, 0x30, 0, 0).u32(48, 0xFFFFFFFF), 68, srp.ErrImmPastIU, srp.AnswerTLogout, srp.LogoutInvalidIULen},
		{"data-out nibble 4", cmdIU(80, 0x40, 0, 0), 68, srp.ErrDataOutFmt, srp.AnswerTLogout, srp.LogoutDataOutFmt},
		{"data-out nibble 15", cmdIU(80, 0xF0, 0, 0), 68, srp.ErrDataOutFmt, srp.AnswerTLogout, srp.LogoutDataOutFmt},
		{"immediate not negotiated", cmdIU(80, 0x30, 0, 0), 0, srp.ErrDataOutFmt, srp.AnswerTLogout, srp.LogoutDataOutFmt},
		{"data-in immediate", cmdIU(80, 0x03, 0, 0), 68, srp.ErrDataInFmt, srp.AnswerTLogout, srp.LogoutDataInFmt},
		{"data-in nibble 9", cmdIU(80, 0x09, 0, 0), 68, srp.ErrDataInFmt, srp.AnswerTLogout, srp.LogoutDataInFmt},
		{"count without data", cmdIU(48, 0x00, 1, 0), 0, srp.ErrDescCount, srp.AnswerCheckCondition, srp.LogoutNone},
		{"data-in count without data", cmdIU(48, 0x00, 0, 1), 0, srp.ErrDescCount, srp.AnswerCheckCondition, srp.LogoutNone},
		{"direct count 2", cmdIU(64, 0x01, 0, 2), 0, srp.ErrDescCount, srp.AnswerCheckCondition, srp.LogoutNone},
		{"immediate count 2", cmdIU(80, 0x30, 2, 0), 68, srp.ErrDescCount, srp.AnswerCheckCondition, srp.LogoutNone},
		{"table len not multiple of 16", cmdIU(48+20+16, 0x02, 0, 1).indirect(48, 1, 8, 8).u32(60, 17), 0, srp.ErrIndirectTableLen, srp.AnswerCheckCondition, srp.LogoutNone},
		{"partial list longer than table", cmdIU(48+20+32, 0x02, 0, 2).indirect(48, 1, 16, 8, 8), 0, srp.ErrPartialList, srp.AnswerCheckCondition, srp.LogoutNone},
		{"list sum over total", cmdIU(48+20+32, 0x20, 2, 0).indirect(48, 4, 100, 60, 60), 0, srp.ErrIndirectTotal, srp.AnswerCheckCondition, srp.LogoutNone},
		{"total length overflow", cmdIU(48+20+32, 0x20, 2, 0).indirect(48, 2, 0xFFFFFFFF, 0xFFFFFFFF, 1), 0, srp.ErrIndirectTotal, srp.AnswerCheckCondition, srp.LogoutNone},
		{"whole table sums short", cmdIU(48+20+32, 0x02, 0, 2).indirect(48, 2, 100, 40, 40), 0, srp.ErrIndirectTotal, srp.AnswerCheckCondition, srp.LogoutNone},
		{"imm offset inside header", cmdIU(100, 0x30, 0, 0).u32(48, 4), 40, srp.ErrImmOffset, srp.AnswerCheckCondition, srp.LogoutNone},
		{"imm offset inside imm header", cmdIU(100, 0x30, 0, 0).u32(48, 4), 50, srp.ErrImmOffset, srp.AnswerCheckCondition, srp.LogoutNone},
		{"imm offset inside additional CDB", cmdIU(140, 0x30, 0, 0).u8(31, 32).u32(80, 4), 68, srp.ErrImmOffset, srp.AnswerCheckCondition, srp.LogoutNone},
		{"imm offset inside data-in descriptor", cmdIU(100, 0x31, 0, 0).u32(48, 4), 60, srp.ErrImmOffset, srp.AnswerCheckCondition, srp.LogoutNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := srp.ParseCmd(c.b, c.immOff)
			if err != c.err {
				t.Fatalf("%v, want %v", err, c.err)
			}
			e := err.(srp.Error)
			if e.Answer() != c.answer || e.TLogout() != c.logout || e.Error() == "" {
				t.Fatalf("%v: answer %v logout %v", e, e.Answer(), e.TLogout())
			}
		})
	}
}

func TestCmdPut(t *testing.T) {
	list := make([]byte, 32)
	srp.Desc{VA: 1, Key: 2, Len: 300}.Put(list)
	srp.Desc{VA: 3, Key: 4, Len: 212}.Put(list[16:])
	data := []byte("immediate")
	for _, c := range []srp.Cmd{
		{Tag: srp.TagOf(1), LUN: 1 << 48, Attr: srp.AttrOrdered, CDB: make([]byte, 16),
			DataIn: srp.DataBuf{Format: srp.FmtDirect, Desc: srp.Desc{VA: 9, Key: 8, Len: 7}}},
		{Tag: srp.TagOf(2), CDB: make([]byte, 32), SolNot: 6,
			DataOut: srp.DataBuf{Format: srp.FmtIndirect, Count: 2, Desc: srp.Desc{VA: 5, Key: 6, Len: 32}, Total: 512, List: list}},
		{Tag: srp.TagOf(3), CDB: make([]byte, 16), DataOut: srp.DataBuf{Format: srp.FmtImmediate, Total: uint32(len(data)), List: data},
			DataIn: srp.DataBuf{Format: srp.FmtDirect, Count: 1, Desc: srp.Desc{Len: 5}}},
	} {
		b := make([]byte, 256)
		n := c.Put(b, 80)
		got, err := srp.ParseCmd(b[:n], 80)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !cmdEqual(&got, &c) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, c)
		}
	}
	// Unencodable commands give 0.
	b := make([]byte, 512)
	for name, c := range map[string]srp.Cmd{
		"CDB too long":       {CDB: make([]byte, 16+253)},
		"imm data-in":        {DataIn: srp.DataBuf{Format: srp.FmtImmediate}},
		"list not 16s":       {DataOut: srp.DataBuf{Format: srp.FmtIndirect, List: make([]byte, 17)}},
		"imm before descs":   {CDB: make([]byte, 32), DataOut: srp.DataBuf{Format: srp.FmtImmediate}, DataIn: srp.DataBuf{Format: srp.FmtDirect}},
		"buffer short (imm)": {DataOut: srp.DataBuf{Format: srp.FmtImmediate, List: make([]byte, 500)}},
	} {
		if n := c.Put(b, 68); n != 0 {
			t.Errorf("%s: %d", name, n)
		}
	}
}

// cmdEqual compares the decoded values of two commands.
func cmdEqual(a, b *srp.Cmd) bool {
	return a.Tag == b.Tag && a.SolNot == b.SolNot && a.LUN == b.LUN && a.Attr == b.Attr &&
		string(a.CDB) == string(b.CDB) && bufEqual(&a.DataOut, &b.DataOut) && bufEqual(&a.DataIn, &b.DataIn)
}

func bufEqual(a, b *srp.DataBuf) bool {
	return a.Format == b.Format && a.Count == b.Count && a.Desc == b.Desc && a.Total == b.Total &&
		string(a.List) == string(b.List)
}

func TestZeroAllocs(t *testing.T) {
	cmd := cmdIU(48+16+20+48, 0x02, 0, 3).u8(31, 16).indirect(64, 3, 12288, 4096, 4096, 4096)
	imm := cmdIU(68+512, 0x30, 0, 0).u32(48, 512)
	sense := make([]byte, 18)
	out := make([]byte, 256)
	var sink int
	allocs := testing.AllocsPerRun(1000, func() {
		c, err := srp.ParseCmd(cmd, 68)
		if err != nil {
			panic(err)
		}
		sink += int(c.DataIn.Len())
		c, _ = srp.ParseCmd(imm, 68)
		sink += len(c.DataOut.List)
		_, err = srp.ParseCmd(cmd[:50], 68) // an error value costs nothing either
		if err == nil {
			panic("no error")
		}
		r := srp.Rsp{Tag: c.Tag, ReqLimDelta: 1, Status: 2, Sense: sense}
		sink += r.Put(out)
		sink += srp.PutTMRsp(out, c.Tag, 1, srp.TMFComplete)
		lr := srp.LoginRsp{Tag: c.Tag, ReqLimDelta: 128}
		sink += lr.Put(out)
		tm, _ := srp.ParseTskMgmt(out)
		sink += int(tm.Func)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
	_ = sink
}

func TestSummary(t *testing.T) {
	b := make([]byte, 64)
	srp.PutTMRsp(b, srp.TagOf(9), 1, srp.TMFComplete)
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{b[:40], "SRP_RSP tag 0x9 req_lim_delta 1 status 0x0 flags 0x1 resid out 0 in 0 resp 00 00 00 00 sense "},
		{cmdIU(47, 0, 0, 0), "SRP_CMD: srp: IU shorter than its fixed part"},
		{[]byte{0x7f}, "Opcode(0x7f): srp: unknown or unexpected IU type"},
		{nil, "srp: IU shorter than its fixed part"},
	} {
		if got := srp.Summary(c.b, 0); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
	// Every IU type formats without panicking, short or not.
	for op := 0; op < 256; op++ {
		if srp.Opcode(op).Known() {
			full := make([]byte, 64)
			full[0] = byte(op)
			_ = srp.Summary(full, 68)
			_ = srp.Summary(full[:8], 68)
		}
	}
}

func BenchmarkParseCmd(b *testing.B) {
	cmd := cmdIU(64, 0x01, 0, 0).u32(60, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := srp.ParseCmd(cmd, 68); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutRsp(b *testing.B) {
	out := make([]byte, 256)
	sense := make([]byte, 18)
	b.ReportAllocs()
	for b.Loop() {
		r := srp.Rsp{Tag: srp.TagOf(1), ReqLimDelta: 1, Status: 2, Sense: sense}
		r.Put(out)
	}
}
