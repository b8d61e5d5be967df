package sysfs_test

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// TestOnlineCoversAffinity checks sysfs against the scheduler: every CPU this
// process may run on is online.
func TestOnlineCoversAffinity(t *testing.T) {
	online, err := sysfs.New("/").OnlineCPUs()
	if err != nil {
		t.Skipf("no sysfs here: %v", err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			if _, ok := slices.BinarySearch(online, c); !ok {
				t.Errorf("CPU %d is in our affinity mask but not online (%s)", c, sysfs.FormatCPUList(online))
			}
		}
	}
}
