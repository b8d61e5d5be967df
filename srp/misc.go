package srp

import "strconv"

// TLogoutReason is the REASON of SRP_T_LOGOUT (SRP r16a table 14, as
// iPXE srp.h lists it).
type TLogoutReason uint32

// Target logout reasons.
const (
	LogoutNone          TLogoutReason = 0 // no reason given
	LogoutInactive      TLogoutReason = 1 // inactive RDMA channel
	LogoutInvalidIUType TLogoutReason = 2 // invalid IU type
	LogoutUnexpectedRsp TLogoutReason = 3 // response with no outstanding request
	LogoutMultiChan     TLogoutReason = 4 // terminated by a new login's multi-channel action
	LogoutDataOutFmt    TLogoutReason = 5 // unsupported DATA-OUT descriptor format
	LogoutDataInFmt     TLogoutReason = 6 // unsupported DATA-IN descriptor format
	LogoutInvalidIULen  TLogoutReason = 8 // invalid IU length
)

func (r TLogoutReason) String() string {
	switch r {
	case LogoutNone:
		return "no reason"
	case LogoutInactive:
		return "inactive RDMA channel"
	case LogoutInvalidIUType:
		return "invalid IU type"
	case LogoutUnexpectedRsp:
		return "unexpected response"
	case LogoutMultiChan:
		return "multi-channel action"
	case LogoutDataOutFmt:
		return "unsupported DATA-OUT descriptor format"
	case LogoutDataInFmt:
		return "unsupported DATA-IN descriptor format"
	case LogoutInvalidIULen:
		return "invalid IU length"
	}
	return "TLogoutReason(" + strconv.FormatUint(uint64(r), 10) + ")"
}

// SolNt is the SOLNT bit of SRP_T_LOGOUT, SRP_CRED_REQ and SRP_AER_REQ:
// the initiator asked for solicited notification (LOSOLNT, CRSOLNT,
// AESOLNT at login).
const SolNt = 0x01

// ILogout is SRP_I_LOGOUT (16 bytes: type and tag).
type ILogout struct{ Tag Tag }

// ParseILogout decodes SRP_I_LOGOUT.
func ParseILogout(b []byte) (ILogout, error) {
	if err := check(b, OpILogout, ILogoutLen); err != nil {
		return ILogout{}, err
	}
	return ILogout{Tag: tagAt(b, 8)}, nil
}

// Put writes l into b and returns ILogoutLen, or 0 when b is shorter.
func (l *ILogout) Put(b []byte) int { return putTagOnly(b, OpILogout, l.Tag) }

// TLogout is SRP_T_LOGOUT.
type TLogout struct {
	Tag    Tag
	SolNot uint8
	Reason TLogoutReason
}

// ParseTLogout decodes SRP_T_LOGOUT.
func ParseTLogout(b []byte) (TLogout, error) {
	var l TLogout
	if err := check(b, OpTLogout, TLogoutLen); err != nil {
		return l, err
	}
	l.SolNot = b[1]
	l.Reason = TLogoutReason(be.Uint32(b[4:]))
	l.Tag = tagAt(b, 8)
	return l, nil
}

// Put writes l into b and returns TLogoutLen, or 0 when b is shorter.
func (l *TLogout) Put(b []byte) int {
	return putReq(b, OpTLogout, l.SolNot, uint32(l.Reason), l.Tag)
}

// CredReq is SRP_CRED_REQ: the target grants ReqLimDelta more credits.
type CredReq struct {
	Tag         Tag
	SolNot      uint8
	ReqLimDelta uint32
}

// ParseCredReq decodes SRP_CRED_REQ.
func ParseCredReq(b []byte) (CredReq, error) {
	var c CredReq
	if err := check(b, OpCredReq, CredReqLen); err != nil {
		return c, err
	}
	c.SolNot = b[1]
	c.ReqLimDelta = be.Uint32(b[4:])
	c.Tag = tagAt(b, 8)
	return c, nil
}

// Put writes c into b and returns CredReqLen, or 0 when b is shorter.
func (c *CredReq) Put(b []byte) int {
	return putReq(b, OpCredReq, c.SolNot, c.ReqLimDelta, c.Tag)
}

// CredRsp is SRP_CRED_RSP, the initiator's answer to SRP_CRED_REQ; it
// consumes no credit.
type CredRsp struct{ Tag Tag }

// ParseCredRsp decodes SRP_CRED_RSP.
func ParseCredRsp(b []byte) (CredRsp, error) {
	if err := check(b, OpCredRsp, CredRspLen); err != nil {
		return CredRsp{}, err
	}
	return CredRsp{Tag: tagAt(b, 8)}, nil
}

// Put writes c into b and returns CredRspLen, or 0 when b is shorter.
func (c *CredRsp) Put(b []byte) int { return putTagOnly(b, OpCredRsp, c.Tag) }

// AerReq is SRP_AER_REQ: an asynchronous event for LUN, as sense data.
type AerReq struct {
	Tag         Tag
	SolNot      uint8
	ReqLimDelta uint32
	LUN         uint64
	Sense       []byte
}

// ParseAerReq decodes SRP_AER_REQ; the sense data must lie inside the IU.
func ParseAerReq(b []byte) (AerReq, error) {
	var a AerReq
	if err := check(b, OpAerReq, AerReqLen); err != nil {
		return a, err
	}
	a.SolNot = b[1]
	a.ReqLimDelta = be.Uint32(b[4:])
	a.Tag = tagAt(b, 8)
	a.LUN = be.Uint64(b[20:])
	n := uint64(be.Uint32(b[28:]))
	if n > uint64(len(b)-AerReqLen) {
		return a, ErrSenseLen
	}
	a.Sense = b[AerReqLen : AerReqLen+int(n)]
	return a, nil
}

// Put writes a into b and returns its length, the sense data truncated to
// what fits in b, or 0 when b is shorter than AerReqLen.
func (a *AerReq) Put(b []byte) int {
	if len(b) < AerReqLen {
		return 0
	}
	sense := min(len(a.Sense), len(b)-AerReqLen)
	b = b[:AerReqLen+sense]
	clear(b[:AerReqLen])
	b[0] = byte(OpAerReq)
	b[1] = a.SolNot
	be.PutUint32(b[4:], a.ReqLimDelta)
	copy(b[8:], a.Tag[:])
	be.PutUint64(b[20:], a.LUN)
	be.PutUint32(b[28:], uint32(sense))
	copy(b[AerReqLen:], a.Sense[:sense])
	return len(b)
}

// AerRsp is SRP_AER_RSP, the initiator's answer to SRP_AER_REQ.
type AerRsp struct{ Tag Tag }

// ParseAerRsp decodes SRP_AER_RSP.
func ParseAerRsp(b []byte) (AerRsp, error) {
	if err := check(b, OpAerRsp, AerRspLen); err != nil {
		return AerRsp{}, err
	}
	return AerRsp{Tag: tagAt(b, 8)}, nil
}

// Put writes a into b and returns AerRspLen, or 0 when b is shorter.
func (a *AerRsp) Put(b []byte) int { return putTagOnly(b, OpAerRsp, a.Tag) }

// putTagOnly writes a 16-byte IU of type and tag.
func putTagOnly(b []byte, op Opcode, tag Tag) int {
	if len(b) < 16 {
		return 0
	}
	b = b[:16]
	clear(b)
	b[0] = byte(op)
	copy(b[8:], tag[:])
	return 16
}

// putReq writes the 16-byte T→I request layout: type, SOLNOT, a 32-bit
// field at 4 (reason or REQUEST LIMIT DELTA), tag.
func putReq(b []byte, op Opcode, solNot uint8, v uint32, tag Tag) int {
	if len(b) < 16 {
		return 0
	}
	b = b[:16]
	clear(b)
	b[0] = byte(op)
	b[1] = solNot
	be.PutUint32(b[4:], v)
	copy(b[8:], tag[:])
	return 16
}
