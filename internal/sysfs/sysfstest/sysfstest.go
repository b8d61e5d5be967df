package sysfstest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// FileMap maps root-relative paths ("sys/class/net/eth0/mtu") to file
// contents. Parent directories are created as needed.
type FileMap map[string]string

// Spec describes a fake host. Numbering follows the Linux kernel on Intel
// and most AMD systems: with SMT=2 and 16 CPUs, CPUs 0-7 are the first
// threads of cores 0-7 and CPU c+8 is the sibling of CPU c.
type Spec struct {
	// CPUs is the number of present CPUs, numbered 0..CPUs-1. It is written
	// to cpu/possible and cpu/present, and every CPU gets a cpuN directory.
	CPUs int
	// Offline CPUs are present but not online: left out of cpu/online, their
	// cpuN/online reads 0 and, as the kernel does, they have no topology
	// directory and are dropped from their online siblings' lists.
	Offline []int
	// Online, if not empty, is written to cpu/online verbatim in place of
	// the list derived from CPUs and Offline (for malformed-input tests).
	Online string
	// Nodes maps NUMA node numbers to cpulists, written verbatim to
	// node/nodeN/cpulist. Nil writes no node directory, as on a kernel built
	// without NUMA. A CPU's physical_package_id is the lowest node listing
	// it (one socket per node), 0 if none does.
	Nodes map[int]string
	// SMT is the number of hardware threads per core; 0 and 1 mean none.
	// CPUs must be a multiple of it.
	SMT int
	// Files are written last, so they may add to or replace anything above.
	Files FileMap
}

// SmallVM is a 2-CPU guest with one NUMA node and no SMT, like a small
// cloud VM or CI runner.
func SmallVM() Spec {
	return Spec{CPUs: 2, Nodes: map[int]string{0: "0-1"}}
}

// DualSocketSMT is a 16-CPU, two-socket Intel host with hyper-threading:
// node 0 has CPUs 0-3,8-11, node 1 has CPUs 4-7,12-15, and CPU c and c+8
// are SMT siblings.
func DualSocketSMT() Spec {
	return Spec{
		CPUs:  16,
		SMT:   2,
		Nodes: map[int]string{0: "0-3,8-11", 1: "4-7,12-15"},
	}
}

// PartlyOffline is an 8-CPU single-node host with CPUs 2 and 3 offline
// (echo 0 > /sys/devices/system/cpu/cpu2/online): cpu/online reads
// "0-1,4-7". The node's cpulist still names all eight, to check that readers
// cut it down to the online CPUs.
func PartlyOffline() Spec {
	return Spec{CPUs: 8, Offline: []int{2, 3}, Nodes: map[int]string{0: "0-7"}}
}

// Tree writes the host described by spec into a new t.TempDir and returns
// its root, for sysfs.New.
func Tree(t testing.TB, spec Spec) string {
	t.Helper()
	root := t.TempDir()
	WriteFiles(t, root, spec.files(t))
	WriteFiles(t, root, spec.Files)
	return root
}

func (spec Spec) files(t testing.TB) FileMap {
	t.Helper()
	smt := max(spec.SMT, 1)
	if spec.CPUs < 0 || spec.CPUs%smt != 0 {
		t.Fatalf("sysfstest: %d CPUs is not a multiple of SMT=%d", spec.CPUs, smt)
	}
	cores := spec.CPUs / smt
	offline := func(c int) bool { return slices.Contains(spec.Offline, c) }

	var present, online []int
	for c := range spec.CPUs {
		present = append(present, c)
		if !offline(c) {
			online = append(online, c)
		}
	}
	for _, c := range spec.Offline {
		if c < 0 || c >= spec.CPUs {
			t.Fatalf("sysfstest: offline CPU %d is not present (CPUs: %d)", c, spec.CPUs)
		}
	}

	const cpu = "sys/devices/system/cpu/"
	const node = "sys/devices/system/node/"
	files := FileMap{
		cpu + "possible": sysfs.FormatCPUList(present) + "\n",
		cpu + "present":  sysfs.FormatCPUList(present) + "\n",
		cpu + "online":   sysfs.FormatCPUList(online) + "\n",
		cpu + "offline":  sysfs.FormatCPUList(spec.Offline) + "\n",
	}
	if spec.Online != "" {
		files[cpu+"online"] = spec.Online + "\n"
	}

	pkg := make(map[int]int) // CPU -> lowest node listing it
	if spec.Nodes != nil {
		ids := make([]int, 0, len(spec.Nodes))
		for id := range spec.Nodes {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range slices.Backward(ids) {
			list := spec.Nodes[id]
			files[node+"node"+strconv.Itoa(id)+"/cpulist"] = list + "\n"
			if cpus, err := sysfs.ParseCPUList(list); err == nil {
				for _, c := range cpus {
					pkg[c] = id // descending order: the lowest node wins
				}
			}
		}
		files[node+"online"] = sysfs.FormatCPUList(ids) + "\n"
		files[node+"possible"] = sysfs.FormatCPUList(ids) + "\n"
	}

	for _, c := range present {
		dir := cpu + "cpu" + strconv.Itoa(c) + "/"
		if c != 0 { // the boot CPU usually cannot go offline and has no online file
			state := "1\n"
			if offline(c) {
				state = "0\n"
			}
			files[dir+"online"] = state
		}
		if offline(c) {
			continue
		}
		core := c % cores
		var siblings []int
		for s := core; s < spec.CPUs; s += cores {
			if !offline(s) {
				siblings = append(siblings, s)
			}
		}
		files[dir+"topology/core_id"] = strconv.Itoa(core) + "\n"
		files[dir+"topology/physical_package_id"] = strconv.Itoa(pkg[c]) + "\n"
		files[dir+"topology/thread_siblings_list"] = sysfs.FormatCPUList(siblings) + "\n"
	}
	return files
}

// WriteFiles writes files below root, creating directories as needed and
// replacing files that exist.
func WriteFiles(t testing.TB, root string, files FileMap) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("sysfstest: %v", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatalf("sysfstest: %v", err)
		}
	}
}

// WriteSymlinks creates symbolic links below root: links maps a
// root-relative link path to its target, written as given. Relative targets
// ("../../devices/pci0000:00/0000:00:03.0/infiniband/mlx5_0") resolve inside
// the tree as they do in /sys; absolute ones would leave it.
func WriteSymlinks(t testing.TB, root string, links map[string]string) {
	t.Helper()
	for rel, target := range links {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("sysfstest: %v", err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatalf("sysfstest: %v", err)
		}
	}
}
