// Package blockfile opens the files and block devices that usrpt's I/O
// engines (psync, uring) read and write, and describes them: regular file or
// block device, size, logical block size, the file system or the kernel's
// device name behind them, and whether io_uring can complete I/O on them
// without handing every request to a kernel worker (WorkerPunts, which
// `--engine auto` uses to choose psync).
//
// Open takes O_DIRECT by default (callers pass Direct: true) and turns the
// kernel's refusals into errors that say what to change: a file system
// without O_DIRECT, a path the process may not open, a device in use, a size
// that is not a whole number of blocks. Block devices opened for writing are
// opened O_EXCL, so a mounted file system or a device held by swap, dm, md or
// loop is refused rather than corrupted.
//
// Every /sys read goes through internal/sysfs under Config.SysRoot, so the
// device facts (kernel names, rotational, discard, nowait) are tested against
// fake trees.
//
// Open and Close are control-plane calls: they allocate and return wrapped
// errors. File.Discard and File.WriteZeroes are blocking data-path helpers for
// engines: they return a bare errno and do not allocate.
package blockfile
