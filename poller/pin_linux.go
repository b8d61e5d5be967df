package poller

import (
	"fmt"

	"github.com/usrpt/usrpt/internal/sysfs"
	"golang.org/x/sys/unix"
)

// pinThread binds the calling OS thread (already locked to the goroutine) to
// cpu and reads back where it runs. sched_setaffinity on the calling thread
// migrates it before returning, so getcpu afterwards shows the new CPU.
func pinThread(cpu int) (observed, tid int, err error) {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return -1, 0, fmt.Errorf("pin to CPU %d: %w (CPUs this process may use: %s)", cpu, err, allowedCPUs())
	}
	observed, err = getcpu()
	if err != nil {
		return -1, 0, fmt.Errorf("getcpu after pinning to CPU %d: %w", cpu, err)
	}
	return observed, unix.Gettid(), nil
}

func allowedCPUs() string {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return "unknown: " + err.Error()
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return sysfs.FormatCPUList(cpus)
}
