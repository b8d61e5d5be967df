package initiator

import "unsafe"

// addrOf is the address of b[0], what SGEs, descriptors and the target's
// RDMA name. Sound because every buffer the initiator describes lies in
// registered memory (internal/hugemem, off-heap, never moved): Submit
// checks the address against the session's memory regions before using
// it, and the number is only compared and sent, never turned back into a
// pointer.
func addrOf(b []byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
