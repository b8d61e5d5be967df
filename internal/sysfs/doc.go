// Package sysfs reads the Linux /sys and /proc files that usrpt needs: CPU and
// NUMA topology today, RDMA devices and IRQs for the tuning code.
//
// Every reader hangs off an [FS], which holds a root directory. [New]("/") reads
// the running system; tests point an FS at a fake tree built by package
// sysfstest, so topology-dependent code (core masks, reactor placement, IRQ
// affinity plans) is tested against hosts the test machine is not.
//
// Paths given to an FS are relative to its root and spelt as on a real system
// without the leading slash: "sys/devices/system/cpu/online", not
// "/sys/devices/system/cpu/online" (a leading slash is tolerated and still
// resolved under the root).
//
// The package also owns the kernel's cpulist format ("0-3,8-11"), shared by
// sysfs files, kernel parameters and taskset -c: [ParseCPUList] and
// [FormatCPUList].
//
// This is control-plane code: it allocates, returns wrapped errors and is
// never called on the data path.
package sysfs
