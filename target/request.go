package target

import (
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
)

// reqState is where a request is in its life, after SPDK's
// nvmf_rdma_request_process: each state names what the request waits for.
type reqState uint8

const (
	reqFree       reqState = iota // in the channel's free list
	reqNew                        // just received, being parsed
	reqNeedBuffer                 // waiting in the reactor's list for a data buffer
	reqFetchTable                 // RDMA READ of an external descriptor table, posted or waiting for a read slot
	reqReading                    // RDMA READs of the data-out, posted or waiting for read slots
	reqExecuting                  // in the scsi Executor
	reqTMF                        // task management, waiting for every reactor's part
	reqWaitSQ                     // response (and data-in) waiting for send queue slots
	reqSending                    // response posted, waiting for its send completion
)

var reqStateNames = [...]string{"FREE", "NEW", "NEED_BUFFER", "FETCH_TABLE", "READING", "EXECUTING", "TMF", "WAIT_SQ", "SENDING"}

func (s reqState) String() string {
	if int(s) < len(reqStateNames) {
		return reqStateNames[s]
	}
	return "reqState(?)"
}

// request is one SRP_CMD or SRP_TSK_MGMT from receive to response. It is
// owned by its channel's reactor. Everything it needs is preallocated.
type request struct {
	ch    *channel
	idx   int32  // in ch.reqs
	id    uint32 // in the reactor's table: Task.User
	state reqState

	recv int32 // receive buffer it holds (the IU), or -1
	t0   int64 // reactor clock when it was received
	iu   []byte
	tag  srp.Tag
	lun  uint64
	task scsi.Task

	// Data.
	dataIn  bool // data-in (read) rather than data-out
	dataLen int  // bytes the descriptors describe (Task.DataLen)
	pool    *hugemem.Pool
	buf     hugemem.Buf // from pool, when pool != nil
	data    []byte      // the data: pool buffer or immediate data in the IU
	imm     []byte      // immediate data to copy into the pool buffer (an O_DIRECT LU)
	descs   []byte      // 16-byte descriptors: the IU's list, direct, or the fetched table
	direct  [srp.DirectDescLen]byte
	table   srp.Desc // external table to fetch
	tblPool *hugemem.Pool
	tblBuf  hugemem.Buf

	// RDMA progress: next descriptor, offset in it, offset in data, bytes left.
	segIdx, segOff, bufOff, left int
	reads                        int // RDMA READs posted and not complete
	held                         int // send slots held by unsignaled WRs

	aborted bool
	wrSig   bool // a signaled RDMA WRITE of r is outstanding: its completion resumes r
	isTMF   bool
	tmf     *tmfFan
	rspCode srp.RspCode

	prev, next *request // in one reqList at a time
	listed     *reqList
}

// reqList is an intrusive FIFO of requests: waiting for buffers, read
// slots or send slots. A request is in at most one list.
type reqList struct {
	head, tail *request
	n          int
}

func (l *reqList) push(r *request) {
	if r.listed != nil {
		panic("target: request already listed")
	}
	r.listed, r.prev, r.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = r
	} else {
		l.head = r
	}
	l.tail = r
	l.n++
}

func (l *reqList) remove(r *request) {
	if r.listed != l {
		return
	}
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		l.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		l.tail = r.prev
	}
	r.prev, r.next, r.listed = nil, nil, nil
	l.n--
}

func (l *reqList) pop() *request {
	r := l.head
	if r != nil {
		l.remove(r)
	}
	return r
}

// nextSeg returns the next RDMA segment of r's descriptors: remote address
// and key, and its length (at most maxLen), advancing the cursor; n is 0
// when the transfer is done. Zero-length descriptors are skipped.
func (r *request) nextSeg(maxLen int) (d srp.Desc, n int) {
	for r.left > 0 && (r.segIdx+1)*srp.DirectDescLen <= len(r.descs) {
		d = srp.DescAt(r.descs[r.segIdx*srp.DirectDescLen:])
		rem := int(d.Len) - r.segOff
		if rem <= 0 {
			r.segIdx++
			r.segOff = 0
			continue
		}
		n = min(rem, maxLen, r.left)
		d.VA += uint64(r.segOff) // wraps like the initiator's address would; the fabric checks the key's range
		r.segOff += n
		r.left -= n
		if r.segOff == int(d.Len) {
			r.segIdx++
			r.segOff = 0
		}
		return d, n
	}
	return d, 0
}

// descTotal sums r.descs' lengths in 64 bits.
func (r *request) descTotal() uint64 {
	var s uint64
	for i := 0; i+srp.DirectDescLen <= len(r.descs); i += srp.DirectDescLen {
		s += uint64(srp.DescAt(r.descs[i:]).Len)
	}
	return s
}
