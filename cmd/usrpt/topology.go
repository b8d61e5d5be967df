package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/klauspost/cpuid/v2"
	"github.com/spf13/cobra"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
)

type topologyReport struct {
	CPUModel  string             `json:"cpu_model"`
	Vendor    string             `json:"vendor"`
	Online    string             `json:"online"`
	CPUs      []sysfs.CPU        `json:"cpus"`
	Nodes     []sysfs.NUMANode   `json:"numa_nodes"`
	Mask      string             `json:"mask,omitempty"`
	Reactors  []poller.Placement `json:"reactors,omitempty"`
	Warnings  []string           `json:"warnings,omitempty"`
	GoMaxProc int                `json:"gomaxprocs"`
	// Hugepages is the 2 MiB pool the buffer allocator draws from; nil when
	// the kernel has none.
	Hugepages *hugemem.HugeInfo `json:"hugepages_2mib,omitempty"`
}

func newTopologyCmd() *cobra.Command {
	var cores, format, root string
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "show CPUs, NUMA nodes, SMT siblings and where reactors would run",
		Long: `Print the host's online CPUs, NUMA nodes and SMT siblings, read from sysfs.
With --cores, also show where a reactor for each CPU of the mask would run and
warn about reactors that share a physical core or span NUMA nodes.

Core masks are written as SPDK and taskset users write them:
  0x3, 3        hexadecimal bitmask (CPUs 0 and 1)
  [0,2-3]       list in brackets (SPDK)
  0-3,8-11      list (taskset -c)`,
		Example: `  usrpt topology
  usrpt topology --cores 0x3
  usrpt topology --cores '[0,2-3]' --output-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFormat(format); err != nil {
				return err
			}
			topo, err := sysfs.New(root).Topology()
			if err != nil {
				return err
			}
			rep := topologyReport{
				CPUModel: cpuid.CPU.BrandName, Vendor: cpuid.CPU.VendorString,
				Online: sysfs.FormatCPUList(topo.Online), CPUs: topo.CPUs, Nodes: topo.Nodes,
				GoMaxProc: runtime.GOMAXPROCS(0),
			}
			if hi, err := hugemem.Hugepages(root); err == nil {
				rep.Hugepages = &hi
			}
			if cmd.Flags().Changed("cores") {
				cpus, err := poller.ParseCoreMask(cores, topo.Online)
				if err != nil {
					return err
				}
				rep.Mask = cores
				rep.Reactors = poller.Place(topo, cpus)
				rep.Warnings = placementWarnings(rep.Reactors, len(topo.Online))
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return writeTopology(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVar(&cores, "cores", "", "core mask for reactors, e.g. 0x3, [0,2-3] or 0-3,8-11")
	cmd.Flags().StringVarP(&format, "output-format", "o", "text", "text or json")
	cmd.Flags().StringVar(&root, "root", "/", "root of the sysfs tree to read (for testing)")
	_ = cmd.Flags().MarkHidden("root")
	return cmd
}

func placementWarnings(ps []poller.Placement, online int) []string {
	var w []string
	nodes := map[int]bool{}
	for _, p := range ps {
		nodes[p.Node] = true
		if len(p.SiblingReactors) > 0 {
			w = append(w, fmt.Sprintf("reactor %d on CPU %d shares its physical core with reactor(s) %v: SMT siblings halve each other's polling throughput", p.Reactor, p.CPU, p.SiblingReactors))
		}
	}
	if len(nodes) > 1 {
		w = append(w, fmt.Sprintf("reactors span %d NUMA nodes: place channels on reactors local to the device", len(nodes)))
	}
	if len(ps) >= online {
		w = append(w, fmt.Sprintf("the mask takes all %d online CPUs: busy-polling reactors leave none for the kernel, control plane and GC; consider --idle adaptive", online))
	}
	return w
}

func writeTopology(out io.Writer, r topologyReport) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CPU model: %s (%s)\n", r.CPUModel, r.Vendor)
	fmt.Fprintf(tw, "online CPUs: %s (%d)\n", r.Online, len(r.CPUs))
	fmt.Fprintf(tw, "NUMA nodes: %d\n", len(r.Nodes))
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "  node %d\tCPUs %s\n", n.ID, sysfs.FormatCPUList(n.CPUs))
	}
	if h := r.Hugepages; h != nil {
		fmt.Fprintf(tw, "hugepages (2 MiB): %d reserved, %d free\n", h.Total, h.Free)
	} else {
		fmt.Fprintf(tw, "hugepages (2 MiB): not available; buffers use 4 KiB pages\n")
	}
	fmt.Fprintf(tw, "\ncpu\tnode\tpackage\tcore\tsmt siblings\n")
	for _, c := range r.CPUs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\n", c.ID, c.Node, c.Package, c.Core, sysfs.FormatCPUList(c.Siblings))
	}
	if r.Mask != "" {
		fmt.Fprintf(tw, "\nreactors for --cores %s (%s):\n", r.Mask, poller.FormatCoreMaskHex(cpusOf(r.Reactors)))
		fmt.Fprintf(tw, "reactor\tcpu\tnode\tsmt siblings\tshares core with\n")
		for _, p := range r.Reactors {
			shared := "-"
			if len(p.SiblingReactors) > 0 {
				shared = strings.Trim(fmt.Sprint(p.SiblingReactors), "[]")
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\n", p.Reactor, p.CPU, p.Node, sysfs.FormatCPUList(p.Siblings), shared)
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(tw, "warning: %s\n", w)
		}
	}
	return tw.Flush()
}

func cpusOf(ps []poller.Placement) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.CPU
	}
	return out
}
