package srp

import "strconv"

// BufFmt is the 16-bit buffer format set of a login (REQUIRED / SUPPORTED
// BUFFER FORMATS, SRP r16a tables 10 and 11).
type BufFmt uint16

// Buffer formats.
const (
	BufDirect   BufFmt = 1 << 1 // SRP_BUF_FORMAT_DIRECT
	BufIndirect BufFmt = 1 << 2 // SRP_BUF_FORMAT_INDIRECT
)

// LoginFlags is REQ_FLAGS of SRP_LOGIN_REQ (SRP r16a table 10; SRP-2 adds
// IMMED_REQUESTED).
type LoginFlags uint8

// Login request flags.
const (
	MultiChanSingle   LoginFlags = 0    // terminate the nexus's other channels
	MultiChanMulti    LoginFlags = 1    // keep them
	MultiChanMask     LoginFlags = 0x03 // MULTI-CHANNEL ACTION; 2 and 3 are reserved
	LoginLOSolNt      LoginFlags = 0x10 // solicited notification on SRP_T_LOGOUT
	LoginCRSolNt      LoginFlags = 0x20 // on SRP_CRED_REQ
	LoginAESolNt      LoginFlags = 0x40 // on SRP_AER_REQ
	LoginImmRequested LoginFlags = 0x80 // SRP-2 IMMED_REQUESTED
)

// LoginReq is SRP_LOGIN_REQ decoded, from either wire form: the 64-byte IU
// (IB/CM private data) or the 56-byte RDMA/CM private data.
type LoginReq struct {
	Tag             Tag
	ReqITIULen      uint32 // the longest I→T IU the initiator will send
	BufFmt          BufFmt // REQUIRED BUFFER FORMATS
	Flags           LoginFlags
	ImmDataOffset   uint16   // SRP-2: where immediate data starts in SRP_CMD
	InitiatorPortID [16]byte // rev16a: initiator_ext ‖ port GUID
	TargetPortID    [16]byte // rev16a: id_ext ‖ ioc_guid
}

// MultiChan is the MULTI-CHANNEL ACTION.
func (r *LoginReq) MultiChan() LoginFlags { return r.Flags & MultiChanMask }

// ImmRequested reports IMMED_REQUESTED.
func (r *LoginReq) ImmRequested() bool { return r.Flags&LoginImmRequested != 0 }

func (r *LoginReq) validate() error {
	if r.ReqITIULen < MinITIULen {
		return ErrLoginITIULen
	}
	if r.Flags&MultiChanMask > MultiChanMulti {
		return ErrLoginMultiChan
	}
	return nil
}

// ParseLoginReq decodes the 64-byte SRP_LOGIN_REQ (offsets: srp.h struct
// srp_login_req). Beyond length and type it checks REQUEST IT IU LENGTH ≥
// 64 and that MULTI-CHANNEL ACTION is not reserved; the rest (lengths the
// target can take, buffer formats, port IDs) is the target's policy.
// Errors are login rules: answer with SRP_LOGIN_REJ.
func ParseLoginReq(b []byte) (LoginReq, error) {
	var r LoginReq
	if len(b) < LoginReqLen {
		return r, ErrLoginShort
	}
	if Opcode(b[0]) != OpLoginReq {
		return r, ErrLoginOpcode
	}
	r.Tag = tagAt(b, 8)
	r.ReqITIULen = be.Uint32(b[16:])
	r.BufFmt = BufFmt(be.Uint16(b[24:]))
	r.Flags = LoginFlags(b[26])
	r.ImmDataOffset = be.Uint16(b[28:])
	copy(r.InitiatorPortID[:], b[32:48])
	copy(r.TargetPortID[:], b[48:64])
	return r, r.validate()
}

// ParseLoginReqRDMA decodes the 56-byte RDMA/CM form (srp.h struct
// srp_login_req_rdma: tag first, opcode at byte 11), with the same rules
// as ParseLoginReq. Private data may arrive padded; bytes past 56 are
// ignored.
func ParseLoginReqRDMA(b []byte) (LoginReq, error) {
	var r LoginReq
	if len(b) < LoginReqRDMALen {
		return r, ErrLoginShort
	}
	if Opcode(b[11]) != OpLoginReq {
		return r, ErrLoginOpcode
	}
	r.Tag = tagAt(b, 0)
	r.BufFmt = BufFmt(be.Uint16(b[8:]))
	r.Flags = LoginFlags(b[10])
	r.ReqITIULen = be.Uint32(b[12:])
	copy(r.InitiatorPortID[:], b[16:32])
	copy(r.TargetPortID[:], b[32:48])
	r.ImmDataOffset = be.Uint16(b[48:])
	return r, r.validate()
}

// Put writes r as the 64-byte IU into b and returns LoginReqLen, or 0 when
// b is shorter.
func (r *LoginReq) Put(b []byte) int {
	if len(b) < LoginReqLen {
		return 0
	}
	b = b[:LoginReqLen]
	clear(b)
	b[0] = byte(OpLoginReq)
	copy(b[8:], r.Tag[:])
	be.PutUint32(b[16:], r.ReqITIULen)
	be.PutUint16(b[24:], uint16(r.BufFmt))
	b[26] = byte(r.Flags)
	be.PutUint16(b[28:], r.ImmDataOffset)
	copy(b[32:], r.InitiatorPortID[:])
	copy(b[48:], r.TargetPortID[:])
	return LoginReqLen
}

// PutRDMA writes r as the 56-byte RDMA/CM private data into b and returns
// LoginReqRDMALen, or 0 when b is shorter.
func (r *LoginReq) PutRDMA(b []byte) int {
	if len(b) < LoginReqRDMALen {
		return 0
	}
	b = b[:LoginReqRDMALen]
	clear(b)
	copy(b[0:], r.Tag[:])
	be.PutUint16(b[8:], uint16(r.BufFmt))
	b[10] = byte(r.Flags)
	b[11] = byte(OpLoginReq)
	be.PutUint32(b[12:], r.ReqITIULen)
	copy(b[16:], r.InitiatorPortID[:])
	copy(b[32:], r.TargetPortID[:])
	be.PutUint16(b[48:], r.ImmDataOffset)
	return LoginReqRDMALen
}

// LoginRspFlags is RSP_FLAGS of SRP_LOGIN_RSP (SRP r16a table 12).
type LoginRspFlags uint8

// Login response flags.
const (
	ChanNone       LoginRspFlags = 0    // MULTI-CHANNEL RESULT: no other channel existed
	ChanTerminated LoginRspFlags = 1    // other channels of the nexus were terminated
	ChanMaintained LoginRspFlags = 2    // other channels were kept
	ChanResultMask LoginRspFlags = 0x03 // MULTI-CHANNEL RESULT
	LoginSolNtSup  LoginRspFlags = 0x10 // SOLNTSUP: solicited notifications supported
	LoginImmSupp   LoginRspFlags = 0x80 // SRP-2 IMMED_SUPPORTED
)

// LoginRsp is SRP_LOGIN_RSP (srp.h struct srp_login_rsp).
type LoginRsp struct {
	Tag         Tag
	ReqLimDelta uint32 // initial credits
	MaxITIULen  uint32 // the longest I→T IU the target takes
	MaxTIIULen  uint32 // the longest T→I IU it sends
	BufFmt      BufFmt // SUPPORTED BUFFER FORMATS
	Flags       LoginRspFlags
}

// Put writes r into b and returns LoginRspLen, or 0 when b is shorter.
func (r *LoginRsp) Put(b []byte) int {
	if len(b) < LoginRspLen {
		return 0
	}
	b = b[:LoginRspLen]
	clear(b)
	b[0] = byte(OpLoginRsp)
	be.PutUint32(b[4:], r.ReqLimDelta)
	copy(b[8:], r.Tag[:])
	be.PutUint32(b[16:], r.MaxITIULen)
	be.PutUint32(b[20:], r.MaxTIIULen)
	be.PutUint16(b[24:], uint16(r.BufFmt))
	b[26] = byte(r.Flags)
	return LoginRspLen
}

// ParseLoginRsp decodes SRP_LOGIN_RSP (for an initiator).
func ParseLoginRsp(b []byte) (LoginRsp, error) {
	var r LoginRsp
	if err := check(b, OpLoginRsp, LoginRspLen); err != nil {
		return r, err
	}
	r.ReqLimDelta = be.Uint32(b[4:])
	r.Tag = tagAt(b, 8)
	r.MaxITIULen = be.Uint32(b[16:])
	r.MaxTIIULen = be.Uint32(b[20:])
	r.BufFmt = BufFmt(be.Uint16(b[24:]))
	r.Flags = LoginRspFlags(b[26])
	return r, nil
}

// RejReason is the REASON of SRP_LOGIN_REJ (SRP r16a table 13; srp.h).
type RejReason uint32

// Login reject reasons.
const (
	RejUnable             RejReason = 0x00010000 // unable to establish RDMA channel, no reason given
	RejNoResources        RejReason = 0x00010001 // insufficient RDMA channel resources
	RejITIULenTooLarge    RejReason = 0x00010002 // requested IT IU length too large (ib_srpt: or below 64)
	RejUnableAssociate    RejReason = 0x00010003 // unable to associate channel with the I_T nexus
	RejUnsupportedDescFmt RejReason = 0x00010004 // unsupported buffer descriptor format
	RejNoMultiChan        RejReason = 0x00010005 // multi-channel operation not supported
	RejChanLimit          RejReason = 0x00010006 // channel limit for the I_T nexus reached
)

func (r RejReason) String() string {
	switch r {
	case RejUnable:
		return "unable to establish RDMA channel"
	case RejNoResources:
		return "insufficient RDMA channel resources"
	case RejITIULenTooLarge:
		return "requested IT IU length too large"
	case RejUnableAssociate:
		return "unable to associate RDMA channel with I_T nexus"
	case RejUnsupportedDescFmt:
		return "unsupported buffer descriptor format"
	case RejNoMultiChan:
		return "multi-channel operation not supported"
	case RejChanLimit:
		return "channel limit reached for I_T nexus"
	}
	return "RejReason(0x" + strconv.FormatUint(uint64(r), 16) + ")"
}

// LoginRej is SRP_LOGIN_REJ (srp.h struct srp_login_rej).
type LoginRej struct {
	Tag    Tag
	Reason RejReason
	BufFmt BufFmt // SUPPORTED BUFFER FORMATS (ib_srpt sends DIRECT|INDIRECT)
}

// Put writes r into b and returns LoginRejLen, or 0 when b is shorter.
func (r *LoginRej) Put(b []byte) int {
	if len(b) < LoginRejLen {
		return 0
	}
	b = b[:LoginRejLen]
	clear(b)
	b[0] = byte(OpLoginRej)
	be.PutUint32(b[4:], uint32(r.Reason))
	copy(b[8:], r.Tag[:])
	be.PutUint16(b[24:], uint16(r.BufFmt))
	return LoginRejLen
}

// ParseLoginRej decodes SRP_LOGIN_REJ (for an initiator).
func ParseLoginRej(b []byte) (LoginRej, error) {
	var r LoginRej
	if err := check(b, OpLoginRej, LoginRejLen); err != nil {
		return r, err
	}
	r.Reason = RejReason(be.Uint32(b[4:]))
	r.Tag = tagAt(b, 8)
	r.BufFmt = BufFmt(be.Uint16(b[24:]))
	return r, nil
}
