package bench

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/poller"
)

func openMem(t testing.TB, size int64) ioengine.Device {
	t.Helper()
	d, err := mem.Open(size, 512)
	if err != nil {
		t.Skipf("mem: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// A verified randrw run through the SCSI core, two jobs sharing the LU
// and the nexus (one of them takes the POWER ON unit attention), writes
// through and back: every I/O is counted, none fails, nothing mismatches.
func TestSCSIVerifyRandRW(t *testing.T) {
	for _, wce := range []bool{false, true} {
		cfg := baseConfig(t)
		cfg.RW, cfg.Jobs, cfg.IOs, cfg.SizeBytes = RWRandRW, 2, 3000, 8<<20
		cfg.Verify, cfg.VerifyPrefill = true, true
		cfg.Layer, cfg.SCSIWriteCache = LayerSCSI, wce
		if cpus, _ := sysfs.New("").OnlineCPUs(); len(cpus) > 1 {
			cfg.CPUs = cpus[:2]
		}
		rep := run(t, openMem(t, 8<<20), cfg)
		if rep.Total.IOs != 6000 || rep.Total.Errors != 0 {
			t.Errorf("wce=%v: ios=%d errors=%d %v, want 6000 and 0", wce, rep.Total.IOs, rep.Total.Errors, rep.Total.ErrorsByErrno)
		}
		if rep.Verify == nil || rep.Verify.Checked < 3000 || rep.Verify.Mismatches != 0 {
			t.Errorf("wce=%v: verify %+v", wce, rep.Verify)
		}
		if rep.Options.Layer != "scsi" || rep.Options.SCSIWriteCache != wce || rep.Options.SCSIBlockSize != 4096 {
			t.Errorf("options layer=%q wce=%v lbs=%d", rep.Options.Layer, rep.Options.SCSIWriteCache, rep.Options.SCSIBlockSize)
		}
		var b bytes.Buffer
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "layer=scsi") {
			t.Errorf("header does not name the layer:\n%s", b.String()[:200])
		}
	}
}

func TestSCSICheck(t *testing.T) {
	info := ioengine.Info{Engine: "mem", SizeBytes: 64 << 20, BlockSize: 512}
	for _, tc := range []struct {
		mod  func(*IOConfig)
		want string
	}{
		{func(c *IOConfig) { c.Layer, c.BlockSize, c.Direct = LayerSCSI, 1000, false }, "--layer scsi"},
		{func(c *IOConfig) { c.SCSIWriteCache = true }, "--scsi-wce needs --layer scsi"},
		{func(c *IOConfig) { c.Layer = Layer(7) }, "layer"},
	} {
		cfg := baseConfig(t)
		tc.mod(&cfg)
		if _, err := cfg.Check(info); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
	// 4096-byte engine blocks and 2 KiB I/Os: no LU block fits.
	cfg := baseConfig(t)
	cfg.Layer, cfg.BlockSize = LayerSCSI, 2048
	if _, err := cfg.Check(ioengine.Info{Engine: "x", SizeBytes: 1 << 20, BlockSize: 4096}); err == nil {
		t.Error("2 KiB I/Os on a 4 KiB-block engine accepted")
	}
	for _, tc := range []struct{ bs, ebs, want int }{{4096, 512, 4096}, {8192, 4096, 4096}, {512, 512, 512}, {1536, 512, 512}, {1000, 512, 0}, {512, 4096, 0}} {
		if got := scsiBlockSize(tc.bs, tc.ebs); got != tc.want {
			t.Errorf("scsiBlockSize(%d, %d) = %d, want %d", tc.bs, tc.ebs, got, tc.want)
		}
	}
	if l, err := ParseLayer("scsi"); err != nil || l != LayerSCSI || l.String() != "scsi" {
		t.Errorf("ParseLayer(scsi) = %v, %v", l, err)
	}
	if _, err := ParseLayer("srp"); err == nil {
		t.Error("ParseLayer(srp) accepted")
	}
}

// newTestSCSIQueue is a scsiQueue of depth over dev, as a job's.
func newTestSCSIQueue(t testing.TB, dev ioengine.Device, bs, depth int, wce bool) *scsiQueue {
	t.Helper()
	cfg := IOConfig{BlockSize: bs, SCSIWriteCache: wce, Layer: LayerSCSI}
	tgt, err := newSCSITarget(dev, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tgt.close)
	q, err := dev.NewQueue(ioengine.QueueConfig{Depth: depth})
	if err != nil {
		t.Fatal(err)
	}
	sq, err := newSCSIQueue(tgt, q, depth)
	if err != nil {
		_ = q.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sq.Close(); err != nil {
			t.Error(err)
		}
	})
	return sq
}

// do submits r and polls until it is back.
func do(t testing.TB, q ioengine.Queue, r *ioengine.Request) {
	t.Helper()
	if q.Submit([]*ioengine.Request{r}) != 1 {
		t.Fatal("Submit refused a request with the queue empty")
	}
	out := make([]*ioengine.Request, 4)
	for range 1_000_000 {
		if n := q.Poll(out); n > 0 {
			if n != 1 || out[0] != r {
				t.Fatalf("Poll returned %d requests, not the one submitted", n)
			}
			return
		}
	}
	t.Fatal("request never came back")
}

// Engine failures come back as CHECK CONDITION and from there as the
// errno a block layer would give: the sense is what is mapped, not the
// engine's errno, so this checks the whole round trip.
func TestSCSIErrnoMapping(t *testing.T) {
	const size = 1 << 20
	blk := func(n int64) int64 { return n * 4096 }
	dev := faulty.Wrap(openMem(t, size),
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Offset: blk(1), Len: 4096, Errno: syscall.EIO},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Offset: blk(2), Len: 4096, Errno: syscall.EIO},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Offset: blk(3), Len: 4096, Errno: syscall.ENOSPC},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Offset: blk(4), Len: 4096, Errno: syscall.EROFS},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Offset: blk(5), Len: 4096, Errno: syscall.EDQUOT},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Offset: blk(6), Len: 4096, Errno: syscall.EFAULT},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpDiscard), Offset: blk(7), Len: 4096, Errno: syscall.ENOSPC},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWriteZeroes), Offset: blk(8), Len: 4096, Errno: syscall.EIO},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Offset: blk(9), Len: 4096, Short: true},
	)
	for _, wce := range []bool{false, true} {
		q := newTestSCSIQueue(t, dev, 4096, 4, wce)
		buf := make([]byte, 8192)
		for _, tc := range []struct {
			name  string
			op    ioengine.Op
			off   int64
			n     int // Buf bytes for reads and writes, Len otherwise
			errno syscall.Errno
		}{
			{"read ok", ioengine.OpRead, 0, 4096, 0},
			{"read two blocks", ioengine.OpRead, blk(10), 8192, 0},
			{"write ok", ioengine.OpWrite, 0, 4096, 0},
			{"read EIO: MEDIUM ERROR", ioengine.OpRead, blk(1), 4096, syscall.EIO},
			{"write EIO: MEDIUM ERROR", ioengine.OpWrite, blk(2), 4096, syscall.EIO},
			{"write ENOSPC: SPACE ALLOCATION FAILED", ioengine.OpWrite, blk(3), 4096, syscall.ENOSPC},
			{"write EROFS: WRITE PROTECTED", ioengine.OpWrite, blk(4), 4096, syscall.EROFS},
			{"write EDQUOT: SPACE ALLOCATION FAILED", ioengine.OpWrite, blk(5), 4096, syscall.ENOSPC},
			{"write EFAULT: HARDWARE ERROR", ioengine.OpWrite, blk(6), 4096, syscall.EIO},
			{"short read: MEDIUM ERROR", ioengine.OpRead, blk(9), 4096, syscall.EIO},
			{"read past the end: ILLEGAL REQUEST", ioengine.OpRead, size, 4096, syscall.EINVAL},
			{"misaligned offset", ioengine.OpRead, 512, 4096, syscall.EINVAL},
			{"partial block", ioengine.OpWrite, 0, 512, syscall.EINVAL},
			{"flush", ioengine.OpFlush, 0, 0, 0},
			{"discard", ioengine.OpDiscard, blk(12), 8192, 0},
			{"discard ENOSPC", ioengine.OpDiscard, blk(7), 4096, syscall.ENOSPC},
			{"discard misaligned", ioengine.OpDiscard, blk(12), 100, syscall.EINVAL},
			{"discard past the end", ioengine.OpDiscard, size - 4096, 8192, syscall.EINVAL},
			{"write zeroes", ioengine.OpWriteZeroes, blk(14), 8192, 0},
			{"write zeroes EIO", ioengine.OpWriteZeroes, blk(8), 4096, syscall.EIO},
			{"write zeroes empty", ioengine.OpWriteZeroes, blk(14), 0, syscall.EINVAL},
		} {
			r := &ioengine.Request{Op: tc.op, Offset: tc.off, N: -1, Errno: 1}
			want := int64(tc.n)
			switch tc.op {
			case ioengine.OpRead, ioengine.OpWrite:
				r.Buf = buf[:tc.n]
			case ioengine.OpFlush:
				want = 0
			default:
				r.Len = int64(tc.n)
			}
			if tc.errno != 0 {
				want = 0
			}
			do(t, q, r)
			if r.Errno != tc.errno || r.N != want {
				t.Errorf("wce=%v %s: N=%d errno=%v, want %d, %v", wce, tc.name, r.N, r.Errno, want, tc.errno)
			}
		}
		if q.Inflight() != 0 {
			t.Errorf("%d in flight after every request came back", q.Inflight())
		}
	}
}

// What goes through the SCSI core lands on the engine: a write is read
// back directly from the engine, write zeroes zeroes, FUA and flush pass.
func TestSCSIDataReachesEngine(t *testing.T) {
	dev := openMem(t, 1<<20)
	q := newTestSCSIQueue(t, dev, 4096, 2, true)
	data := bytes.Repeat([]byte("usrpt-sc"), 1024)
	do(t, q, &ioengine.Request{Op: ioengine.OpWrite, Flags: ioengine.FlagFUA, Offset: 8192, Buf: data})
	do(t, q, &ioengine.Request{Op: ioengine.OpFlush})
	eq, err := dev.NewQueue(ioengine.QueueConfig{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eq.Close()
	got := make([]byte, 8192)
	do(t, eq, &ioengine.Request{Op: ioengine.OpRead, Offset: 4096, Buf: got})
	if !bytes.Equal(got[4096:], data[:4096]) || !bytes.Equal(got[:4096], make([]byte, 4096)) {
		t.Error("the engine does not hold what WRITE(16) wrote")
	}
	do(t, q, &ioengine.Request{Op: ioengine.OpWriteZeroes, Offset: 8192, Len: 4096})
	do(t, eq, &ioengine.Request{Op: ioengine.OpRead, Offset: 8192, Buf: got[:4096]})
	if !bytes.Equal(got[:4096], make([]byte, 4096)) {
		t.Error("WRITE SAME of a zero block left data")
	}
}

// The per-I/O path through the SCSI core allocates nothing: the job's poll
// with the adapter as its queue, and each command kind on its own.
func TestSCSIAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range []struct {
		name   string
		rw     RW
		verify bool
		wce    bool
	}{{"randread", RWRandRead, false, false}, {"randrw", RWRandRW, false, false}, {"randwrite wce", RWRandWrite, false, true}, {"randrw verify", RWRandRW, true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.RW, cfg.Verify, cfg.IOs, cfg.SizeBytes = tc.rw, tc.verify, 0, 1<<20
			cfg.Layer, cfg.SCSIWriteCache = LayerSCSI, tc.wce
			dev := openMem(t, 1<<20)
			fdev := newFakeNull(1 << 20)
			if tc.verify {
				fdev = newFakeMem(1 << 20)
			}
			j := newTestJob(t, cfg, fdev)
			_ = j.q.Close()
			j.q = newTestSCSIQueue(t, dev, cfg.BlockSize, cfg.IODepth, tc.wce)
			checkPollAllocs(t, j, cfg.IODepth)
			if j.cnt[dirRead].errs+j.cnt[dirWrite].errs != 0 {
				t.Errorf("errors: %+v", j.cnt)
			}
			if tc.verify && (j.v.checked == 0 || j.v.mismatches != 0) {
				t.Errorf("verify checked %d, mismatches %d", j.v.checked, j.v.mismatches)
			}
		})
	}
	t.Run("flush discard write-zeroes", func(t *testing.T) {
		q := newTestSCSIQueue(t, openMem(t, 1<<20), 4096, 4, true)
		reqs := []ioengine.Request{
			{Op: ioengine.OpFlush},
			{Op: ioengine.OpDiscard, Offset: 4096, Len: 8192},
			{Op: ioengine.OpWriteZeroes, Offset: 16384, Len: 4096},
			{Op: ioengine.OpWrite, Flags: ioengine.FlagFUA, Offset: 32768, Buf: make([]byte, 4096)},
		}
		ptrs := make([]*ioengine.Request, len(reqs))
		for i := range reqs {
			ptrs[i] = &reqs[i]
		}
		out := make([]*ioengine.Request, len(reqs))
		allocs := testing.AllocsPerRun(1000, func() {
			if q.Submit(ptrs) != len(ptrs) {
				t.Fatal("Submit refused")
			}
			for got := 0; got < len(ptrs); {
				got += q.Poll(out)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per batch", allocs)
		}
		for _, r := range reqs {
			if r.Errno != 0 {
				t.Errorf("%v: %v", r.Op, r.Errno)
			}
		}
	})
}

func BenchmarkPollSCSI(b *testing.B) {
	cfg := baseConfig(b)
	cfg.IOs, cfg.IODepth, cfg.Layer = 0, 32, LayerSCSI
	j := newTestJob(b, cfg, newFakeNull(64<<20))
	dev := newFakeNull(64 << 20)
	_ = j.q.Close()
	j.q = newTestSCSIQueue(b, dev, cfg.BlockSize, cfg.IODepth, false)
	j.poll()
	j.begin(poller.Monotonic())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		j.poll()
	}
	ios := j.cnt[dirRead].ios
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ios), "ns/io")
}
