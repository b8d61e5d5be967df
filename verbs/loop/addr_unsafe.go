package loop

import "unsafe"

// addrOf is the address of b[0], what SGEs and RDMA name. Registered memory
// is off-heap (internal/hugemem) or Go heap memory, which does not move.
func addrOf(b []byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// rawBytes is the n bytes at addr: an inline send names its data by
// address alone, with no key (as ibv_post_send with IBV_SEND_INLINE reads
// the caller's memory directly). The caller keeps the memory alive for the
// duration of PostSend, which is all the time it is read.
func rawBytes(addr uint64, n uint32) []byte {
	if n == 0 {
		return nil
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return unsafe.Slice((*byte)(p), n)
}
