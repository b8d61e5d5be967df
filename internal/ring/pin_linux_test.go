package ring

import "golang.org/x/sys/unix"

// usableCPUs returns the CPUs this process may run on, in order.
func usableCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := 0; len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// pin restricts the calling thread to cpu. The caller has locked its
// goroutine to the thread.
func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// yieldThread gives the CPU to another runnable thread, if any, without
// involving the Go scheduler: the calling goroutine keeps its thread and P.
// sched_yield(2) never blocks, so the raw form (no scheduler hand-off) fits.
func yieldThread() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
