package blockfile

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Discard deallocates [off, off+n): fallocate(PUNCH_HOLE|KEEP_SIZE) on a
// regular file, BLKDISCARD on a block device. Reads of the range may return
// anything afterwards (zeroes, on files). It blocks, does not allocate, and
// may be called from any goroutine. The caller checks the range.
func (f *File) Discard(off, n int64) syscall.Errno {
	if n == 0 {
		return 0
	}
	if f.Kind == Block {
		for {
			// BLKDISCARD, not fallocate(PUNCH_HOLE): on a block device
			// the latter means "zero with unmap, no fallback"
			// (blkdev_fallocate) and fails where discard alone works.
			if e := ioctlRange(f.Fd, unix.BLKDISCARD, off, n); e != unix.EINTR {
				return e
			}
		}
	}
	return fallocate(f.Fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// WriteZeroes makes [off, off+n) read as zeroes: fallocate(ZERO_RANGE) where
// the file system or device has it, else hole punching on a regular file (a
// hole reads as zeroes; tmpfs has no ZERO_RANGE) or BLKZEROOUT on a block
// device. It blocks, does not allocate, and may be called from any goroutine.
func (f *File) WriteZeroes(off, n int64) syscall.Errno {
	if n == 0 {
		return 0
	}
	if !f.noZeroRange.Load() {
		e := fallocate(f.Fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if e != unix.EOPNOTSUPP && e != unix.ENOSYS {
			return e
		}
		// Remember, so the next request skips the failing call. Racing
		// stores of the same value are harmless.
		f.noZeroRange.Store(true)
	}
	if f.Kind == Block {
		for {
			if e := ioctlRange(f.Fd, unix.BLKZEROOUT, off, n); e != unix.EINTR {
				return e
			}
		}
	}
	return fallocate(f.Fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

func fallocate(fd int, mode uint32, off, n int64) syscall.Errno {
	for {
		err := unix.Fallocate(fd, mode, off, n)
		if err == nil {
			return 0
		}
		if e, ok := err.(syscall.Errno); ok {
			if e != unix.EINTR {
				return e
			}
			continue
		}
		return unix.EIO
	}
}
