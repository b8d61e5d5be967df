// Package verbs is the one seam between SRP logic and every RDMA transport:
// the in-process loop fabric (verbs/loop), a user-space RoCEv2 stack
// (verbs/roce) and libibverbs (verbs/ibv). It follows the semantics and the
// names of libibverbs and librdmacm closely, so that code written against
// it behaves the same on a real HCA.
//
// Ownership and threads. A Device, its PDs and MRs may be used from any
// goroutine (registration is control-plane work). A CQ is polled by one
// reactor; a QP is posted to by one reactor; an SRQ is posted to by one
// reactor. Completions appear only when their CQ's owner calls Poll: no
// backend runs a goroutine per operation. Connection management
// (Listen, Connect, Accept, Reject, Disconnect) is control plane and may
// block; its events never pass through the data path.
//
// Zero allocations. PostSend, PostRecv and CQ.Poll take caller-owned
// slices (a batch is a chain) and allocate nothing in any backend; the
// conformance suite (verbstest) checks it.
package verbs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Access flags of a memory region or a QP (IBV_ACCESS_*).
type Access uint32

const (
	AccessLocalWrite  Access = 1 << 0
	AccessRemoteWrite Access = 1 << 1
	AccessRemoteRead  Access = 1 << 2
)

// DeviceAttr is what a device can do (ibv_device_attr and the port's).
type DeviceAttr struct {
	Name            string
	NodeGUID        uint64
	GID             [16]byte // port 1, GID index 0
	MaxQP           int
	MaxQPWR         int    // work requests per send or receive queue
	MaxSGE          int    // scatter/gather entries per work request
	MaxInline       int    // bytes of inline data per send
	MaxCQE          int    // entries per completion queue
	MaxMRSize       uint64 // bytes per memory region
	MaxQPRdAtom     int    // RDMA READs a QP may have outstanding as responder
	MaxQPInitRdAtom int    // RDMA READs a QP may have outstanding as requester
	MaxSRQWR        int    // 0: no shared receive queues
	PathMTU         int    // bytes: 256, 512, 1024, 2048 or 4096
}

// SGE is one scatter/gather element: Len bytes at Addr inside the memory
// region whose local key is LKey.
type SGE struct {
	Addr uint64
	Len  uint32
	LKey uint32
}

// Opcode is a send work request's operation (IBV_WR_*).
type Opcode uint8

const (
	OpSend Opcode = iota
	OpSendWithImm
	OpSendWithInv
	OpRDMAWrite
	OpRDMAWriteWithImm
	OpRDMARead
)

var opcodeNames = [...]string{"SEND", "SEND_WITH_IMM", "SEND_WITH_INV", "RDMA_WRITE", "RDMA_WRITE_WITH_IMM", "RDMA_READ"}

func (o Opcode) String() string {
	if int(o) < len(opcodeNames) {
		return opcodeNames[o]
	}
	return "Opcode(" + strconv.Itoa(int(o)) + ")"
}

// SendFlags modify a send work request (IBV_SEND_*).
type SendFlags uint8

const (
	// SendSignaled asks for a completion; without it (and without
	// QPConfig.SigAll) the WR completes silently unless it fails.
	SendSignaled SendFlags = 1 << iota
	// SendInline copies the data out of the SGEs at post time; the
	// buffers may be reused at once and need no LKey.
	SendInline
	// SendFence waits for earlier RDMA READs to complete first.
	SendFence
	// SendSolicited sets the solicited event bit.
	SendSolicited
)

// SendWR is one send work request. A slice of them posted at once is a
// chain: the backend takes them in order.
type SendWR struct {
	ID         uint64 // returned in the completion
	Op         Opcode
	Flags      SendFlags
	SGL        []SGE  // caller-owned; read during PostSend only
	RemoteAddr uint64 // RDMA: address in the peer's memory region
	RKey       uint32 // RDMA: the peer region's remote key
	Imm        uint32 // *_WITH_IMM: immediate data, in host order
	InvRKey    uint32 // SEND_WITH_INV: the remote key to invalidate
}

// RecvWR is one receive work request.
type RecvWR struct {
	ID  uint64
	SGL []SGE
}

// WCStatus is a work completion's status (IBV_WC_*); the values are
// libibverbs', so ibv can pass them through.
type WCStatus uint8

const (
	WCSuccess        WCStatus = 0
	WCLocLenErr      WCStatus = 1  // local length error: a receive too small, an SGE past its region
	WCLocQPOpErr     WCStatus = 2  // local QP operation error
	WCLocProtErr     WCStatus = 4  // local protection error: a bad lkey, or no local write access
	WCWRFlushErr     WCStatus = 5  // flushed: the QP is in the error state
	WCBadRespErr     WCStatus = 7  // bad response
	WCLocAccessErr   WCStatus = 8  // local access error
	WCRemInvReqErr   WCStatus = 9  // remote invalid request: e.g. a SEND longer than the receive, an unsupported op
	WCRemAccessErr   WCStatus = 10 // remote access error: a bad rkey, range or access right
	WCRemOpErr       WCStatus = 11 // remote operation error
	WCRetryExcErr    WCStatus = 12 // transport retry counter exceeded
	WCRNRRetryExcErr WCStatus = 13 // receiver-not-ready retry counter exceeded
	WCRemAbortErr    WCStatus = 16 // remote aborted
	WCFatalErr       WCStatus = 19 // fatal error
	WCRespTimeoutErr WCStatus = 20 // response timeout
	WCGeneralErr     WCStatus = 21 // general error
)

var wcStatusNames = map[WCStatus]string{
	WCSuccess: "success", WCLocLenErr: "local length error", WCLocQPOpErr: "local QP operation error",
	WCLocProtErr: "local protection error", WCWRFlushErr: "work request flushed error", WCBadRespErr: "bad response error",
	WCLocAccessErr: "local access error", WCRemInvReqErr: "remote invalid request error", WCRemAccessErr: "remote access error",
	WCRemOpErr: "remote operation error", WCRetryExcErr: "transport retry counter exceeded",
	WCRNRRetryExcErr: "RNR retry counter exceeded", WCRemAbortErr: "remote aborted error", WCFatalErr: "fatal error",
	WCRespTimeoutErr: "response timeout error", WCGeneralErr: "general error",
}

// String is ibv_wc_status_str's text.
func (s WCStatus) String() string {
	if n, ok := wcStatusNames[s]; ok {
		return n
	}
	return "WCStatus(" + strconv.Itoa(int(s)) + ")"
}

// WCOpcode says what a completion completes (IBV_WC_*).
type WCOpcode uint8

const (
	WCSend WCOpcode = iota
	WCRDMAWrite
	WCRDMARead
	WCRecv            // a SEND (with or without immediate or invalidate) arrived
	WCRecvRDMAWithImm // an RDMA WRITE with immediate arrived: it consumed a receive
)

// WCFlags qualify a completion.
type WCFlags uint8

const (
	WCWithImm WCFlags = 1 << iota // Imm is valid
	WCWithInv                     // InvRKey is valid: the sender invalidated it
)

// WC is one work completion. For an error other than WCSuccess only ID,
// Status, QPN and VendorErr are meaningful (as in libibverbs).
type WC struct {
	ID        uint64
	Status    WCStatus
	Op        WCOpcode
	Flags     WCFlags
	Len       uint32 // bytes received (WCRecv, WCRecvRDMAWithImm)
	QPN       uint32
	Imm       uint32
	InvRKey   uint32
	VendorErr uint32
}

// QPState is a queue pair's state (IBV_QPS_*).
type QPState uint8

const (
	QPReset QPState = iota
	QPInit
	QPRTR
	QPRTS
	QPSQD
	QPSQE
	QPErr
)

var qpStateNames = [...]string{"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"}

func (s QPState) String() string {
	if int(s) < len(qpStateNames) {
		return qpStateNames[s]
	}
	return "QPState(" + strconv.Itoa(int(s)) + ")"
}

// QPConfig creates a reliable-connected queue pair (ibv_qp_init_attr).
type QPConfig struct {
	SendCQ, RecvCQ CQ
	SRQ            SRQ // receives come from it instead of the QP's own queue
	MaxSendWR      int
	MaxRecvWR      int // ignored with SRQ
	MaxSendSGE     int
	MaxRecvSGE     int
	MaxInline      int
	SigAll         bool // every send WR completes as if SendSignaled
}

// QPAttr is what Modify changes (ibv_qp_attr); which fields matter
// depends on the transition, as in ibv_modify_qp.
type QPAttr struct {
	State  QPState
	Access Access // INIT: what the peer may do to our memory through this QP
	// RTR.
	DestQPN         uint32
	RQPSN           uint32 // 24 bits
	PathMTU         int
	MaxDestRdAtomic int   // RDMA READs the peer may have outstanding at us
	MinRNRTimer     uint8 // IB encoding (0-31)
	// RTS.
	SQPSN       uint32 // 24 bits
	Timeout     uint8  // IB encoding: 4.096 µs × 2^Timeout; 0 is infinite
	RetryCnt    uint8  // 0-7
	RNRRetry    uint8  // 0-7; 7 is infinite
	MaxRdAtomic int    // RDMA READs we may have outstanding at the peer
}

// Device is an RDMA device: a port of an HCA, an rxe device, a loop
// device. Its methods are safe from any goroutine.
type Device interface {
	Attr() DeviceAttr
	AllocPD() (PD, error)
	CreateCQ(entries int) (CQ, error)
	// Listen starts accepting connections at addr (backend-specific:
	// "IP:port" for roce and ibv, any name for loop).
	Listen(addr string) (Listener, error)
	// Connect connects qp (in RESET, or in INIT with receives already
	// posted, as rdma_cm users post them) to the listener at addr, carrying
	// cfg.PrivateData in the request. It returns when the connection is
	// established, with the peer's accept private data, or with a
	// *RejectError carrying the peer's reject private data.
	Connect(ctx context.Context, addr string, qp QP, cfg ConnParam) (Conn, error)
	Close() error
}

// PD is a protection domain.
type PD interface {
	// RegMR registers buf (off-heap memory from internal/hugemem, which
	// does not move) for the access given.
	RegMR(buf []byte, access Access) (MR, error)
	CreateQP(cfg QPConfig) (QP, error)
	CreateSRQ(maxWR, maxSGE int) (SRQ, error)
	Close() error
}

// MR is a registered memory region.
type MR interface {
	LKey() uint32
	RKey() uint32
	Addr() uint64 // the address of Buf()[0], what SGEs and RDMA name
	Buf() []byte
	Access() Access
	Dereg() error
}

// CQ is a completion queue, polled by one reactor.
type CQ interface {
	// Poll moves up to len(wcs) completions into wcs, oldest first, and
	// returns how many. It never blocks.
	Poll(wcs []WC) int
	Close() error
}

// QP is a reliable-connected queue pair, posted to by one reactor.
type QP interface {
	QPN() uint32
	State() QPState
	Modify(attr QPAttr) error
	// PostSend posts wrs in order and returns how many it took; on error
	// wrs[n] is the one refused (ibv_post_send's bad_wr) and none after
	// it was posted. Before RTS it refuses with ErrState.
	PostSend(wrs []SendWR) (int, error)
	// PostRecv posts receives to the QP's own queue; a QP created with an
	// SRQ refuses with ErrInvalid. In the error state they complete at once
	// with WCWRFlushErr, as on hardware.
	PostRecv(wrs []RecvWR) (int, error)
	Close() error
}

// SRQ is a shared receive queue, posted to by one reactor.
type SRQ interface {
	PostRecv(wrs []RecvWR) (int, error)
	Close() error
}

// ConnParam is rdma_conn_param: what each side asks of the connection.
type ConnParam struct {
	PrivateData        []byte
	ResponderResources uint8 // RDMA READs the peer may have outstanding at us
	InitiatorDepth     uint8 // RDMA READs we may have outstanding at the peer
	RetryCount         uint8
	RNRRetryCount      uint8
}

// Peer identifies the other side of a connection request.
type Peer struct {
	GID  [16]byte
	GUID uint64         // the port GUID where the transport has one
	Addr netip.AddrPort // for IP-based transports
}

// Listener hands out connection requests (control plane).
type Listener interface {
	// Accept waits for the next connection request.
	Accept(ctx context.Context) (*ConnRequest, error)
	Addr() string
	Close() error
}

// ConnRequest is one connection request: answer it with Accept or Reject.
type ConnRequest struct {
	Peer        Peer
	PrivateData []byte
	Param       ConnParam // what the requester asked for
	// Device is where the request arrived: create the QP on it.
	Device Device
	// Answer is the backend's half of the request.
	Answer interface {
		Accept(qp QP, param ConnParam) (Conn, error)
		Reject(privateData []byte) error
	}
}

// Accept connects qp (in RESET, or in INIT with receives already posted,
// so that nothing the requester sends first meets an empty receive queue)
// to the requester, sending param's private data, and returns once the
// connection is established. The connection manager sets the QP's access.
func (r *ConnRequest) Accept(qp QP, param ConnParam) (Conn, error) { return r.Answer.Accept(qp, param) }

// Reject refuses the request with privateData (an SRP LOGIN_REJ, say).
func (r *ConnRequest) Reject(privateData []byte) error { return r.Answer.Reject(privateData) }

// Conn is an established connection.
type Conn interface {
	QP() QP
	Peer() Peer
	// PrivateData is what the other side sent with its accept (on the
	// connecting side) or its request (on the accepting side).
	PrivateData() []byte
	// Param is what was agreed (rdma_cm's ESTABLISHED event): this side's
	// ResponderResources (RDMA READs the peer may have outstanding here)
	// and InitiatorDepth (READs this side may have outstanding there),
	// each the lesser of what the two sides offered and the devices allow.
	// PrivateData is not set.
	Param() ConnParam
	// Disconnect ends the connection: both QPs go to the error state and
	// their outstanding work completes with WCWRFlushErr.
	Disconnect() error
	// Done is closed when the connection ends, from either side.
	Done() <-chan struct{}
}

// RejectError is what Connect returns when the peer rejects.
type RejectError struct {
	Reason      uint16 // IB CM reject reason (28: consumer reject)
	PrivateData []byte
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("verbs: connection rejected (reason %d, %d bytes of private data)", e.Reason, len(e.PrivateData))
}

// RejectConsumer is the IB CM reject reason for a reject by the peer's
// application (IB spec table 112).
const RejectConsumer = 28

// Errors returned by Post*, Modify and registration, in the manner of the
// errno values libibverbs returns.
var (
	ErrQueueFull   = errors.New("verbs: work queue full (ENOMEM)")
	ErrInvalid     = errors.New("verbs: invalid work request or attribute (EINVAL)")
	ErrState       = errors.New("verbs: QP state does not allow it (EINVAL)")
	ErrClosed      = errors.New("verbs: closed")
	ErrUnreachable = errors.New("verbs: no listener at the address")
)
