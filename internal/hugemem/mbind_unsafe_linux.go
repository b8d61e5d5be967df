package hugemem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mpolPreferred is MPOL_PREFERRED from <linux/mempolicy.h>; x/sys/unix does
// not define the MPOL_ constants.
const mpolPreferred = 1

// mbindPreferred sets MPOL_PREFERRED for node on mem, so pages faulted
// afterwards come from node when it has them and from elsewhere otherwise.
//
// This is the package's one use of unsafe: x/sys/unix has no mbind wrapper,
// so the raw syscall takes the mapping's address and a pointer to the node
// mask. Both are sound: mem is an mmap'd region outside the Go heap that the
// collector neither moves nor frees, and mask is kept alive across the call
// by the unsafe.Pointer conversion in the Syscall6 argument list (rule 4 of
// package unsafe).
func mbindPreferred(mem []byte, node int) error {
	if len(mem) == 0 || node < 0 {
		return unix.EINVAL
	}
	const bitsPerWord = 64
	mask := make([]uint64, node/bitsPerWord+1)
	mask[node/bitsPerWord] = 1 << (node % bitsPerWord)
	// The kernel reads maxnode-1 bits (get_nodes decrements it), so pass one
	// more than the bits in mask.
	maxnode := uintptr(len(mask)*bitsPerWord + 1)
	_, _, errno := unix.Syscall6(unix.SYS_MBIND,
		uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)),
		mpolPreferred, uintptr(unsafe.Pointer(&mask[0])), maxnode, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
