package blockfiletest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// ShmDir returns a new directory on tmpfs under /dev/shm, removed when the
// test ends. It skips the test when /dev/shm is missing or not tmpfs.
func ShmDir(t testing.TB) string {
	t.Helper()
	var sfs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &sfs); err != nil {
		t.Skipf("blockfiletest: no /dev/shm: %v", err)
	}
	if sfs.Type != unix.TMPFS_MAGIC {
		t.Skipf("blockfiletest: /dev/shm is not tmpfs (magic %#x)", sfs.Type)
	}
	dir, err := os.MkdirTemp("/dev/shm", "usrpt-test-")
	if err != nil {
		t.Skipf("blockfiletest: /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
