package uring

// The io_uring user ABI from <linux/io_uring.h>, which x/sys/unix does not
// carry. Names are the C names in MixedCaps, lower-cased so they stay out of
// the package API; each line gives the C name to grep the kernel for.

// io_uring_setup flags (io_uring_params.flags).
const (
	setupIOPoll       = 1 << 0  // IORING_SETUP_IOPOLL
	setupSQPoll       = 1 << 1  // IORING_SETUP_SQPOLL
	setupSQAff        = 1 << 2  // IORING_SETUP_SQ_AFF
	setupSubmitAll    = 1 << 7  // IORING_SETUP_SUBMIT_ALL (5.18)
	setupCoopTaskrun  = 1 << 8  // IORING_SETUP_COOP_TASKRUN (5.19)
	setupTaskrunFlag  = 1 << 9  // IORING_SETUP_TASKRUN_FLAG (5.19)
	setupSingleIssuer = 1 << 12 // IORING_SETUP_SINGLE_ISSUER (6.0)
	setupDeferTaskrun = 1 << 13 // IORING_SETUP_DEFER_TASKRUN (6.1)
	setupNoSQArray    = 1 << 16 // IORING_SETUP_NO_SQARRAY (6.6)
)

// setupFlagNames names setup flags for Info.Options, in report order.
var setupFlagNames = []struct {
	flag uint32
	name string
}{
	{setupDeferTaskrun, "defer_taskrun"},
	{setupSingleIssuer, "single_issuer"},
	{setupCoopTaskrun, "coop_taskrun"},
	{setupTaskrunFlag, "taskrun_flag"},
	{setupSubmitAll, "submit_all"},
	{setupNoSQArray, "no_sqarray"},
	{setupSQPoll, "sqpoll"},
	{setupSQAff, "sq_aff"},
	{setupIOPoll, "iopoll"},
}

// io_uring_params.features.
const (
	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP (5.4)
)

// Opcodes (io_uring_sqe.opcode).
const (
	opFsync      = 3  // IORING_OP_FSYNC
	opReadFixed  = 4  // IORING_OP_READ_FIXED
	opWriteFixed = 5  // IORING_OP_WRITE_FIXED
	opFallocate  = 17 // IORING_OP_FALLOCATE (5.6)
	opRead       = 22 // IORING_OP_READ (5.6)
	opWrite      = 23 // IORING_OP_WRITE (5.6)
)

const (
	sqeFixedFile  = 1 << 0 // IOSQE_FIXED_FILE
	fsyncDatasync = 1 << 0 // IORING_FSYNC_DATASYNC
)

// io_uring_enter flags.
const (
	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS
	enterSQWakeup  = 1 << 1 // IORING_ENTER_SQ_WAKEUP
)

// SQ ring flags (the word at io_sqring_offsets.flags), written by the kernel.
const (
	sqNeedWakeup = 1 << 0 // IORING_SQ_NEED_WAKEUP: the SQPOLL thread sleeps
	sqCQOverflow = 1 << 1 // IORING_SQ_CQ_OVERFLOW: CQEs wait in the kernel's overflow list
	sqTaskrun    = 1 << 2 // IORING_SQ_TASKRUN: task work waits for an io_uring_enter
)

// io_uring_register opcodes.
const (
	registerBuffers = 0 // IORING_REGISTER_BUFFERS
	registerFiles   = 2 // IORING_REGISTER_FILES
	registerEventfd = 4 // IORING_REGISTER_EVENTFD
)

// mmap offsets of the three shared areas.
const (
	offSQRing = 0          // IORING_OFF_SQ_RING
	offCQRing = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES
)

const (
	// maxEntries is the largest SQ a ring may have (IORING_MAX_ENTRIES).
	maxEntries = 32768
	// maxBufLen is the most one registered buffer (iovec) may span: the
	// kernel refuses larger ones with EFAULT (io_buffer_validate, SZ_1G).
	maxBufLen = 1 << 30
	// maxBuffers is the most buffers one ring may register
	// (IORING_MAX_REG_BUFFERS).
	maxBuffers = 1 << 14
)

// params is struct io_uring_params (120 bytes).
type params struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32 // milliseconds
	features     uint32
	wqFD         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

// sqringOffsets is struct io_sqring_offsets: byte offsets into the SQ ring.
type sqringOffsets struct {
	head        uint32
	tail        uint32
	ringMask    uint32
	ringEntries uint32
	flags       uint32
	dropped     uint32
	array       uint32
	resv1       uint32
	userAddr    uint64
}

// cqringOffsets is struct io_cqring_offsets: byte offsets into the CQ ring.
type cqringOffsets struct {
	head        uint32
	tail        uint32
	ringMask    uint32
	ringEntries uint32
	overflow    uint32
	cqes        uint32
	flags       uint32
	resv1       uint32
	userAddr    uint64
}

// sqe is struct io_uring_sqe (64 bytes), with the unions named for the
// members this package uses.
type sqe struct {
	opcode   uint8
	flags    uint8  // IOSQE_*
	ioprio   uint16 //
	fd       int32  // file descriptor, or registered file index with IOSQE_FIXED_FILE
	off      uint64 // file offset
	addr     uint64 // buffer address; length for FALLOCATE
	len      uint32 // buffer length; mode for FALLOCATE
	opFlags  uint32 // rw_flags (RWF_*), fsync_flags
	userData uint64 // returned in the CQE: our slot index
	bufIndex uint16 // registered buffer for READ_FIXED/WRITE_FIXED
	personal uint16 // personality
	spliceFD int32  // splice_fd_in / file_index
	addr3    uint64
	pad2     uint64
}

// cqe is struct io_uring_cqe (16 bytes; this package never asks for CQE32).
type cqe struct {
	userData uint64
	res      int32 // bytes moved, or -errno
	flags    uint32
}
