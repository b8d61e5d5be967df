package initiator

import (
	"testing"
)

// TestZeroAllocs: a 4 KiB WRITE (immediate data, and direct) and a 4 KiB
// READ, Submit to Poll, allocate nothing on the initiator (the fake target
// is stepped on the same goroutine and allocates nothing either).
func TestZeroAllocs(t *testing.T) {
	for _, noImm := range []bool{false, true} {
		ft := newFakeTarget(t, fakeOpts{})
		cfg := testCfg()
		cfg.NoImmData = noImm
		s := login(t, ft, cfg)
		ch := s.Channels()[0]
		mem := dataMem(t, s, 16384)
		var fc *fakeChan
		ft.do(0, func(c *fakeChan) { fc = c })
		ft.manual.Store(true)
		w := &Command{CDB: rw16(0x8A, 8, 8), DataOut: [][]byte{mem[:4096]}}
		r := &Command{CDB: rw16(0x88, 8, 8), DataIn: [][]byte{mem[8192:12288]}}
		cmds := []*Command{w, r}
		out := make([]*Command, 4)
		one := func() {
			if ch.Submit(cmds) != 2 {
				t.Fatal("Submit")
			}
			got := 0
			for i := 0; got < 2; i++ {
				fc.step()
				got += ch.Poll(out[got:])
				if i > 100 {
					t.Fatalf("stuck: %v", ch.Err())
				}
			}
			if w.Err != nil || r.Err != nil {
				t.Fatal(w.Err, r.Err)
			}
		}
		for range 10 {
			one()
		}
		if n := testing.AllocsPerRun(1000, one); n != 0 {
			t.Errorf("noImm %v: %v allocations per READ+WRITE round trip", noImm, n)
		}
		if st := ch.Stats(); noImm && st.ImmCmds != 0 || !noImm && st.ImmCmds == 0 {
			t.Errorf("noImm %v: immediate commands %d", noImm, st.ImmCmds)
		}
	}
}
