package uring

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/ioengine"
)

// needUring skips the test where io_uring cannot be used, as liburing's
// tests report SKIP.
func needUring(t testing.TB) {
	t.Helper()
	if err := Probe(); err != nil {
		t.Skipf("SKIP: %v", err)
	}
}

// lockThread keeps the test on one OS thread until its cleanups have run,
// as a reactor does: SINGLE_ISSUER rings accept only their creator's thread.
// Registered first, the unlock runs after every later cleanup (queue Close).
func lockThread(t testing.TB) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// openFile opens a fresh file of size bytes in a temporary directory with
// cfg's options and closes it when the test ends; a read-only cfg opens the
// existing cfg.Path instead (size 0: all of it). It skips the test where
// io_uring or O_DIRECT is unavailable.
func openFile(t testing.TB, cfg Config, size int64) *device {
	t.Helper()
	needUring(t)
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "disk")
	}
	// blockfile refuses Create with ReadOnly: a read-only device opens a
	// file that exists.
	cfg.Create, cfg.SizeBytes = !cfg.ReadOnly, size
	d, err := Open(cfg)
	if errors.Is(err, ErrDirectUnsupported) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Device.Close: %v", err)
		}
	})
	return d.(*device)
}

// newQ makes a queue and closes it when the test ends.
func newQ(t testing.TB, d ioengine.Device, depth int, bufs ...[]byte) *Queue {
	t.Helper()
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth, Buffers: bufs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Queue.Close: %v", err)
		}
	})
	return q.(*Queue)
}

// run submits reqs and polls until all are back, or fails after 10 s.
func run(t testing.TB, q ioengine.Queue, reqs ...*ioengine.Request) {
	t.Helper()
	out := make([]*ioengine.Request, len(reqs))
	deadline := time.Now().Add(10 * time.Second)
	sub, back := 0, 0
	for back < len(reqs) {
		sub += q.Submit(reqs[sub:])
		back += q.Poll(out)
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests back after 10 s (%d accepted)", back, len(reqs), sub)
		}
	}
}

// mustOK fails unless every request succeeded in full.
func mustOK(t testing.TB, what string, reqs ...*ioengine.Request) {
	t.Helper()
	for i, r := range reqs {
		if !r.OK() {
			t.Fatalf("%s: request %d (%v of %d at %d): %v", what, i, r.Op, r.Size(), r.Offset, r.Err())
		}
	}
}

// tempFS is the filesystem magic of the temporary directory.
func tempFS(t testing.TB) uint32 {
	t.Helper()
	return statfsType(t, os.TempDir())
}

// statfsType is the filesystem magic of dir (Statfs_t.Type is int32 on some
// architectures and int64 on others; the magics are 32-bit).
func statfsType(t testing.TB, dir string) uint32 {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return uint32(fs.Type)
}
