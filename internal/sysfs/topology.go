package sysfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Paths of the topology files, relative to the root.
const (
	cpuDir  = "sys/devices/system/cpu"
	nodeDir = "sys/devices/system/node"
)

// CPU is one online logical CPU (a hardware thread).
type CPU struct {
	ID int
	// Node is the NUMA node whose cpulist holds the CPU, or -1 when the
	// system has node directories and none of them lists it.
	Node int
	// Core is topology/core_id: unique within a package, not across
	// packages; -1 when the file is missing.
	Core int
	// Package is topology/physical_package_id (the socket); 0 when the file
	// is missing.
	Package int
	// Siblings are the online SMT threads of the same core, from
	// topology/thread_siblings_list, sorted, including ID itself. Without
	// SMT (or without the file) it is just [ID].
	Siblings []int
}

// NUMANode is one NUMA node and its online CPUs. A memory-only node (CXL
// memory, a node whose CPUs are all offline) has no CPUs.
type NUMANode struct {
	ID   int
	CPUs []int
}

// Topology is a snapshot of the online CPUs and the NUMA nodes.
type Topology struct {
	Online []int      // online CPU numbers, sorted
	CPUs   []CPU      // one per online CPU, sorted by ID
	Nodes  []NUMANode // sorted by ID
}

// OnlineCPUs reads sys/devices/system/cpu/online. It fails when the list is
// empty, which no running kernel reports: the root is wrong.
func (fs FS) OnlineCPUs() ([]int, error) {
	online, err := fs.ReadCPUList(cpuDir + "/online")
	if err != nil {
		return nil, fmt.Errorf("online CPUs: %w", err)
	}
	if len(online) == 0 {
		return nil, fmt.Errorf("online CPUs: %s lists none", fs.Path(cpuDir, "online"))
	}
	return online, nil
}

// Topology reads the CPU and NUMA topology of the online CPUs.
//
// Nodes come from sys/devices/system/node/nodeN/cpulist; a kernel built
// without NUMA has no such directories, and then all online CPUs form node 0.
// Per CPU it reads cpu/cpuN/topology/{core_id,physical_package_id,
// thread_siblings_list}; the kernel removes that directory while a CPU is
// offline, and a missing file gets the default documented on CPU. Offline
// CPUs are left out everywhere, including node lists and sibling lists.
//
// CPUs going on- or offline while Topology reads can make it see a mix; call
// it again if that matters. A file that exists but does not parse is an error.
func (fs FS) Topology() (Topology, error) {
	online, err := fs.OnlineCPUs()
	if err != nil {
		return Topology{}, fmt.Errorf("topology: %w", err)
	}
	nodes, err := fs.numaNodes(online)
	if err != nil {
		return Topology{}, fmt.Errorf("topology: %w", err)
	}
	nodeOf := make(map[int]int, len(online))
	for _, n := range nodes {
		for _, c := range n.CPUs {
			if prev, dup := nodeOf[c]; dup {
				return Topology{}, fmt.Errorf("topology: CPU %d is listed by node %d and node %d", c, prev, n.ID)
			}
			nodeOf[c] = n.ID
		}
	}

	t := Topology{Online: online, CPUs: make([]CPU, 0, len(online)), Nodes: nodes}
	for _, id := range online {
		c, err := fs.cpu(id, online)
		if err != nil {
			return Topology{}, fmt.Errorf("topology: %w", err)
		}
		c.Node = -1
		if n, ok := nodeOf[id]; ok {
			c.Node = n
		}
		t.CPUs = append(t.CPUs, c)
	}
	return t, nil
}

// numaNodes lists the NUMA nodes, their CPU lists cut down to online.
func (fs FS) numaNodes(online []int) ([]NUMANode, error) {
	entries, err := os.ReadDir(fs.Path(nodeDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var nodes []NUMANode
	for _, e := range entries {
		id, ok := nodeID(e.Name())
		if !ok {
			continue // has_cpu, online, possible, power, ...
		}
		cpus, err := fs.ReadCPUList(nodeDir + "/" + e.Name() + "/cpulist")
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", id, err)
		}
		nodes = append(nodes, NUMANode{ID: id, CPUs: intersect(cpus, online)})
	}
	if len(nodes) == 0 {
		// CONFIG_NUMA=n: one implicit node.
		return []NUMANode{{ID: 0, CPUs: slices.Clone(online)}}, nil
	}
	slices.SortFunc(nodes, func(a, b NUMANode) int { return a.ID - b.ID })
	return nodes, nil
}

// nodeID parses "node12" as 12.
func nodeID(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "node")
	if !ok || digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.Atoi(digits)
	return id, err == nil
}

// cpu reads the topology files of one online CPU.
func (fs FS) cpu(id int, online []int) (CPU, error) {
	dir := cpuDir + "/cpu" + strconv.Itoa(id) + "/topology/"
	c := CPU{ID: id, Core: -1, Package: 0, Siblings: []int{id}}

	core, err := fs.optionalInt(dir + "core_id")
	if err != nil {
		return CPU{}, fmt.Errorf("CPU %d: %w", id, err)
	}
	if core != nil {
		c.Core = *core
	}
	pkg, err := fs.optionalInt(dir + "physical_package_id")
	if err != nil {
		return CPU{}, fmt.Errorf("CPU %d: %w", id, err)
	}
	if pkg != nil {
		c.Package = *pkg
	}

	sib, err := fs.ReadCPUList(dir + "thread_siblings_list")
	switch {
	case errors.Is(err, os.ErrNotExist):
		// keep [id]
	case err != nil:
		return CPU{}, fmt.Errorf("CPU %d: %w", id, err)
	default:
		sib = intersect(sib, online)
		if _, found := slices.BinarySearch(sib, id); !found {
			// The kernel always lists the CPU itself; a fake or racing tree
			// might not.
			sib = append(sib, id)
			slices.Sort(sib)
		}
		c.Siblings = sib
	}
	return c, nil
}

// optionalInt reads an integer file, returning nil if it does not exist.
func (fs FS) optionalInt(rel string) (*int, error) {
	n, err := fs.ReadInt(rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := int(n)
	return &v, nil
}

// intersect returns the elements of sorted a that are in sorted b.
func intersect(a, b []int) []int {
	out := make([]int, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// CPU returns the online CPU numbered id.
func (t Topology) CPU(id int) (CPU, bool) {
	i, found := slices.BinarySearchFunc(t.CPUs, id, func(c CPU, id int) int { return c.ID - id })
	if !found {
		return CPU{}, false
	}
	return t.CPUs[i], true
}

// NodeOf returns the NUMA node of an online CPU, or -1 if the CPU is not
// online or no node lists it.
func (t Topology) NodeOf(cpu int) int {
	c, ok := t.CPU(cpu)
	if !ok {
		return -1
	}
	return c.Node
}

// Node returns the NUMA node numbered id.
func (t Topology) Node(id int) (NUMANode, bool) {
	i, found := slices.BinarySearchFunc(t.Nodes, id, func(n NUMANode, id int) int { return n.ID - id })
	if !found {
		return NUMANode{}, false
	}
	return t.Nodes[i], true
}
