// Package sysfstest writes fake /sys and /proc trees for tests of code that
// reads them through package sysfs.
//
// [Tree] builds the CPU and NUMA part of a tree from a short [Spec] (how many
// CPUs, which are offline, the nodes, threads per core), laid out as the Linux
// kernel lays it out; [WriteFiles] and [WriteSymlinks] add anything else, such
// as /sys/class/infiniband entries or /proc/interrupts, for the RDMA and IRQ
// readers. [SmallVM], [DualSocketSMT] and [PartlyOffline] are ready-made
// hosts. Trees live in t.TempDir and vanish with the test.
package sysfstest
