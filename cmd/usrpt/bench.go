package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/usrpt/usrpt/bench"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "benchmark harness",
		Long: `Benchmarks that report operations per second and latency percentiles the
way fio users expect. Workloads are subcommands.`,
	}
	cmd.AddCommand(newBenchReactorCmd())
	return cmd
}

func newBenchReactorCmd() *cobra.Command {
	var (
		cores, format, idle string
		duration, spin      time.Duration
		batches             []int
	)
	cmd := &cobra.Command{
		Use:   "reactor",
		Short: "measure the poller runtime: ring transfer and message round trips between pinned reactors",
		Long: `Start two reactors pinned to the first two CPUs of --cores and measure:
  - SPSC ring transfer throughput from one to the other, per batch size;
  - message round trips over the reactors' MPSC inboxes, with a latency
    histogram (HdrHistogram) reported as fio-style percentiles;
  - each reactor's busy share while it ran.
These are the floors every cross-core hand-off in the target pays.`,
		Example: `  usrpt bench reactor
  usrpt bench reactor --cores 0x3 --time 5s --batch 1,8,32
  usrpt bench reactor --idle adaptive --output-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFormat(format); err != nil {
				return err
			}
			mode, err := poller.ParseIdleMode(idle)
			if err != nil {
				return err
			}
			online, err := sysfs.New("").OnlineCPUs()
			if err != nil {
				return err
			}
			cpus := online
			if cores != "" {
				if cpus, err = poller.ParseCoreMask(cores, online); err != nil {
					return err
				}
			}
			if duration <= 0 {
				return fmt.Errorf("--time %v: must be positive", duration)
			}
			if spin < 0 {
				return fmt.Errorf("--idle-spin %v: must not be negative", spin)
			}
			rep, err := bench.RunReactor(bench.ReactorConfig{
				CPUs: cpus, Duration: duration, Batches: batches,
				Idle: poller.IdlePolicy{Mode: mode, SpinFor: spin},
			})
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&cores, "cores", "", "core mask; the first two CPUs are used (default: all online CPUs)")
	cmd.Flags().DurationVar(&duration, "time", time.Second, "duration of each phase")
	cmd.Flags().IntSliceVar(&batches, "batch", []int{1, 32}, "ring transfer batch sizes")
	cmd.Flags().StringVar(&idle, "idle", "busy", "idle policy: busy or adaptive")
	cmd.Flags().DurationVar(&spin, "idle-spin", poller.DefaultSpinFor, "adaptive policy: how long a reactor spins after its last work before it sleeps")
	cmd.Flags().StringVarP(&format, "output-format", "o", "text", "text or json")
	return cmd
}
