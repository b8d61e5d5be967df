package blockfile

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlGetUint64 is the ioctl(2) x/sys lacks for BLKGETSIZE64, whose argument
// is a u64 the kernel writes.
func ioctlGetUint64(fd int, req uint) (uint64, error) {
	var v uint64
	// The uintptr conversion sits in the call expression, so v stays alive
	// and in place for the whole system call (unsafe.Pointer rule 4).
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&v)))
	if e != 0 {
		return 0, e
	}
	return v, nil
}

// ioctlRange issues BLKDISCARD or BLKZEROOUT, whose argument is a u64[2] of
// byte offset and length. It does not allocate: r stays on the stack.
func ioctlRange(fd int, req uint, off, n int64) syscall.Errno {
	r := [2]uint64{uint64(off), uint64(n)}
	// See ioctlGetUint64 for why the conversion is sound.
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&r)))
	return e
}
