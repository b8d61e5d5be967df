// Package uring is the io_uring engine: block I/O on files and block devices
// through io_uring, written on golang.org/x/sys/unix with no cgo.
//
// It owns the io_uring ABI (the params, SQE and CQE layouts and the shared
// ring protocol, in the *_unsafe_linux.go file and ring_linux.go), one ring
// per Queue. It opens files and block devices with package blockfile, as
// psync does, so both engines see the same size, logical block size and
// open errors.
//
// # Data path
//
// Each reactor makes its own Queue, and with it its own ring. Submit writes
// one SQE per request into the mapped SQ and publishes them with a single
// tail store; Poll makes at most one io_uring_enter for everything queued,
// then reads completions from the mapped CQ without a system call. A
// CQE's user_data is a slot index into the queue's table of requests, never
// a Go pointer. When the ring has nothing to send and the kernel has flagged
// no pending completion work (IORING_SQ_TASKRUN), Poll makes no system call.
// Steady-state Submit and Poll allocate nothing.
//
// Rings are set up with the best flags the kernel takes, falling back on
// EINVAL: SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL|NO_SQARRAY on
// 6.6 and later, then COOP_TASKRUN|TASKRUN_FLAG, then SUBMIT_ALL alone, then
// none. Info().Options lists what took. SINGLE_ISSUER binds a ring to the OS
// thread that made it: see Queue for the contract, and Config.NoSingleIssuer
// to lift it (which also gives up the TASKRUN flags, and with them Poll's
// ability to skip io_uring_enter while completions are pending: without them
// the kernel interrupts the submitting thread to post completions instead).
//
// Each queue registers the device's fd (IORING_REGISTER_FILES) and the
// caller's buffer regions (QueueConfig.Buffers, split into the kernel's 1
// GiB per buffer). A request whose buffer lies inside a registered buffer
// goes as READ_FIXED/WRITE_FIXED, saving the page pinning of each I/O;
// other buffers go as READ/WRITE. If registration fails (ENOMEM under an
// RLIMIT_MEMLOCK without CAP_IPC_LOCK) the queue works unregistered and its
// Options say "fixedbufs=off: <why>".
//
// Operations: read and write (FlagFUA sets RWF_DSYNC), flush as FSYNC with
// IORING_FSYNC_DATASYNC, discard as FALLOCATE PUNCH_HOLE|KEEP_SIZE and
// write-zeroes as FALLOCATE ZERO_RANGE|KEEP_SIZE, on files and on block
// devices (where the kernel turns them into write-zeroes, discard-backed
// for PUNCH_HOLE). Results: a negative CQE res is the request's Errno; a
// read or write that moved less than asked completes with N short and
// Request.Err reporting ioengine.ErrShort.
//
// # SQPOLL and IOPOLL
//
// Both are options and both are off by default. SQPOLL (Config.SQPoll) gives
// each ring a kernel thread that busy-polls the SQ, so submission costs no
// system call; it needs a CPU of its own per ring. On a small shared machine
// it is harmful: on the 2-vCPU development VM (machine-limits.md §1-§2) fio
// with sqthread_poll fell from about 9 K to 0.4 K IOPS at queue depth 1 on
// ext4 and from 79 K to 11 K on zram, with millisecond p99s, because the
// poller competes with the application and io-wq for the same two CPUs. On a
// dedicated host with spare cores and NVMe it removes the submission syscall.
// IOPOLL (Config.IOPoll) busy-polls the device for completions instead of
// taking interrupts; it needs a driver with poll queues (NVMe with
// nvme.poll_queues > 0) and O_DIRECT. Every other device answers each read
// and write with EOPNOTSUPP (all devices on the development VM do), and a
// polled ring refuses fsync and fallocate, so an IOPOLL device supports read
// and write only.
//
// # Availability
//
// Probe says whether io_uring works here and, if not, why (ENOSYS, or EPERM
// from kernel.io_uring_disabled or a seccomp filter); `--engine auto` uses it
// to fall back to psync. Tests skip rather than fail where it does not.
package uring
