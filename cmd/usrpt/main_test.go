package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestTopologyText(t *testing.T) {
	tree := sysfstest.Tree(t, sysfstest.DualSocketSMT())
	out, _, err := run(t, "topology", "--root", tree, "--cores", "0x101")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"online CPUs: 0-15 (16)",
		"NUMA nodes: 2",
		"node 1  CPUs 4-7,12-15",
		"reactors for --cores 0x101 (0x101)",
		"reactor 0 on CPU 0 shares its physical core with reactor(s) [1]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTopologyHugepages(t *testing.T) {
	spec := sysfstest.SmallVM()
	spec.Files = sysfstest.FileMap{
		"sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages":   "64\n",
		"sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages": "60\n",
	}
	out, _, err := run(t, "topology", "--root", sysfstest.Tree(t, spec))
	if err != nil || !strings.Contains(out, "hugepages (2 MiB): 64 reserved, 60 free") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
	out, _, err = run(t, "topology", "--root", sysfstest.Tree(t, sysfstest.SmallVM()))
	if err != nil || !strings.Contains(out, "hugepages (2 MiB): not available") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestTopologyJSON(t *testing.T) {
	tree := sysfstest.Tree(t, sysfstest.DualSocketSMT())
	out, _, err := run(t, "topology", "--root", tree, "--cores", "[0,4]", "--output-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep topologyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Online != "0-15" || len(rep.CPUs) != 16 || len(rep.Nodes) != 2 || len(rep.Reactors) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Reactors[1].CPU != 4 || rep.Reactors[1].Node != 1 {
		t.Errorf("reactor 1 = %+v, want CPU 4 on node 1", rep.Reactors[1])
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "2 NUMA nodes") {
		t.Errorf("warnings %q, want the NUMA span warning", rep.Warnings)
	}
}

func TestTopologyBadMask(t *testing.T) {
	tree := sysfstest.Tree(t, sysfstest.PartlyOffline())
	for mask, want := range map[string]string{
		"0-3":   `CPU 2 (token "0-3") is not online; online CPUs: 0-1,4-7`,
		"":      "empty",
		"0xzz":  `"0xzz"`,
		"[1,x]": "online CPUs: 0-1,4-7",
	} {
		_, _, err := run(t, "topology", "--root", tree, "--cores", mask)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--cores %q: error %v, want it to contain %q", mask, err, want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"topology", "--output-format", "yaml"},
		{"--log-level", "loud", "version"},
		{"bench", "reactor", "--idle", "sometimes"},
		{"bench", "reactor", "--time", "0s"},
		{"bench", "reactor", "--idle-spin", "-1s"},
		{"bench", "--engine", "null", "--hipri"},
		{"bench", "--engine", "mem", "--sqthread_poll_cpu", "1"},
		{"bench", "--engine", "psync", "--filename", "/nonexistent/x", "--psync-workers", "65"},
	} {
		if _, _, err := run(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestBenchReactorJSON(t *testing.T) {
	out, _, err := run(t, "bench", "reactor", "--time", "50ms", "--batch", "4", "--idle", "adaptive", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rings []struct {
			Batch int    `json:"batch"`
			Items uint64 `json:"items"`
		} `json:"ring_transfer"`
		RoundTrip struct {
			Count int64 `json:"count"`
			P99   int64 `json:"p99_ns"`
		} `json:"message_round_trip"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rep.Rings) != 1 || rep.Rings[0].Batch != 4 || rep.Rings[0].Items == 0 || rep.RoundTrip.Count == 0 || rep.RoundTrip.P99 <= 0 {
		t.Fatalf("report %+v", rep)
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func TestEveryCommandHasHelp(t *testing.T) {
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range allCommands(root) {
		if c.Short == "" {
			t.Errorf("%q has no short help", c.CommandPath())
		}
		if c.Runnable() && c.Long == "" && c.Name() != "version" {
			t.Errorf("%q has no long help", c.CommandPath())
		}
		out, _, err := run(t, append(strings.Fields(c.CommandPath())[1:], "--help")...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%q --help: %v\n%s", c.CommandPath(), err, out)
		}
	}
}

func TestBenchVerbsJSON(t *testing.T) {
	out, _, err := run(t, "bench", "verbs", "--cores", "0x1", "--time", "50ms", "--msg", "256", "--write", "4k,1m", "--depth", "4", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Transport string `json:"transport"`
		RoundTrip struct {
			Count int64 `json:"count"`
		} `json:"send_recv_round_trip"`
		Writes []struct {
			Size int    `json:"size"`
			Ops  uint64 `json:"ops"`
		} `json:"rdma_write"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Transport != "loop" || rep.RoundTrip.Count == 0 || len(rep.Writes) != 2 || rep.Writes[1].Size != 1<<20 || rep.Writes[1].Ops == 0 {
		t.Errorf("report %+v", rep)
	}
	for _, args := range [][]string{
		{"--transport", "roce"}, {"--write", "0"}, {"--write", "2m"}, {"--time", "0s"}, {"--idle", "nap"}, {"--msg", "0"},
	} {
		if _, _, err := run(t, append([]string{"bench", "verbs", "--time", "10ms"}, args...)...); err == nil {
			t.Errorf("bench verbs %v: no error", args)
		}
	}
}
