package poller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// Placement says where one reactor of a core mask runs and what it shares
// its core with. Two busy-polling reactors on SMT siblings halve each
// other's throughput, which is rarely what the mask's author meant and is
// worth a warning.
type Placement struct {
	Reactor int // index in the CPU list
	CPU     int
	Node    int // NUMA node of CPU; -1 if the topology does not know the CPU
	// Siblings are CPU's SMT threads, itself included, from the topology;
	// [CPU] if it does not know the CPU.
	Siblings []int
	// SiblingReactors are the other reactors whose CPU is in Siblings,
	// ascending; nil when the reactor has its core to itself. A reactor
	// given the very same CPU twice counts too.
	SiblingReactors []int
}

// SharesCore reports whether another reactor runs on the same physical core.
func (p Placement) SharesCore() bool { return len(p.SiblingReactors) > 0 }

// String describes the placement for logs and reports:
// "reactor 1: CPU 8, node 0, shares its core with reactor 0".
func (p Placement) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reactor %d: CPU %d, node %d", p.Reactor, p.CPU, p.Node)
	if p.SharesCore() {
		s := "reactor"
		if len(p.SiblingReactors) > 1 {
			s = "reactors"
		}
		parts := make([]string, len(p.SiblingReactors))
		for i, r := range p.SiblingReactors {
			parts[i] = fmt.Sprint(r)
		}
		fmt.Fprintf(&b, ", shares its core with %s %s", s, strings.Join(parts, ", "))
	}
	return b.String()
}

// Place lays reactor i on cpus[i], typically the result of ParseCoreMask, and
// looks up each CPU's NUMA node and SMT siblings in topo. CPUs the topology
// does not know (offline, or a topology from another host) get node -1 and
// no siblings but themselves. The result has one entry per CPU and shares no
// memory with topo.
func Place(topo sysfs.Topology, cpus []int) []Placement {
	reactorsOn := make(map[int][]int, len(cpus)) // CPU -> reactors, ascending
	for i, c := range cpus {
		reactorsOn[c] = append(reactorsOn[c], i)
	}
	out := make([]Placement, len(cpus))
	for i, c := range cpus {
		p := Placement{Reactor: i, CPU: c, Node: -1, Siblings: []int{c}}
		if tc, ok := topo.CPU(c); ok {
			p.Node = tc.Node
			p.Siblings = slices.Clone(tc.Siblings)
		}
		for _, s := range p.Siblings {
			for _, r := range reactorsOn[s] {
				if r != i {
					p.SiblingReactors = append(p.SiblingReactors, r)
				}
			}
		}
		slices.Sort(p.SiblingReactors)
		out[i] = p
	}
	return out
}
