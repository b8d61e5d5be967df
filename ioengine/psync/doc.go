// Package psync is the I/O engine of plain blocking system calls — pread,
// pwrite, pwritev2, fdatasync, fallocate and the block device ioctls — run
// on a small pool of worker threads per queue. It is for kernels where
// io_uring is missing or disabled, and for targets where io_uring hands every
// request to its own kernel workers anyway (zram, tmpfs: see
// blockfile.File.WorkerPunts), where it is the faster engine: on zram, fio's
// psync does about 3x the IOPS of io_uring at queue depth 1.
//
// # Threads and rings
//
// Each Queue owns Config.Workers goroutines, each locked to its own OS thread
// (not pinned: the scheduler places them where a CPU is free), and talks to
// them only through lock-free rings from internal/ring, never channels or
// mutexes:
//
//	reactor --Submit--> SPSC ring per worker --> worker: one system call
//	reactor <--Poll---- MPSC completion ring <-- workers
//
// Submit checks each request (ioengine.CheckRange), gives it to the worker
// with the fewest busy requests (the lowest index on a tie, so at queue depth
// 1 one worker stays hot and the others sleep) and returns. Rings hold the
// queue's whole depth, so a push never fails.
//
// An idle worker polls its ring for Config.Spin (DefaultSpin, 20 µs), then
// sleeps in read(2) on an eventfd of its own. The handshake is the one of
// package poller's waker (Dekker's): the worker raises its sleeping flag and
// then looks at its ring once more; Poll, after Submit's pushes, loads the
// flag and writes the eventfd only if it is raised, once per Poll for all the
// requests the worker was given. Both sides use sequentially consistent
// atomics, so no request is left with a sleeping worker, and a queue kept busy
// makes no wakeup system call at all.
//
// WaitFD is an eventfd for a reactor that sleeps. It costs nothing until the
// reactor asks for it; from then on, an empty Poll with requests busy raises a
// waiting flag (and looks at the completion ring once more), and the first
// worker to post a completion takes the flag down and writes the eventfd, so a
// reactor that sleeps after an empty Poll is always woken. The next Poll
// drains the eventfd. A busy-polling reactor that asked for WaitFD pays that
// write and read about once per empty-then-full Poll pair.
//
// # Operations
//
//	read          pread
//	write         pwrite; with FlagFUA pwritev2(RWF_DSYNC), or pwrite and
//	              fdatasync on kernels before 4.7
//	flush         fdatasync
//	discard       fallocate(PUNCH_HOLE|KEEP_SIZE) on files, BLKDISCARD on
//	              block devices (blockfile.File.Discard)
//	write-zeroes  fallocate(ZERO_RANGE), else hole punching on files and
//	              BLKZEROOUT on block devices (blockfile.File.WriteZeroes)
//
// EINTR is retried. Every other errno, including EINVAL for O_DIRECT
// misalignment, is the request's result, and a short read or write completes
// with N < len(Buf) and no errno (Request.Err reports ioengine.ErrShort); the
// engine never issues a second call for the remainder. A read-only device
// supports read and flush; discard is offered where the file or device can do
// it (blockfile.File.CanDiscard).
//
// Steady-state Submit, Poll and the workers allocate nothing. Queue.Close
// waits for the requests the workers hold, then stops and joins them.
package psync
