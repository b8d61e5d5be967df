package target

import "unsafe"

// addrOf is the virtual address of b[off], what an SGE names. Sound
// because every buffer handed to verbs is off-heap memory from
// internal/hugemem, which the Go runtime never moves.
func addrOf(b []byte, off int) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) + uint64(off)
}
