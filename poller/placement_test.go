package poller

import (
	"slices"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
)

func fakeTopology(t *testing.T, spec sysfstest.Spec) sysfs.Topology {
	t.Helper()
	topo, err := sysfs.New(sysfstest.Tree(t, spec)).Topology()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestPlaceSMTSiblings(t *testing.T) {
	topo := fakeTopology(t, sysfstest.DualSocketSMT())
	cpus, err := ParseCoreMask("0x101", topo.Online)
	if err != nil {
		t.Fatal(err)
	}
	got := Place(topo, cpus)
	want := []Placement{
		{Reactor: 0, CPU: 0, Node: 0, Siblings: []int{0, 8}, SiblingReactors: []int{1}},
		{Reactor: 1, CPU: 8, Node: 0, Siblings: []int{0, 8}, SiblingReactors: []int{0}},
	}
	checkPlacements(t, got, want)
	for _, p := range got {
		if !p.SharesCore() {
			t.Errorf("%v: SharesCore() = false", p)
		}
	}
	if s := got[1].String(); s != "reactor 1: CPU 8, node 0, shares its core with reactor 0" {
		t.Errorf("String() = %q", s)
	}
}

func TestPlaceOneThreadPerCore(t *testing.T) {
	topo := fakeTopology(t, sysfstest.DualSocketSMT())
	cpus, err := ParseCoreMask("0x30", topo.Online) // CPUs 4, 5: node 1, separate cores
	if err != nil {
		t.Fatal(err)
	}
	want := []Placement{
		{Reactor: 0, CPU: 4, Node: 1, Siblings: []int{4, 12}},
		{Reactor: 1, CPU: 5, Node: 1, Siblings: []int{5, 13}},
	}
	got := Place(topo, cpus)
	checkPlacements(t, got, want)
	if got[0].SharesCore() {
		t.Error("SharesCore() = true")
	}
	if s := got[0].String(); s != "reactor 0: CPU 4, node 1" {
		t.Errorf("String() = %q", s)
	}
}

func TestPlaceMixed(t *testing.T) {
	topo := fakeTopology(t, sysfstest.DualSocketSMT())
	// Reactors in the order given, not sorted: 8 and 0 share a core, 12
	// and 4 do too, 1 is alone. CPU 0 is also given twice.
	cpus := []int{8, 1, 4, 0, 12, 0}
	got := Place(topo, cpus)
	want := []Placement{
		{Reactor: 0, CPU: 8, Node: 0, Siblings: []int{0, 8}, SiblingReactors: []int{3, 5}},
		{Reactor: 1, CPU: 1, Node: 0, Siblings: []int{1, 9}},
		{Reactor: 2, CPU: 4, Node: 1, Siblings: []int{4, 12}, SiblingReactors: []int{4}},
		{Reactor: 3, CPU: 0, Node: 0, Siblings: []int{0, 8}, SiblingReactors: []int{0, 5}},
		{Reactor: 4, CPU: 12, Node: 1, Siblings: []int{4, 12}, SiblingReactors: []int{2}},
		{Reactor: 5, CPU: 0, Node: 0, Siblings: []int{0, 8}, SiblingReactors: []int{0, 3}},
	}
	checkPlacements(t, got, want)
	if s := got[0].String(); s != "reactor 0: CPU 8, node 0, shares its core with reactors 3, 5" {
		t.Errorf("String() = %q", s)
	}
}

func TestPlaceUnknownCPU(t *testing.T) {
	topo := fakeTopology(t, sysfstest.PartlyOffline())
	got := Place(topo, []int{1, 2})
	want := []Placement{
		{Reactor: 0, CPU: 1, Node: 0, Siblings: []int{1}},
		{Reactor: 1, CPU: 2, Node: -1, Siblings: []int{2}}, // offline
	}
	checkPlacements(t, got, want)
	if len(Place(topo, nil)) != 0 {
		t.Error("Place(nil) not empty")
	}
}

func TestPlaceDoesNotAliasTopology(t *testing.T) {
	topo := fakeTopology(t, sysfstest.DualSocketSMT())
	got := Place(topo, []int{0})
	got[0].Siblings[0] = 99
	if c, _ := topo.CPU(0); c.Siblings[0] != 0 {
		t.Errorf("Place shares Siblings with the topology: %v", c.Siblings)
	}
}

func checkPlacements(t *testing.T, got, want []Placement) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d placements, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Reactor != w.Reactor || g.CPU != w.CPU || g.Node != w.Node ||
			!slices.Equal(g.Siblings, w.Siblings) || !slices.Equal(g.SiblingReactors, w.SiblingReactors) {
			t.Errorf("placement %d = %+v, want %+v", i, g, w)
		}
	}
}
