package bench

import (
	"encoding/binary"
	"hash/crc32"
)

// Every block (bs-sized unit) a verifying run writes starts with a header,
// little-endian:
//
//	[0:4)   magic "USRV"
//	[4:8)   CRC32C (Castagnoli) of the block from byte 8 to its end
//	[8:16)  LBA of the block's first logical block (offset / logical block size)
//	[16:20) generation: the job's write counter when the block was written
//	[20:24) job id
//	[24:28) block size in bytes
//	[28:32) reserved, zero
//
// The rest of the block is the slot's random fill. A read is checked when
// this run wrote the block (prefill included): magic, then LBA (a
// misdirected write or read), then generation (a lost or stale write), then
// the CRC (corrupted bytes).
const (
	hdrLen      = 32
	verifyMagic = 0x56535255 // "USRV" as little-endian bytes
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Mismatch is one block that read back differently from what was written.
type Mismatch struct {
	Job      int    `json:"job"`
	LBA      uint64 `json:"lba"`
	Offset   int64  `json:"offset"`
	Field    string `json:"field"` // "magic", "lba", "generation" or "crc"
	Expected uint64 `json:"expected"`
	Found    uint64 `json:"found"`
}

// verifier is a job's verify state: the generation it expects in each
// block of its region (0 when it has not written the block), which blocks
// have a request in flight, and what it found.
type verifier struct {
	gen      []uint32
	busyBits []uint64
	next     uint32 // the last generation handed out

	checked    uint64
	mismatches uint64
	first      []Mismatch // the first ones, up to cap (preallocated)
}

func newVerifier(nblocks int64, keep int) verifier {
	return verifier{
		gen:      make([]uint32, nblocks),
		busyBits: make([]uint64, (nblocks+63)/64),
		first:    make([]Mismatch, 0, keep),
	}
}

func (v *verifier) busy(b int64)        { v.busyBits[b>>6] |= 1 << (b & 63) }
func (v *verifier) unbusy(b int64)      { v.busyBits[b>>6] &^= 1 << (b & 63) }
func (v *verifier) isBusy(b int64) bool { return v.busyBits[b>>6]&(1<<(b&63)) != 0 }
func blockCRC(blk []byte) uint32        { return crc32.Checksum(blk[8:], castagnoli) }
func le32(b []byte, off int) uint32     { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64     { return binary.LittleEndian.Uint64(b[off:]) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// stamp writes the header into blk, CRC last.
func (v *verifier) stamp(blk []byte, lba uint64, gen, job uint32) {
	put32(blk, 0, verifyMagic)
	put64(blk, 8, lba)
	put32(blk, 16, gen)
	put32(blk, 20, job)
	put32(blk, 24, uint32(len(blk)))
	put32(blk, 28, 0)
	put32(blk, 4, blockCRC(blk))
}

// check compares a block read back with what the job wrote there. It does
// not allocate: mismatches go into the preallocated first slice.
func (v *verifier) check(blk []byte, lba uint64, off int64, gen, job uint32) {
	v.checked++
	m := Mismatch{Job: int(job), LBA: lba, Offset: off}
	switch {
	case le32(blk, 0) != verifyMagic:
		m.Field, m.Expected, m.Found = "magic", verifyMagic, uint64(le32(blk, 0))
	case le64(blk, 8) != lba:
		m.Field, m.Expected, m.Found = "lba", lba, le64(blk, 8)
	case le32(blk, 16) != gen:
		m.Field, m.Expected, m.Found = "generation", uint64(gen), uint64(le32(blk, 16))
	default:
		crc := blockCRC(blk)
		if crc == le32(blk, 4) {
			return
		}
		m.Field, m.Expected, m.Found = "crc", uint64(crc), uint64(le32(blk, 4))
	}
	v.mismatches++
	if len(v.first) < cap(v.first) {
		v.first = append(v.first, m)
	}
}
