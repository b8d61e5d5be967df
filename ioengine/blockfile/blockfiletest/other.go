//go:build !linux

package blockfiletest

import "testing"

// ShmDir skips the test: tmpfs at /dev/shm is Linux's.
func ShmDir(t testing.TB) string {
	t.Helper()
	t.Skip("blockfiletest: no /dev/shm tmpfs on this operating system")
	return ""
}

// LoopConfig describes a loop device to set up.
type LoopConfig struct {
	Backing   string
	SizeBytes int64
	BlockSize int
	Direct    bool
}

// Loop skips the test: loop devices are Linux's.
func Loop(t testing.TB, cfg LoopConfig) string {
	t.Helper()
	t.Skip("blockfiletest: no loop devices on this operating system")
	return ""
}
