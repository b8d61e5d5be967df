package srp_test

import (
	"testing"

	goldenfile "github.com/usrpt/usrpt/internal/golden"
)

// golden compares got with testdata/name.golden (internal/golden; -update
// rewrites the files, then review them against the spec).
func golden(t *testing.T, name string, got []byte) { t.Helper(); goldenfile.Check(t, name, got) }

// iu is a little builder for hand-made IUs: set big-endian fields at
// offsets, exactly as the reference lists them.
type iu []byte

func (b iu) u8(off int, v uint8) iu { b[off] = v; return b }
func (b iu) u16(off int, v uint16) iu {
	b[off], b[off+1] = byte(v>>8), byte(v)
	return b
}
func (b iu) u32(off int, v uint32) iu {
	b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return b
}
func (b iu) u64(off int, v uint64) iu { return b.u32(off, uint32(v>>32)).u32(off+4, uint32(v)) }
func (b iu) raw(off int, v []byte) iu { copy(b[off:], v); return b }
