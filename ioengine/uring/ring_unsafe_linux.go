package uring

// This file is the package's only use of unsafe. It does four things the
// io_uring ABI needs and Go cannot say safely: pass pointers to the kernel
// in raw system calls, view the rings the kernel shares with us through mmap
// as Go values, take the address of a request's buffer for an SQE, and check
// the Go layouts of the ABI structs against the C ones at compile time.

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ABI structs must match <linux/io_uring.h> byte for byte: the kernel
// reads and writes them at these offsets. A mismatch fails the build here
// (a negative or non-zero array length in a [0]struct{} assignment).
var (
	_ [0]struct{} = [unsafe.Sizeof(params{}) - 120]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(params{}.sqOff) - 40]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(params{}.cqOff) - 80]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(sqringOffsets{}) - 40]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(cqringOffsets{}) - 40]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(sqe{}) - 64]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.off) - 8]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.addr) - 16]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.len) - 24]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.opFlags) - 28]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.userData) - 32]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.bufIndex) - 40]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.personal) - 42]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.spliceFD) - 44]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.addr3) - 48]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(sqe{}.pad2) - 56]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(cqe{}) - 16]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(cqe{}.res) - 8]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(cqe{}.flags) - 12]struct{}{}
)

// ioUringSetup is io_uring_setup(2). p is Go memory the kernel reads and
// writes during the call only; the unsafe.Pointer conversion inside the
// Syscall argument list keeps it alive and unmoved until the call returns
// (rule 4 of package unsafe).
func ioUringSetup(entries uint32, p *params) (int, syscall.Errno) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), 0
}

// ioUringRegister is io_uring_register(2). arg points at Go memory (an array
// of fds, iovecs or one eventfd) that the kernel copies during the call and
// does not keep; rule 4 again keeps it valid for the call.
func ioUringRegister(fd int, op uint32, arg unsafe.Pointer, nr uint32) syscall.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
	return errno
}

// registerFileTable registers fds as the ring's fixed files.
func registerFileTable(ringFD int, fds []int32) syscall.Errno {
	if len(fds) == 0 {
		return unix.EINVAL
	}
	return ioUringRegister(ringFD, registerFiles, unsafe.Pointer(&fds[0]), uint32(len(fds)))
}

// registerBufferTable registers iovs as the ring's fixed buffers. The iovec
// array is copied by the kernel; the memory the iovecs point at is pinned by
// the kernel (FOLL_LONGTERM) until the ring is closed, which is why it must
// be off-heap (hugemem) or otherwise kept alive by the Queue.
func registerBufferTable(ringFD int, iovs []unix.Iovec) syscall.Errno {
	if len(iovs) == 0 {
		return unix.EINVAL
	}
	return ioUringRegister(ringFD, registerBuffers, unsafe.Pointer(&iovs[0]), uint32(len(iovs)))
}

// registerEventFD makes the ring signal efd when it posts completions.
func registerEventFD(ringFD int, efd int32) syscall.Errno {
	return ioUringRegister(ringFD, registerEventfd, unsafe.Pointer(&efd), 1)
}

// iovecFor is the iovec for b. The iovec's Base is a *byte into b's memory;
// the kernel copies the iovec and pins the pages it describes.
func iovecFor(b []byte) unix.Iovec {
	iov := unix.Iovec{Base: unsafe.SliceData(b)}
	iov.SetLen(len(b))
	return iov
}

// sliceAddr is the address of b's first byte, for an SQE's addr field and
// for matching a buffer against the registered regions. Turning the pointer
// into an integer is sound because Go's collector does not move objects and
// the Queue keeps b reachable (through the Request in its slot table) until
// the kernel is done with it; hugemem buffers are outside the heap anyway.
func sliceAddr(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// u32At views the uint32 at off in a ring mapping. The kernel places every
// ring field at a 4-aligned offset inside the mapping (checked here against
// the mapping's length), and the mapping is outside the Go heap, so the
// pointer stays valid until munmap, which Queue.Close does last.
func u32At(mem []byte, off uint32) (*uint32, error) {
	if off%4 != 0 || uint64(off)+4 > uint64(len(mem)) {
		return nil, fmt.Errorf("ring offset %d outside a %d-byte mapping", off, len(mem))
	}
	return (*uint32)(unsafe.Pointer(&mem[off])), nil
}

// sqeSlice views n SQEs at the start of the SQE mapping. The kernel lays
// them out as a packed array of 64-byte structs on a page boundary.
func sqeSlice(mem []byte, n uint32) ([]sqe, error) {
	if n == 0 || uint64(n)*uint64(unsafe.Sizeof(sqe{})) > uint64(len(mem)) {
		return nil, fmt.Errorf("%d SQEs do not fit a %d-byte mapping", n, len(mem))
	}
	return unsafe.Slice((*sqe)(unsafe.Pointer(&mem[0])), n), nil
}

// cqeSlice views n CQEs at off in the CQ ring mapping: a packed array of
// 16-byte structs at a 16-aligned offset (cq_off.cqes).
func cqeSlice(mem []byte, off, n uint32) ([]cqe, error) {
	size := uint64(n) * uint64(unsafe.Sizeof(cqe{}))
	if n == 0 || off%16 != 0 || uint64(off)+size > uint64(len(mem)) {
		return nil, fmt.Errorf("%d CQEs at offset %d do not fit a %d-byte mapping", n, off, len(mem))
	}
	return unsafe.Slice((*cqe)(unsafe.Pointer(&mem[off])), n), nil
}
