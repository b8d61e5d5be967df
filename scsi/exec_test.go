package scsi_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/ioengine/null"
	"github.com/usrpt/usrpt/scsi"
)

func rw16(op byte, lba uint64, blocks uint32, fua bool) []byte {
	c := make([]byte, 16)
	c[0] = op
	if fua {
		c[1] = 0x08
	}
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], blocks)
	return c
}

func TestWriteThenRead(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		lu, d := memLU(t, bs, nil)
		e := newExec(t, lu, d, 8)
		bufs := enginetest.NewBuffers(t, 2, 8*bs)
		wbuf, rbuf := bufs.Bufs[0], bufs.Bufs[1]
		enginetest.Fill(wbuf, uint64(bs))
		last := lu.Blocks() - 8
		w := &scsi.Task{CDB: rw16(0x8A, last, 8, false), Data: wbuf, DataLen: len(wbuf)}
		run(t, e, w)
		if w.Status != scsi.StatusGood || w.Resid != scsi.ResidNone || w.Xfer != 0 {
			t.Fatalf("bs %d: WRITE(16): %v %v", bs, w.Status, w.Reason)
		}
		r := &scsi.Task{CDB: rw16(0x88, last, 8, false), Data: rbuf, DataLen: len(rbuf)}
		run(t, e, r)
		if r.Status != scsi.StatusGood || r.Xfer != len(rbuf) || !bytes.Equal(rbuf, wbuf) {
			t.Fatalf("bs %d: READ(16) after WRITE(16): %v, %d bytes, equal %v", bs, r.Status, r.Xfer, bytes.Equal(rbuf, wbuf))
		}
		// READ(10) of the second of those blocks through the same path.
		r10 := &scsi.Task{CDB: []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, Data: rbuf[:bs], DataLen: bs}
		binary.BigEndian.PutUint32(r10.CDB[2:], uint32(last+1))
		run(t, e, r10)
		if r10.Status != scsi.StatusGood || !bytes.Equal(rbuf[:bs], wbuf[bs:2*bs]) {
			t.Fatalf("bs %d: READ(10): %v", bs, r10.Status)
		}
	}
}

// flagsSeen records the flags and ops of the requests an engine gets.
type flagsSeen struct {
	ioengine.Device
	log *[]ioengine.Request
}

type seenQueue struct {
	ioengine.Queue
	log *[]ioengine.Request
}

func (d flagsSeen) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	q, err := d.Device.NewQueue(cfg)
	return seenQueue{q, d.log}, err
}

func (q seenQueue) Submit(reqs []*ioengine.Request) int {
	n := q.Queue.Submit(reqs)
	for _, r := range reqs[:n] {
		*q.log = append(*q.log, *r)
	}
	return n
}

// TestWriteCacheModes checks write-through (every write FUA, SYNCHRONIZE
// CACHE a no-op) and write-back (FUA only when asked, SYNCHRONIZE CACHE
// flushes).
func TestWriteCacheModes(t *testing.T) {
	for _, wce := range []bool{false, true} {
		var log []ioengine.Request
		md, err := mem.Open(1<<20, 512)
		if err != nil {
			t.Skip(err)
		}
		d := flagsSeen{md, &log}
		lu := luOn(t, d, func(c *scsi.Config) { c.WriteCache = wce })
		e := newExec(t, lu, d, 4)
		buf := make([]byte, 512)
		for _, fua := range []bool{false, true} {
			run(t, e, &scsi.Task{CDB: rw16(0x8A, 0, 1, fua), Data: buf, DataLen: 512})
		}
		sync := &scsi.Task{CDB: []byte{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
		run(t, e, sync)
		if sync.Status != scsi.StatusGood {
			t.Fatalf("WCE %v: SYNCHRONIZE CACHE: %v", wce, sync.Status)
		}
		want := []ioengine.Flags{ioengine.FlagFUA, ioengine.FlagFUA}
		if wce {
			want = []ioengine.Flags{0, ioengine.FlagFUA}
		}
		if len(log) != len(want)+b2i(wce) {
			t.Fatalf("WCE %v: %d requests: %+v", wce, len(log), log)
		}
		for i, f := range want {
			if log[i].Op != ioengine.OpWrite || log[i].Flags != f {
				t.Errorf("WCE %v: write %d: %v flags %v, want flags %v", wce, i, log[i].Op, log[i].Flags, f)
			}
		}
		if wce && log[2].Op != ioengine.OpFlush {
			t.Errorf("WCE: SYNCHRONIZE CACHE sent %v, want flush", log[2].Op)
		}
		_ = md.Close()
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestEngineErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rule   faulty.Rule
		write  bool
		reason scsi.Reason
	}{
		{"EIO read", faulty.Rule{Errno: syscall.EIO}, false, scsi.ReasonReadError},
		{"EIO write", faulty.Rule{Errno: syscall.EIO}, true, scsi.ReasonWriteError},
		{"ENOSPC write", faulty.Rule{Errno: syscall.ENOSPC}, true, scsi.ReasonSpaceAllocFailed},
		{"short read", faulty.Rule{Short: true}, false, scsi.ReasonReadError},
		{"short write", faulty.Rule{Short: true}, true, scsi.ReasonWriteError},
		{"EINVAL", faulty.Rule{Errno: syscall.EINVAL}, false, scsi.ReasonInternalFailure},
		{"delayed EIO", faulty.Rule{Errno: syscall.EIO, Delay: 3}, false, scsi.ReasonReadError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, err := mem.Open(1<<20, 512)
			if err != nil {
				t.Skip(err)
			}
			d := faulty.Wrap(md, tc.rule)
			t.Cleanup(func() { _ = d.Close() })
			lu := luOn(t, d, nil)
			e := newExec(t, lu, d, 4)
			op := byte(0x88)
			if tc.write {
				op = 0x8A
			}
			task := &scsi.Task{CDB: rw16(op, 4, 2, false), Data: make([]byte, 1024), DataLen: 1024}
			run(t, e, task)
			if task.Status != scsi.StatusCheckCondition || task.Reason != tc.reason {
				t.Fatalf("%v %v, want CHECK CONDITION %v", task.Status, task.Reason, tc.reason)
			}
			key, code := senseOf(t, task)
			asc, ascq := tc.reason.ASC()
			if key != tc.reason.Key() || code != uint16(asc)<<8|uint16(ascq) {
				t.Errorf("sense %v %04x", key, code)
			}
			if e.Inflight() != 0 {
				t.Errorf("%d slots still held", e.Inflight())
			}
		})
	}
}

// TestTaskSetFull fills the executor and checks the task past it gets TASK
// SET FULL and the others all complete.
func TestTaskSetFull(t *testing.T) {
	md, err := mem.Open(1<<20, 512)
	if err != nil {
		t.Skip(err)
	}
	d := faulty.Wrap(md, faulty.Rule{Delay: 2})
	t.Cleanup(func() { _ = d.Close() })
	lu := luOn(t, d, nil)
	e := newExec(t, lu, d, 2)
	var tasks [3]scsi.Task
	for i := range tasks {
		tasks[i] = scsi.Task{CDB: rw16(0x88, uint64(i), 1, false), Data: make([]byte, 512), DataLen: 512, User: uint64(i)}
		start(e, &tasks[i])
	}
	seen := map[uint64]scsi.Status{}
	var out [1]*scsi.Task
	for i := 0; i < 100 && len(seen) < 3; i++ {
		for n := e.Poll(out[:]); n > 0; n = e.Poll(out[:]) {
			if _, dup := seen[out[0].User]; dup {
				t.Fatalf("task %d twice", out[0].User)
			}
			seen[out[0].User] = out[0].Status
		}
	}
	if len(seen) != 3 || seen[0] != scsi.StatusGood || seen[1] != scsi.StatusGood || seen[2] != scsi.StatusTaskSetFull {
		t.Errorf("statuses %v", seen)
	}
}

func TestNewLU(t *testing.T) {
	d, err := null.Open(1<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	for _, tc := range []struct {
		name string
		mod  func(*scsi.Config)
	}{
		{"no engine", func(c *scsi.Config) { c.Engine = nil }},
		{"block size 1024", func(c *scsi.Config) { c.BlockSize = 1024 }},
		{"no serial", func(c *scsi.Config) { c.Serial = "" }},
		{"long vendor", func(c *scsi.Config) { c.Vendor = "ABCDEFGHI" }},
		{"long product", func(c *scsi.Config) { c.Product = "0123456789abcdefg" }},
		{"long revision", func(c *scsi.Config) { c.Revision = "12345" }},
		{"control byte in serial", func(c *scsi.Config) { c.Serial = "a\nb" }},
		{"wide OUI", func(c *scsi.Config) { c.OUI = 1 << 24 }},
		{"odd max transfer", func(c *scsi.Config) { c.MaxTransferBytes = 1000 }},
	} {
		cfg := scsi.Config{Engine: d, Serial: testSerial}
		tc.mod(&cfg)
		if _, err := scsi.NewLU(cfg); !errors.Is(err, scsi.ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tc.name, err)
		}
	}
	lu, err := scsi.NewLU(scsi.Config{Engine: d, Serial: testSerial})
	if err != nil {
		t.Fatal(err)
	}
	if lu.BlockSize() != 512 || lu.Blocks() != 2048 || lu.Config().Vendor != scsi.DefaultVendor {
		t.Errorf("defaults: %d-byte blocks, %d blocks, vendor %q", lu.BlockSize(), lu.Blocks(), lu.Config().Vendor)
	}
	// The NAA designator is a function of the serial alone.
	again, _ := scsi.NewLU(scsi.Config{Engine: d, Serial: testSerial, Vendor: "X"})
	other, _ := scsi.NewLU(scsi.Config{Engine: d, Serial: testSerial + "x"})
	if lu.NAA() != again.NAA() || lu.NAA() == other.NAA() || lu.NAA()[0]>>4 != 6 {
		t.Errorf("NAA %x, again %x, other serial %x", lu.NAA(), again.NAA(), other.NAA())
	}
	set, _ := scsi.NewLU(scsi.Config{Engine: d, Serial: testSerial, NAA: 0x1122334455667788, OUI: 0xABCDEF})
	if n := set.NAA(); binary.BigEndian.Uint64(n[8:]) != 0x1122334455667788 || n[0] != 0x6A || n[1] != 0xBC || n[2] != 0xDE || n[3]>>4 != 0xF {
		t.Errorf("configured NAA %x", n)
	}
}

// TestZeroAllocs checks the data path allocates nothing per command once
// warm: the requests are the executor's, the tasks the caller's.
func TestZeroAllocs(t *testing.T) {
	d, err := null.Open(1<<30, 512)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	lu := luOn(t, d, nil)
	e := newExec(t, lu, d, 32)
	buf := make([]byte, 4096)
	read := &scsi.Task{CDB: rw16(0x88, 8, 8, false), Data: buf, DataLen: 4096}
	write := &scsi.Task{CDB: rw16(0x8A, 8, 8, true), Data: buf, DataLen: 4096}
	inq := &scsi.Task{CDB: []byte{0x12, 0, 0, 0, 36, 0}, Data: buf, DataLen: 36}
	bad := &scsi.Task{CDB: []byte{0x28, 0xE0, 0, 0, 0, 0, 0, 0, 1, 0}, Data: buf, DataLen: 512}
	for _, task := range []*scsi.Task{read, write, inq, bad} {
		run(t, e, task) // warm up
		if n := testing.AllocsPerRun(1000, func() { run(t, e, task) }); n != 0 {
			t.Errorf("%x: %v allocations per command", task.CDB[0], n)
		}
	}
}

func BenchmarkRead4K(b *testing.B) {
	d, err := null.Open(1<<30, 512)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	lu := luOn(b, d, nil)
	const depth = 32
	e := newExec(b, lu, d, depth)
	tasks := make([]scsi.Task, depth)
	for i := range tasks {
		tasks[i] = scsi.Task{CDB: rw16(0x88, uint64(i*8), 8, false), Data: make([]byte, 4096), DataLen: 4096}
	}
	out := make([]*scsi.Task, depth)
	b.ReportAllocs()
	b.ResetTimer()
	started, done := 0, 0
	for i := range tasks {
		if started < b.N {
			start(e, &tasks[i])
			started++
		}
	}
	for done < b.N {
		n := e.Poll(out)
		for _, task := range out[:n] {
			done++
			if task.Status != scsi.StatusGood {
				b.Fatalf("status %v", task.Status)
			}
			if started < b.N {
				start(e, task)
				started++
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
}

// TestBacklog gives the executor more slots than the engine queue has
// depth: tasks the queue refuses wait in the backlog and still complete,
// each once, with the right data.
func TestBacklog(t *testing.T) {
	lu, d := memLU(t, 512, nil)
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	e, err := scsi.NewExecutor(6)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Attach(lu, q); err != nil {
		t.Fatal(err)
	}
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	nexusOf.Store(e, n)
	clearUA(t, e, n, 0)
	data := make([]byte, 6*512)
	enginetest.Fill(data, 42)
	run(t, e, &scsi.Task{CDB: rw16(0x8A, 100, 6, false), Data: data, DataLen: len(data)})
	tasks := make([]scsi.Task, 6)
	for i := range tasks {
		tasks[i] = scsi.Task{CDB: rw16(0x88, uint64(100+i), 1, false), Data: make([]byte, 512), DataLen: 512, User: uint64(i)}
		start(e, &tasks[i])
	}
	seen := make([]int, len(tasks))
	var out [2]*scsi.Task
	for i := 0; i < 100; i++ {
		n := e.Poll(out[:])
		for _, task := range out[:n] {
			seen[task.User]++
		}
	}
	for i, task := range tasks {
		if seen[i] != 1 || task.Status != scsi.StatusGood || !bytes.Equal(task.Data, data[i*512:(i+1)*512]) {
			t.Errorf("task %d: seen %d times, %v, data equal %v", i, seen[i], task.Status, bytes.Equal(task.Data, data[i*512:(i+1)*512]))
		}
	}
	if e.Inflight() != 0 {
		t.Errorf("%d still in flight", e.Inflight())
	}
}
