package srp

import (
	"fmt"
	"strings"
)

// Summary formats IU b for logs: its type, tag and main fields, or the
// rule it breaks. immDataOffset is as for ParseCmd. It allocates: use it
// on the control path or rate-limited, not per command.
func Summary(b []byte, immDataOffset int) string {
	op, err := Peek(b)
	if err != nil {
		if len(b) > 0 {
			return fmt.Sprintf("%v: %v", op, err)
		}
		return err.Error()
	}
	var s string
	switch op {
	case OpLoginReq:
		r, e := ParseLoginReq(b)
		s, err = fmt.Sprintf("tag %v it_iu_len %d buf_fmt %#x flags %#x imm_off %d initiator %x target %x",
			r.Tag, r.ReqITIULen, uint16(r.BufFmt), uint8(r.Flags), r.ImmDataOffset, r.InitiatorPortID, r.TargetPortID), e
	case OpLoginRsp:
		r, e := ParseLoginRsp(b)
		s, err = fmt.Sprintf("tag %v req_lim_delta %d max_it %d max_ti %d buf_fmt %#x flags %#x",
			r.Tag, r.ReqLimDelta, r.MaxITIULen, r.MaxTIIULen, uint16(r.BufFmt), uint8(r.Flags)), e
	case OpLoginRej:
		r, e := ParseLoginRej(b)
		s, err = fmt.Sprintf("tag %v reason %#x (%v)", r.Tag, uint32(r.Reason), r.Reason), e
	case OpCmd:
		c, e := ParseCmd(b, immDataOffset)
		s, err = fmt.Sprintf("tag %v lun %#x attr %d cdb % x out %v/%d in %v/%d",
			c.Tag, c.LUN, c.Attr, c.CDB, c.DataOut.Format, c.DataOut.Len(), c.DataIn.Format, c.DataIn.Len()), e
	case OpRsp:
		r, e := ParseRsp(b)
		s, err = fmt.Sprintf("tag %v req_lim_delta %d status %#x flags %#x resid out %d in %d resp % x sense % x",
			r.Tag, r.ReqLimDelta, r.Status, uint8(r.Flags), r.DataOutResCnt, r.DataInResCnt, r.RespData, r.Sense), e
	case OpTskMgmt:
		t, e := ParseTskMgmt(b)
		s, err = fmt.Sprintf("tag %v lun %#x %v task %v", t.Tag, t.LUN, t.Func, t.TaskTag), e
	case OpILogout:
		l, e := ParseILogout(b)
		s, err = fmt.Sprintf("tag %v", l.Tag), e
	case OpTLogout:
		l, e := ParseTLogout(b)
		s, err = fmt.Sprintf("tag %v reason %d (%v)", l.Tag, uint32(l.Reason), l.Reason), e
	case OpCredReq:
		c, e := ParseCredReq(b)
		s, err = fmt.Sprintf("tag %v req_lim_delta %d", c.Tag, c.ReqLimDelta), e
	case OpCredRsp:
		c, e := ParseCredRsp(b)
		s, err = fmt.Sprintf("tag %v", c.Tag), e
	case OpAerReq:
		a, e := ParseAerReq(b)
		s, err = fmt.Sprintf("tag %v req_lim_delta %d lun %#x sense % x", a.Tag, a.ReqLimDelta, a.LUN, a.Sense), e
	case OpAerRsp:
		a, e := ParseAerRsp(b)
		s, err = fmt.Sprintf("tag %v", a.Tag), e
	}
	var sb strings.Builder
	sb.WriteString(op.String())
	if err != nil {
		sb.WriteString(": ")
		sb.WriteString(err.Error())
		return sb.String()
	}
	sb.WriteByte(' ')
	sb.WriteString(s)
	return sb.String()
}
