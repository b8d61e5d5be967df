package srp

import (
	"encoding/binary"
	"strconv"
)

// Opcode is an IU's first byte, its IU type (SRP r16a 5.1 table 8; SRP-2
// adds none; the values of Linux include/scsi/srp.h).
type Opcode uint8

// IU types. The direction is in the comment; T→I IUs have bit 7 set,
// initiator answers to target requests have bit 6 set.
const (
	OpLoginReq Opcode = 0x00 // I→T SRP_LOGIN_REQ
	OpTskMgmt  Opcode = 0x01 // I→T SRP_TSK_MGMT
	OpCmd      Opcode = 0x02 // I→T SRP_CMD
	OpILogout  Opcode = 0x03 // I→T SRP_I_LOGOUT
	OpCredRsp  Opcode = 0x41 // I→T SRP_CRED_RSP, answers SRP_CRED_REQ
	OpAerRsp   Opcode = 0x42 // I→T SRP_AER_RSP, answers SRP_AER_REQ
	OpTLogout  Opcode = 0x80 // T→I SRP_T_LOGOUT
	OpCredReq  Opcode = 0x81 // T→I SRP_CRED_REQ
	OpAerReq   Opcode = 0x82 // T→I SRP_AER_REQ
	OpLoginRsp Opcode = 0xC0 // T→I SRP_LOGIN_RSP
	OpRsp      Opcode = 0xC1 // T→I SRP_RSP
	OpLoginRej Opcode = 0xC2 // T→I SRP_LOGIN_REJ
)

// Known reports whether o is an IU type of SRP r16a.
func (o Opcode) Known() bool {
	switch o {
	case OpLoginReq, OpTskMgmt, OpCmd, OpILogout, OpCredRsp, OpAerRsp,
		OpTLogout, OpCredReq, OpAerReq, OpLoginRsp, OpRsp, OpLoginRej:
		return true
	}
	return false
}

func (o Opcode) String() string {
	switch o {
	case OpLoginReq:
		return "SRP_LOGIN_REQ"
	case OpTskMgmt:
		return "SRP_TSK_MGMT"
	case OpCmd:
		return "SRP_CMD"
	case OpILogout:
		return "SRP_I_LOGOUT"
	case OpCredRsp:
		return "SRP_CRED_RSP"
	case OpAerRsp:
		return "SRP_AER_RSP"
	case OpTLogout:
		return "SRP_T_LOGOUT"
	case OpCredReq:
		return "SRP_CRED_REQ"
	case OpAerReq:
		return "SRP_AER_REQ"
	case OpLoginRsp:
		return "SRP_LOGIN_RSP"
	case OpRsp:
		return "SRP_RSP"
	case OpLoginRej:
		return "SRP_LOGIN_REJ"
	}
	return "Opcode(0x" + strconv.FormatUint(uint64(o), 16) + ")"
}

// Fixed IU and descriptor sizes in bytes (include/scsi/srp.h structs; the
// Linux initiator asserts them with BUILD_BUG_ON in srp_init_module).
const (
	LoginReqLen     = 64 // struct srp_login_req
	LoginReqRDMALen = 56 // struct srp_login_req_rdma: RDMA/CM private data (92 − 36)
	LoginRspLen     = 52 // struct srp_login_rsp
	LoginRejLen     = 32 // struct srp_login_rej
	ILogoutLen      = 16 // struct srp_i_logout
	TLogoutLen      = 16 // struct srp_t_logout
	TskMgmtLen      = 48 // struct srp_tsk_mgmt
	CmdLen          = 48 // struct srp_cmd, without additional CDB and descriptors
	RspLen          = 36 // struct srp_rsp, without response and sense data
	CredReqLen      = 16 // SRP_CRED_REQ
	CredRspLen      = 16 // SRP_CRED_RSP
	AerReqLen       = 36 // struct srp_aer_req, without sense data
	AerRspLen       = 16 // SRP_AER_RSP
	DirectDescLen   = 16 // struct srp_direct_buf
	IndirectHdrLen  = 20 // struct srp_indirect_buf without the partial list
	ImmHdrLen       = 4  // struct srp_imm_buf (SRP-2)
	MaxAddCDBLen    = 252
	// MinITIULen is the smallest REQUEST INFORMATION UNIT LENGTH a login
	// may ask for: an SRP_LOGIN_REQ must fit (ib_srpt rejects less).
	MinITIULen = 64
	// LinuxImmDataOffset is where the Linux initiator puts immediate data
	// (SRP_IMM_DATA_OFFSET: srp_cmd 48 + max additional CDB 16 + srp_imm_buf 4).
	LinuxImmDataOffset = CmdLen + 16 + ImmHdrLen
)

// Tag is the initiator's 8-byte tag. It is opaque: a target copies it from
// the request to the answer byte for byte (the Linux initiator stores a
// host-order u64 there, not a big-endian one).
type Tag [8]byte

// TagOf returns the tag whose Uint64 is u.
func TagOf(u uint64) Tag {
	var t Tag
	binary.LittleEndian.PutUint64(t[:], u)
	return t
}

// Uint64 loads t as a little-endian number: a key for maps and
// scsi.Task.Tag, and on little-endian hosts the number the Linux initiator
// logs. TagOf(t.Uint64()) == t for every t.
func (t Tag) Uint64() uint64 { return binary.LittleEndian.Uint64(t[:]) }

func (t Tag) String() string { return "0x" + strconv.FormatUint(t.Uint64(), 16) }

func tagAt(b []byte, off int) (t Tag) {
	copy(t[:], b[off:off+8])
	return t
}

// Peek returns the IU type in b[0]: ErrShortIU for an empty IU, ErrOpcode
// for a byte that names no IU type (answer: T_LOGOUT, invalid IU type).
func Peek(b []byte) (Opcode, error) {
	if len(b) == 0 {
		return 0, ErrShortIU
	}
	o := Opcode(b[0])
	if !o.Known() {
		return o, ErrOpcode
	}
	return o, nil
}

// check is the common head of every fixed-size IU parser.
func check(b []byte, op Opcode, n int) error {
	if len(b) < n {
		return ErrShortIU
	}
	if Opcode(b[0]) != op {
		return ErrOpcode
	}
	return nil
}

var be = binary.BigEndian
