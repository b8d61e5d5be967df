package scsi_test

import (
	"math/rand/v2"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/scsi"
)

// slowLU is a mem LU whose requests on block 0 take delay Polls; tasks
// elsewhere complete on the next Poll.
func slowLU(t *testing.T, delay int) (*scsi.LU, ioengine.Device) {
	t.Helper()
	md, err := mem.Open(1<<20, 512)
	if err != nil {
		t.Skip(err)
	}
	d := faulty.Wrap(md, faulty.Rule{Offset: 0, Len: 512, Delay: delay})
	t.Cleanup(func() { _ = d.Close() })
	return luOn(t, d, nil), d
}

// collector polls an executor and records the order tasks come back in,
// failing on any task that comes back twice.
type collector struct {
	t     *testing.T
	e     *scsi.Executor
	order []*scsi.Task
	seen  map[*scsi.Task]int
}

func collect(t *testing.T, e *scsi.Executor) *collector {
	return &collector{t: t, e: e, seen: map[*scsi.Task]int{}}
}

func (c *collector) poll(times int) {
	var out [8]*scsi.Task
	for i := 0; i < times; i++ {
		n := c.e.Poll(out[:])
		for _, task := range out[:n] {
			c.seen[task]++
			if c.seen[task] > 1 {
				c.t.Fatalf("task %x (tag %d) came back twice", task.CDB, task.Tag)
			}
			c.order = append(c.order, task)
		}
	}
}

func (c *collector) back(task *scsi.Task) bool { return c.seen[task] == 1 }

func readAt(n *scsi.Nexus, lba uint64, tag uint64, a scsi.Attr) *scsi.Task {
	return &scsi.Task{Nexus: n, Tag: tag, Attr: a, CDB: rw16(0x88, lba, 1, false), Data: make([]byte, 512), DataLen: 512}
}

func TestTaskAttributes(t *testing.T) {
	lu, d := slowLU(t, 5)
	e := newExec(t, lu, d, 8)
	n, _ := nexusOf.Load(e)
	nx := n.(*scsi.Nexus)
	c := collect(t, e)

	slow := readAt(nx, 0, 1, scsi.AttrSimple)
	ordered := readAt(nx, 8, 2, scsi.AttrOrdered)
	after := readAt(nx, 16, 3, scsi.AttrSimple)
	hoq := readAt(nx, 24, 4, scsi.AttrHeadOfQueue)
	for _, task := range []*scsi.Task{slow, ordered, after, hoq} {
		e.Start(task)
	}
	c.poll(20)
	want := []*scsi.Task{hoq, slow, ordered, after}
	if len(c.order) != len(want) {
		t.Fatalf("%d tasks back, want %d", len(c.order), len(want))
	}
	for i, task := range want {
		if c.order[i] != task || task.Status != scsi.StatusGood {
			t.Errorf("position %d: tag %d (%v), want tag %d", i, c.order[i].Tag, c.order[i].Status, task.Tag)
		}
	}
	// ACA is refused: no ACA is ever established (NACA=0).
	aca := readAt(nx, 0, 5, scsi.AttrACA)
	run(t, e, aca)
	if aca.Reason != scsi.ReasonInvalidFieldIU {
		t.Errorf("ACA task: %v %v", aca.Status, aca.Reason)
	}
}

func tmf(n *scsi.Nexus, f scsi.TMF, l uint16, ref uint64) *scsi.Task {
	return &scsi.Task{Nexus: n, TMF: f, LUN: lun(l), RefTag: ref}
}

func TestAbortTask(t *testing.T) {
	lu, d := slowLU(t, 6)
	e := newExec(t, lu, d, 8)
	v, _ := nexusOf.Load(e)
	nx := v.(*scsi.Nexus)
	c := collect(t, e)

	inEngine := readAt(nx, 0, 10, scsi.AttrSimple)
	blocked := readAt(nx, 8, 11, scsi.AttrOrdered)
	e.Start(inEngine)
	e.Start(blocked)
	c.poll(1)

	// The blocked task goes at once; the function waits for nothing else.
	m1 := tmf(nx, scsi.TMFAbortTask, 0, 11)
	e.Start(m1)
	c.poll(1)
	if !c.back(blocked) || !blocked.Aborted || blocked.Status != scsi.StatusTaskAborted || !c.back(m1) || m1.Response != scsi.TMFComplete {
		t.Fatalf("abort of a blocked task: back %v aborted %v, TMF back %v %v", c.back(blocked), blocked.Aborted, c.back(m1), m1.Response)
	}
	// The task in the engine comes back aborted when the engine is done
	// with it, and the function after it.
	m2 := tmf(nx, scsi.TMFAbortTask, 0, 10)
	e.Start(m2)
	c.poll(1)
	if c.back(m2) {
		t.Fatal("ABORT TASK answered before the task left the engine")
	}
	c.poll(10)
	if !c.back(inEngine) || !inEngine.Aborted || !c.back(m2) || c.order[len(c.order)-1] != m2 {
		t.Fatalf("abort in engine: task back %v aborted %v, TMF back %v", c.back(inEngine), inEngine.Aborted, c.back(m2))
	}
	// A tag nobody has: FUNCTION COMPLETE, nothing touched.
	m3 := tmf(nx, scsi.TMFAbortTask, 0, 99)
	run(t, e, m3)
	if m3.Response != scsi.TMFComplete {
		t.Errorf("ABORT TASK of an unknown tag: %v", m3.Response)
	}
	for _, tc := range []struct {
		m    *scsi.Task
		want scsi.TMFResponse
	}{
		{tmf(nx, scsi.TMFAbortTaskSet, 5, 0), scsi.TMFIncorrectLUN},
		{tmf(nx, scsi.TMFClearACA, 0, 0), scsi.TMFRejected},
		{tmf(nx, scsi.TMF(99), 0, 0), scsi.TMFRejected},
	} {
		run(t, e, tc.m)
		if tc.m.Response != tc.want {
			t.Errorf("%v: %v, want %v", tc.m.TMF, tc.m.Response, tc.want)
		}
	}
	if e.Inflight() != 0 {
		t.Errorf("%d still in flight", e.Inflight())
	}
}

// TestTaskSetFunctions checks who each function aborts and which unit
// attentions follow, with two nexuses on one LU.
func TestTaskSetFunctions(t *testing.T) {
	for _, tc := range []struct {
		f           scsi.TMF
		abortsOther bool
		uaMine      uint16 // pending for the requester afterwards (0: none)
		uaOther     uint16
	}{
		{scsi.TMFAbortTaskSet, false, 0, 0},
		{scsi.TMFClearTaskSet, true, 0, 0x2F00},
		{scsi.TMFLUNReset, true, 0x2903, 0x2903},
		{scsi.TMFITNexusReset, false, 0x2907, 0},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			lu, d := slowLU(t, 4)
			e, _ := scsi.NewExecutor(8)
			attach(t, e, lu, d, 8)
			a := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
			b := newNexus(t, 2, scsi.Mapping{LUN: 0, LU: lu})
			clearUA(t, e, a, 0)
			clearUA(t, e, b, 0)
			c := collect(t, e)
			mine := readAt(a, 0, 1, scsi.AttrSimple)
			theirs := readAt(b, 0, 1, scsi.AttrSimple)
			e.Start(mine)
			e.Start(theirs)
			m := tmf(a, tc.f, 0, 0)
			e.Start(m)
			c.poll(10)
			if !c.back(mine) || !c.back(theirs) || !c.back(m) || m.Response != scsi.TMFComplete {
				t.Fatalf("back: mine %v theirs %v tmf %v (%v)", c.back(mine), c.back(theirs), c.back(m), m.Response)
			}
			if !mine.Aborted || theirs.Aborted != tc.abortsOther {
				t.Errorf("aborted: mine %v, theirs %v (want %v)", mine.Aborted, theirs.Aborted, tc.abortsOther)
			}
			if !tc.abortsOther && theirs.Status != scsi.StatusGood {
				t.Errorf("the other nexus's task: %v", theirs.Status)
			}
			for _, x := range []struct {
				n    *scsi.Nexus
				want uint16
			}{{a, tc.uaMine}, {b, tc.uaOther}} {
				task := tur(t, e, x.n, 0)
				if x.want == 0 {
					if task.Status != scsi.StatusGood {
						t.Errorf("unexpected %v %v", task.Status, task.Reason)
					}
					continue
				}
				wantUA(t, task, x.want)
			}
		})
	}
}

// TestAbortFromBacklog aborts a task whose request the engine queue has
// not taken yet: it comes back at once.
func TestAbortFromBacklog(t *testing.T) {
	lu, d := slowLU(t, 5)
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	e, _ := scsi.NewExecutor(4)
	if err := e.Attach(lu, q); err != nil {
		t.Fatal(err)
	}
	n := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	clearUA(t, e, n, 0)
	c := collect(t, e)
	first, second := readAt(n, 0, 1, scsi.AttrSimple), readAt(n, 0, 2, scsi.AttrSimple)
	e.Start(first)
	e.Start(second)
	m := tmf(n, scsi.TMFAbortTask, 0, 2)
	e.Start(m)
	c.poll(1)
	if !c.back(second) || !second.Aborted || !c.back(m) || c.back(first) {
		t.Fatalf("second back %v aborted %v, tmf back %v, first back %v", c.back(second), second.Aborted, c.back(m), c.back(first))
	}
	c.poll(10)
	if !c.back(first) || first.Status != scsi.StatusGood {
		t.Fatalf("first: back %v %v", c.back(first), first.Status)
	}
	if _, err := e.Detach(lu); err != nil {
		t.Fatalf("Detach when idle: %v", err)
	}
	if _, err := e.Detach(lu); err == nil {
		t.Fatal("Detach twice")
	}
}

// TestTasksComeBackOnce throws a random mix of commands, attributes and
// task management functions at an executor over a slow, failing engine:
// every task and function comes back exactly once and nothing stays held.
func TestTasksComeBackOnce(t *testing.T) {
	md, err := mem.Open(1<<20, 512)
	if err != nil {
		t.Skip(err)
	}
	d := faulty.Wrap(md,
		faulty.Rule{Probability: 0.3, Seed: 1, Delay: 3},
		faulty.Rule{Probability: 0.05, Seed: 2, Errno: 5})
	t.Cleanup(func() { _ = d.Close() })
	lu := luOn(t, d, func(c *scsi.Config) { c.WriteCache = true })
	e, _ := scsi.NewExecutor(6)
	attach(t, e, lu, d, 3)
	a := newNexus(t, 1, scsi.Mapping{LUN: 0, LU: lu})
	b := newNexus(t, 2, scsi.Mapping{LUN: 0, LU: lu})
	rng := rand.New(rand.NewPCG(7, 7))
	c := collect(t, e)
	started := 0
	cdbs := [][]byte{
		rw16(0x88, 0, 1, false), rw16(0x8A, 0, 1, false), rw16(0x8A, 3, 2, true),
		{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, cdbTUR, {0x12, 0, 0, 0, 36, 0},
		{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0},
		{0x93, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0},
		{0x2F, 0x02, 0, 0, 0, 0, 0, 0, 1, 0},
	}
	for i := 0; i < 3000; i++ {
		n := a
		if rng.IntN(2) == 0 {
			n = b
		}
		var task *scsi.Task
		if rng.IntN(10) == 0 {
			fs := []scsi.TMF{scsi.TMFAbortTask, scsi.TMFAbortTaskSet, scsi.TMFClearTaskSet, scsi.TMFLUNReset, scsi.TMFITNexusReset}
			task = tmf(n, fs[rng.IntN(len(fs))], 0, uint64(rng.IntN(started+1)))
		} else {
			cdb := cdbs[rng.IntN(len(cdbs))]
			size := 512
			switch cdb[0] {
			case 0x8A:
				size = 512 * int(cdb[13])
			case 0x89:
				size = 1024
			case 0x35, 0x00:
				size = 0
			case 0x12:
				size = 36
			}
			task = &scsi.Task{Nexus: n, Tag: uint64(started), Attr: scsi.Attr(rng.IntN(3)), CDB: cdb, Data: make([]byte, size), DataLen: size}
		}
		e.Start(task)
		started++
		c.poll(rng.IntN(3))
	}
	c.poll(200)
	if len(c.order) != started || len(c.seen) != started {
		t.Fatalf("%d started, %d came back (%d distinct)", started, len(c.order), len(c.seen))
	}
	if e.Inflight() != 0 || e.Pending() != 0 {
		t.Fatalf("after all: %d in flight, %d pending", e.Inflight(), e.Pending())
	}
}
