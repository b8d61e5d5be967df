package sysfs_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
)

func topology(t *testing.T, spec sysfstest.Spec) sysfs.Topology {
	t.Helper()
	topo, err := sysfs.New(sysfstest.Tree(t, spec)).Topology()
	if err != nil {
		t.Fatalf("Topology: %v", err)
	}
	checkInvariants(t, topo)
	return topo
}

// checkInvariants holds for every topology, fake or real.
func checkInvariants(t *testing.T, topo sysfs.Topology) {
	t.Helper()
	if len(topo.Online) == 0 || !slices.IsSorted(topo.Online) {
		t.Fatalf("Online = %v: want sorted, not empty", topo.Online)
	}
	if len(topo.CPUs) != len(topo.Online) {
		t.Fatalf("%d CPUs for %d online", len(topo.CPUs), len(topo.Online))
	}
	inNode := make(map[int]int)
	for i, n := range topo.Nodes {
		if i > 0 && topo.Nodes[i-1].ID >= n.ID {
			t.Errorf("nodes not sorted: %v", topo.Nodes)
		}
		for _, c := range n.CPUs {
			inNode[c] = n.ID
		}
	}
	for i, c := range topo.CPUs {
		if c.ID != topo.Online[i] {
			t.Errorf("CPUs[%d].ID = %d, Online[%d] = %d", i, c.ID, i, topo.Online[i])
		}
		if _, ok := slices.BinarySearch(c.Siblings, c.ID); !ok || !slices.IsSorted(c.Siblings) {
			t.Errorf("CPU %d: siblings %v must be sorted and hold the CPU", c.ID, c.Siblings)
		}
		for _, s := range c.Siblings {
			if _, ok := slices.BinarySearch(topo.Online, s); !ok {
				t.Errorf("CPU %d: sibling %d is not online", c.ID, s)
			}
			if sc, ok := topo.CPU(s); ok && !slices.Equal(sc.Siblings, c.Siblings) {
				t.Errorf("CPU %d siblings %v, but CPU %d siblings %v", c.ID, c.Siblings, s, sc.Siblings)
			}
		}
		want, ok := inNode[c.ID]
		if !ok {
			want = -1
		}
		if c.Node != want || topo.NodeOf(c.ID) != want {
			t.Errorf("CPU %d: Node %d, NodeOf %d, want %d", c.ID, c.Node, topo.NodeOf(c.ID), want)
		}
		if got, ok := topo.CPU(c.ID); !ok || got.ID != c.ID {
			t.Errorf("CPU(%d) = %+v, %v", c.ID, got, ok)
		}
	}
}

func TestTopologySmallVM(t *testing.T) {
	topo := topology(t, sysfstest.SmallVM())
	if !slices.Equal(topo.Online, []int{0, 1}) {
		t.Errorf("Online = %v", topo.Online)
	}
	if len(topo.Nodes) != 1 || topo.Nodes[0].ID != 0 || !slices.Equal(topo.Nodes[0].CPUs, []int{0, 1}) {
		t.Errorf("Nodes = %+v", topo.Nodes)
	}
	for _, c := range topo.CPUs {
		want := sysfs.CPU{ID: c.ID, Node: 0, Core: c.ID, Package: 0, Siblings: []int{c.ID}}
		if !equalCPU(c, want) {
			t.Errorf("CPU = %+v, want %+v", c, want)
		}
	}
}

func TestTopologyDualSocketSMT(t *testing.T) {
	topo := topology(t, sysfstest.DualSocketSMT())
	if len(topo.Online) != 16 || len(topo.Nodes) != 2 {
		t.Fatalf("Online %v, Nodes %+v", topo.Online, topo.Nodes)
	}
	if got := sysfs.FormatCPUList(topo.Nodes[1].CPUs); got != "4-7,12-15" {
		t.Errorf("node 1 CPUs = %s", got)
	}
	tests := []sysfs.CPU{
		{ID: 0, Node: 0, Core: 0, Package: 0, Siblings: []int{0, 8}},
		{ID: 8, Node: 0, Core: 0, Package: 0, Siblings: []int{0, 8}},
		{ID: 3, Node: 0, Core: 3, Package: 0, Siblings: []int{3, 11}},
		{ID: 4, Node: 1, Core: 4, Package: 1, Siblings: []int{4, 12}},
		{ID: 15, Node: 1, Core: 7, Package: 1, Siblings: []int{7, 15}},
	}
	for _, want := range tests {
		got, ok := topo.CPU(want.ID)
		if !ok || !equalCPU(got, want) {
			t.Errorf("CPU(%d) = %+v, %v; want %+v", want.ID, got, ok, want)
		}
	}
	if _, ok := topo.CPU(16); ok {
		t.Error("CPU(16) found")
	}
	if n := topo.NodeOf(99); n != -1 {
		t.Errorf("NodeOf(99) = %d, want -1", n)
	}
	if n, ok := topo.Node(1); !ok || n.ID != 1 {
		t.Errorf("Node(1) = %+v, %v", n, ok)
	}
	if _, ok := topo.Node(2); ok {
		t.Error("Node(2) found")
	}
}

func TestTopologyPartlyOffline(t *testing.T) {
	topo := topology(t, sysfstest.PartlyOffline())
	if got := sysfs.FormatCPUList(topo.Online); got != "0-1,4-7" {
		t.Errorf("Online = %s", got)
	}
	if got := sysfs.FormatCPUList(topo.Nodes[0].CPUs); got != "0-1,4-7" {
		t.Errorf("node 0 CPUs = %s, want offline CPUs left out", got)
	}
	for _, c := range []int{2, 3} {
		if _, ok := topo.CPU(c); ok {
			t.Errorf("offline CPU %d in topology", c)
		}
	}
}

func TestTopologyOfflineSibling(t *testing.T) {
	// CPU 9 (sibling of 1) is offline: CPU 1 runs alone on its core. The
	// fake kernel drops it from sibling lists; a stale list naming it must
	// be cut down too.
	spec := sysfstest.DualSocketSMT()
	spec.Offline = []int{9}
	spec.Files = sysfstest.FileMap{
		"sys/devices/system/cpu/cpu2/topology/thread_siblings_list": "2,9-10\n",
	}
	topo := topology(t, spec)
	if c, _ := topo.CPU(1); !slices.Equal(c.Siblings, []int{1}) {
		t.Errorf("CPU 1 siblings = %v, want [1]", c.Siblings)
	}
	if c, _ := topo.CPU(2); !slices.Equal(c.Siblings, []int{2, 10}) {
		t.Errorf("CPU 2 siblings = %v, want [2 10]", c.Siblings)
	}
}

func TestTopologyNoNUMA(t *testing.T) {
	// CONFIG_NUMA=n: no node directory, all online CPUs form node 0.
	topo := topology(t, sysfstest.Spec{CPUs: 4, Offline: []int{1}})
	if len(topo.Nodes) != 1 || topo.Nodes[0].ID != 0 || sysfs.FormatCPUList(topo.Nodes[0].CPUs) != "0,2-3" {
		t.Errorf("Nodes = %+v", topo.Nodes)
	}
}

func TestTopologyMissingFiles(t *testing.T) {
	// Only cpu/online: every per-CPU file takes its default.
	root := t.TempDir()
	sysfstest.WriteFiles(t, root, sysfstest.FileMap{
		"sys/devices/system/cpu/online":         "0-1\n",
		"sys/devices/system/node/node0/cpulist": "0\n", // CPU 1 in no node
		"sys/devices/system/node/node1/cpulist": "\n",  // memory-only node
		"sys/devices/system/node/nodeX/cpulist": "1\n", // not a node: ignored
		"sys/devices/system/node/has_cpu":       "0\n",
	})
	topo, err := sysfs.New(root).Topology()
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, topo)
	want := []sysfs.CPU{
		{ID: 0, Node: 0, Core: -1, Package: 0, Siblings: []int{0}},
		{ID: 1, Node: -1, Core: -1, Package: 0, Siblings: []int{1}},
	}
	for i, c := range topo.CPUs {
		if !equalCPU(c, want[i]) {
			t.Errorf("CPU = %+v, want %+v", c, want[i])
		}
	}
	if len(topo.Nodes) != 2 || topo.Nodes[1].ID != 1 || len(topo.Nodes[1].CPUs) != 0 {
		t.Errorf("Nodes = %+v", topo.Nodes)
	}
}

func TestTopologyErrors(t *testing.T) {
	tests := []struct {
		name string
		spec sysfstest.Spec
		want string // in the error text
	}{
		{"empty online", sysfstest.Spec{Online: " "}, "lists none"},
		{"bad online", sysfstest.Spec{CPUs: 2, Online: "0-x"}, `"x" is not a decimal`},
		{"bad node list", sysfstest.Spec{CPUs: 2, Nodes: map[int]string{0: "0-1", 1: "3-2"}}, "reversed range"},
		{"CPU in two nodes", sysfstest.Spec{CPUs: 2, Nodes: map[int]string{0: "0-1", 1: "1"}}, "CPU 1 is listed by node 0 and node 1"},
		{"bad core_id", sysfstest.Spec{CPUs: 2, Files: sysfstest.FileMap{
			"sys/devices/system/cpu/cpu1/topology/core_id": "one\n"}}, "core_id"},
		{"bad siblings", sysfstest.Spec{CPUs: 2, Files: sysfstest.FileMap{
			"sys/devices/system/cpu/cpu1/topology/thread_siblings_list": "1,\n"}}, "thread_siblings_list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sysfs.New(sysfstest.Tree(t, tt.spec)).Topology()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Topology() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	// An empty root (not a sysfs tree at all).
	if _, err := sysfs.New(t.TempDir()).Topology(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Topology() of an empty root: %v, want fs.ErrNotExist", err)
	}
	// A missing node cpulist is an error too (the kernel always writes it).
	root := sysfstest.Tree(t, sysfstest.SmallVM())
	if err := os.Remove(root + "/sys/devices/system/node/node0/cpulist"); err != nil {
		t.Fatal(err)
	}
	if _, err := sysfs.New(root).Topology(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Topology() without node0/cpulist: %v", err)
	}
}

// TestTopologyReal reads the running system. It checks only what holds on
// every Linux host; on this project's 2-CPU CI machine it logs
// "online 0-1, node 0: 0-1".
func TestTopologyReal(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/cpu/online"); err != nil {
		t.Skipf("no sysfs here: %v", err)
	}
	topo, err := sysfs.New("/").Topology()
	if err != nil {
		t.Fatalf("Topology(/): %v", err)
	}
	checkInvariants(t, topo)
	for _, n := range topo.Nodes {
		t.Logf("node %d: CPUs %s", n.ID, sysfs.FormatCPUList(n.CPUs))
	}
	for _, c := range topo.CPUs {
		t.Logf("CPU %d: node %d package %d core %d siblings %s", c.ID, c.Node, c.Package, c.Core, sysfs.FormatCPUList(c.Siblings))
		if c.Node < 0 {
			t.Errorf("CPU %d has no NUMA node", c.ID)
		}
	}
	online, err := sysfs.New("").OnlineCPUs()
	if err != nil || !slices.Equal(online, topo.Online) {
		t.Errorf("OnlineCPUs() = %v, %v; Topology.Online = %v", online, err, topo.Online)
	}
}

func equalCPU(a, b sysfs.CPU) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Core == b.Core && a.Package == b.Package &&
		slices.Equal(a.Siblings, b.Siblings)
}
