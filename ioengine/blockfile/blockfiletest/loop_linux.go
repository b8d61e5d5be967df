package blockfiletest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// LoopConfig describes a loop device to set up.
type LoopConfig struct {
	// Backing is the file behind the device; "" makes a sparse file of
	// SizeBytes in t.TempDir().
	Backing   string
	SizeBytes int64 // size of a new backing file
	// BlockSize is the device's logical block size (512 to 4096); 0 means
	// 512.
	BlockSize int
	// Direct makes the loop driver use O_DIRECT on the backing file
	// (losetup --direct-io=on), so the page cache is not involved twice.
	Direct bool
}

// Loop attaches a loop device as cfg says and returns its node
// ("/dev/loop3"). The device is detached when the test ends. It skips the
// test when the process is not root or the kernel has no loop driver.
func Loop(t testing.TB, cfg LoopConfig) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("blockfiletest: loop devices need root")
	}
	backing := cfg.Backing
	if backing == "" {
		backing = File(t, "", "loop-backing.img", cfg.SizeBytes)
	}
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("blockfiletest: no loop driver: %v", err)
	}
	defer unix.Close(ctl)
	flags := unix.O_RDWR | unix.O_CLOEXEC
	if cfg.Direct {
		flags |= unix.O_DIRECT
	}
	bfd, err := unix.Open(backing, flags, 0)
	if err != nil {
		t.Fatalf("blockfiletest: open %s: %v", backing, err)
	}
	defer unix.Close(bfd)

	lc := unix.LoopConfig{Fd: uint32(bfd), Size: uint32(cfg.BlockSize)} // Size is loop_config.block_size
	lc.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
	if cfg.Direct {
		lc.Info.Flags |= unix.LO_FLAGS_DIRECT_IO
	}
	// Another process may take the free device between GET_FREE and
	// CONFIGURE (EBUSY); ask again.
	for range 16 {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Skipf("blockfiletest: LOOP_CTL_GET_FREE: %v", err)
		}
		node := fmt.Sprintf("/dev/loop%d", n)
		lfd, err := unix.Open(node, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Skipf("blockfiletest: open %s: %v", node, err)
		}
		if err := unix.IoctlLoopConfigure(lfd, &lc); err != nil {
			unix.Close(lfd)
			if errors.Is(err, unix.EBUSY) {
				continue
			}
			t.Skipf("blockfiletest: LOOP_CONFIGURE %s on %s: %v", backing, node, err)
		}
		// AUTOCLEAR detaches the device when its last opener closes: the
		// test's own descriptors, then lfd here.
		t.Cleanup(func() {
			_ = unix.IoctlSetInt(lfd, unix.LOOP_CLR_FD, 0)
			unix.Close(lfd)
		})
		return node
	}
	t.Skip("blockfiletest: every free loop device was taken before it could be configured")
	return ""
}
