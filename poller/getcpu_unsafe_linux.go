package poller

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// getcpu returns the CPU the calling thread runs on (getcpu(2); x/sys/unix
// has no wrapper). The pointers are to locals that outlive the call, which
// is what the syscall needs.
func getcpu() (int, error) {
	var cpu, node uint32
	_, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(cpu), nil
}
