package syncq

import (
	"errors"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
)

func TestCheckGeometry(t *testing.T) {
	for _, tc := range []struct {
		size int64
		bs   int
		ok   bool
	}{{4096, 512, true}, {8192, 4096, true}, {0, 512, false}, {-512, 512, false}, {1000, 512, false}, {4096, 1024, false}} {
		if err := CheckGeometry("x", tc.size, tc.bs); (err == nil) != tc.ok {
			t.Errorf("CheckGeometry(%d, %d) = %v, want ok=%v", tc.size, tc.bs, err, tc.ok)
		}
	}
}

func TestOwnerLifecycle(t *testing.T) {
	o := NewOwner("eng")
	exec := func(r *ioengine.Request) { r.Complete(r.Size(), 0) }
	q, err := o.NewQueue(4, exec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.NewQueue(0, exec); err == nil || !strings.HasPrefix(err.Error(), "eng: new queue: depth 0") {
		t.Fatalf("depth 0: %v", err)
	}
	released := 0
	release := func() error { released++; return errors.New("boom") }
	if err := o.Close(release); err == nil || !strings.Contains(err.Error(), "1 queues still open") || released != 0 {
		t.Fatalf("close with a queue open: %v (released %d times)", err, released)
	}
	q.Close()
	q.Close() // a second Close must not count the queue twice
	if err := o.Close(release); err == nil || err.Error() != "eng: close: boom" || released != 1 {
		t.Fatalf("close: %v (released %d times)", err, released)
	}
	if err := o.Close(release); err != nil || released != 1 {
		t.Fatalf("second close: %v (released %d times)", err, released)
	}
	if _, err := o.NewQueue(4, exec); err == nil || !strings.Contains(err.Error(), "device closed") {
		t.Fatalf("queue on a closed device: %v", err)
	}
}
