package poller_test

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func observedCPU(t testing.TB) int {
	var cpu, node uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0); e != 0 {
		t.Fatal(e)
	}
	return int(cpu)
}
