package pollertest_test

import (
	"testing"
	"time"

	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/poller/pollertest"
)

func TestRunUntilIdleCatchesLivelock(t *testing.T) {
	d := pollertest.New(2)
	// Two reactors that keep handing a token back and forth never settle.
	var bounce func(any)
	bounce = func(arg any) {
		r := arg.(*poller.Reactor)
		other := d.Reactor(1 - r.ID())
		other.Send(bounce, other)
	}
	d.Reactor(0).Send(bounce, d.Reactor(0))
	if _, err := d.RunUntilIdle(50); err == nil {
		t.Fatal("a livelock was reported as idle")
	}
}

func TestRunUntilIdleSettles(t *testing.T) {
	d := pollertest.New(2)
	left := 3
	d.Reactor(1).Register("countdown", func() poller.Status {
		if left == 0 {
			return poller.Idle
		}
		left--
		return poller.Busy
	})
	rounds, err := d.RunUntilIdle(10)
	if err != nil || rounds != 4 || left != 0 {
		t.Fatalf("rounds %d, left %d, err %v; want 4 rounds (3 busy, 1 idle)", rounds, left, err)
	}
}

func TestClock(t *testing.T) {
	d := pollertest.New(1)
	if d.Now() != 0 || d.Reactor(0).Now() != 0 {
		t.Fatal("clock does not start at 0")
	}
	d.Advance(time.Second)
	if d.Reactor(0).Now() != int64(time.Second) {
		t.Fatalf("reactor clock %d after Advance(1s)", d.Reactor(0).Now())
	}
	if err := d.AdvanceAndRun(time.Second, 0, 1); err == nil {
		t.Fatal("zero tick accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("clock moved backwards without a panic")
		}
	}()
	d.Advance(-1)
}
