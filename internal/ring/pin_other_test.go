//go:build !linux

package ring

import "runtime"

// usableCPUs reports no CPUs: pinning is Linux-only, so benchmarks run unpinned.
func usableCPUs() []int { return nil }

func pin(int) error { return nil }

func yieldThread() { runtime.Gosched() }
