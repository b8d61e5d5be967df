package srp

import "strconv"

// RspFlags is byte 18 of SRP_RSP (SRP r16a table 19; srp.h).
type RspFlags uint8

// Response flags.
const (
	RspValid RspFlags = 0x01 // RSPVALID: response data present
	SnsValid RspFlags = 0x02 // SNSVALID: sense data present
	DOOver   RspFlags = 0x04 // DATA-OUT residual: overflow
	DOUnder  RspFlags = 0x08 // DATA-OUT residual: underflow
	DIOver   RspFlags = 0x10 // DATA-IN residual: overflow
	DIUnder  RspFlags = 0x20 // DATA-IN residual: underflow
)

// RspCode is the RSP_CODE in byte 3 of a task management response's
// 4-byte response data (SRP r16a table 20; ib_srpt.h).
type RspCode uint8

// Task management response codes.
const (
	TMFComplete     RspCode = 0x00 // function complete or succeeded
	TMFNotSupported RspCode = 0x04 // function not supported (or rejected)
	TMFFailed       RspCode = 0x05 // function failed
)

// TMRespLen is the response data length of a task management SRP_RSP.
const TMRespLen = 4

// Rsp is SRP_RSP (srp.h struct srp_rsp). RespData and Sense alias the IU
// when parsed.
type Rsp struct {
	Tag           Tag
	SolNot        uint8
	ReqLimDelta   uint32
	Flags         RspFlags // Put computes RSPVALID and SNSVALID itself
	Status        uint8    // SCSI status
	DataOutResCnt uint32
	DataInResCnt  uint32
	RespData      []byte
	Sense         []byte
}

// Put writes r into b and returns its length: 36 bytes, the response data,
// then as much of the sense data as fits in b (ib_srpt truncates sense the
// same way; pass b[:max_ti_iu_len]). RSPVALID and SNSVALID follow whether
// RespData and the written Sense are empty. It returns 0 when b cannot
// hold the header and the response data.
func (r *Rsp) Put(b []byte) int {
	if len(b) < RspLen || len(b)-RspLen < len(r.RespData) {
		return 0
	}
	n := RspLen + len(r.RespData)
	sense := min(len(r.Sense), len(b)-n)
	b = b[:n+sense]
	clear(b[:RspLen])
	flags := r.Flags &^ (RspValid | SnsValid)
	if len(r.RespData) > 0 {
		flags |= RspValid
	}
	if sense > 0 {
		flags |= SnsValid
	}
	b[0] = byte(OpRsp)
	b[1] = r.SolNot
	be.PutUint32(b[4:], r.ReqLimDelta)
	copy(b[8:], r.Tag[:])
	b[18] = byte(flags)
	b[19] = r.Status
	be.PutUint32(b[20:], r.DataOutResCnt)
	be.PutUint32(b[24:], r.DataInResCnt)
	be.PutUint32(b[28:], uint32(sense))
	be.PutUint32(b[32:], uint32(len(r.RespData)))
	copy(b[RspLen:], r.RespData)
	copy(b[n:], r.Sense[:sense])
	return n + sense
}

// PutTMRsp writes the SRP_RSP that answers a task management request: no
// SCSI status, RSPVALID and 4 bytes of response data with code in byte 3.
// It returns RspLen+4, or 0 when b is shorter.
func PutTMRsp(b []byte, tag Tag, reqLimDelta uint32, code RspCode) int {
	resp := [TMRespLen]byte{3: byte(code)}
	r := Rsp{Tag: tag, ReqLimDelta: reqLimDelta, RespData: resp[:]}
	return r.Put(b)
}

// ParseRsp decodes SRP_RSP (for an initiator): the response data
// (RSPVALID) and then the sense data (SNSVALID) must lie inside the IU,
// and no direction may be both over and under. A length whose valid bit
// is clear is ignored.
func ParseRsp(b []byte) (Rsp, error) {
	var r Rsp
	if err := check(b, OpRsp, RspLen); err != nil {
		return r, err
	}
	r.SolNot = b[1]
	r.ReqLimDelta = be.Uint32(b[4:])
	r.Tag = tagAt(b, 8)
	r.Flags = RspFlags(b[18])
	r.Status = b[19]
	r.DataOutResCnt = be.Uint32(b[20:])
	r.DataInResCnt = be.Uint32(b[24:])
	if r.Flags&(DOOver|DOUnder) == DOOver|DOUnder || r.Flags&(DIOver|DIUnder) == DIOver|DIUnder {
		return r, ErrRspResid
	}
	off := uint64(RspLen)
	if r.Flags&RspValid != 0 {
		n := uint64(be.Uint32(b[32:]))
		if off+n > uint64(len(b)) {
			return r, ErrRspLen
		}
		r.RespData = b[off : off+n]
		off += n
	}
	if r.Flags&SnsValid != 0 {
		n := uint64(be.Uint32(b[28:]))
		if off+n > uint64(len(b)) {
			return r, ErrRspLen
		}
		r.Sense = b[off : off+n]
	}
	return r, nil
}

// TMRspCode returns the RSP_CODE of a task management response; ok is
// false when r carries no 4-byte response data.
func (r *Rsp) TMRspCode() (code RspCode, ok bool) {
	if r.Flags&RspValid == 0 || len(r.RespData) < TMRespLen {
		return 0, false
	}
	return RspCode(r.RespData[3]), true
}

// TMFunc is TASK MANAGEMENT FUNCTION of SRP_TSK_MGMT (SRP r16a table 15).
type TMFunc uint8

// Task management functions.
const (
	TMFAbortTask    TMFunc = 0x01
	TMFAbortTaskSet TMFunc = 0x02
	TMFClearTaskSet TMFunc = 0x04
	TMFLUNReset     TMFunc = 0x08
	TMFClearACA     TMFunc = 0x40
)

// Known reports a function of SRP r16a. Others are answered with RSP_CODE
// TMFNotSupported, not by a parse error.
func (f TMFunc) Known() bool {
	switch f {
	case TMFAbortTask, TMFAbortTaskSet, TMFClearTaskSet, TMFLUNReset, TMFClearACA:
		return true
	}
	return false
}

func (f TMFunc) String() string {
	switch f {
	case TMFAbortTask:
		return "ABORT TASK"
	case TMFAbortTaskSet:
		return "ABORT TASK SET"
	case TMFClearTaskSet:
		return "CLEAR TASK SET"
	case TMFLUNReset:
		return "LOGICAL UNIT RESET"
	case TMFClearACA:
		return "CLEAR ACA"
	}
	return "TMFunc(0x" + strconv.FormatUint(uint64(f), 16) + ")"
}

// TskMgmt is SRP_TSK_MGMT (srp.h struct srp_tsk_mgmt).
type TskMgmt struct {
	Tag     Tag
	SolNot  uint8
	LUN     uint64
	Func    TMFunc
	TaskTag Tag // ABORT TASK: the tag of the task to abort
}

// ParseTskMgmt decodes SRP_TSK_MGMT; only the length and type are rules.
func ParseTskMgmt(b []byte) (TskMgmt, error) {
	var t TskMgmt
	if err := check(b, OpTskMgmt, TskMgmtLen); err != nil {
		return t, err
	}
	t.SolNot = b[1]
	t.Tag = tagAt(b, 8)
	t.LUN = be.Uint64(b[20:])
	t.Func = TMFunc(b[30])
	t.TaskTag = tagAt(b, 32)
	return t, nil
}

// Put writes t into b and returns TskMgmtLen, or 0 when b is shorter.
func (t *TskMgmt) Put(b []byte) int {
	if len(b) < TskMgmtLen {
		return 0
	}
	b = b[:TskMgmtLen]
	clear(b)
	b[0] = byte(OpTskMgmt)
	b[1] = t.SolNot
	copy(b[8:], t.Tag[:])
	be.PutUint64(b[20:], t.LUN)
	b[30] = byte(t.Func)
	copy(b[32:], t.TaskTag[:])
	return TskMgmtLen
}
