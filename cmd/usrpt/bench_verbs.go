package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/usrpt/usrpt/bench"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/verbs"
	"github.com/usrpt/usrpt/verbs/loop"
)

// pairFlags are the flags of the benchmarks that run on two pinned
// reactors (reactor, verbs).
type pairFlags struct {
	cores, format, idle string
	duration, spin      time.Duration
}

func (f *pairFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.cores, "cores", "", "core mask; the first two CPUs are used (default: all online CPUs)")
	fl.DurationVar(&f.duration, "time", time.Second, "duration of each phase")
	fl.StringVar(&f.idle, "idle", "busy", "idle policy: busy or adaptive")
	fl.DurationVar(&f.spin, "idle-spin", poller.DefaultSpinFor, "adaptive policy: how long a reactor spins after its last work before it sleeps")
	fl.StringVarP(&f.format, "output-format", "o", "text", "text or json")
}

// resolve checks the flags and returns the CPUs and the idle policy.
func (f *pairFlags) resolve() ([]int, poller.IdlePolicy, error) {
	if err := outputFormat(f.format); err != nil {
		return nil, poller.IdlePolicy{}, err
	}
	pol, err := idlePolicy(f.idle, f.spin)
	if err != nil {
		return nil, pol, err
	}
	if f.duration <= 0 {
		return nil, pol, fmt.Errorf("--time %v: must be positive", f.duration)
	}
	cpus, err := reactorCPUs(f.cores)
	return cpus, pol, err
}

// emit writes rep as --output-format says.
func (f *pairFlags) emit(w io.Writer, rep interface{ WriteText(io.Writer) error }) error {
	if f.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(w)
}

// reactorCPUs is --cores resolved against the online CPUs (all of them
// when empty).
func reactorCPUs(cores string) ([]int, error) {
	online, err := sysfs.New("").OnlineCPUs()
	if err != nil {
		return nil, err
	}
	if cores == "" {
		return online, nil
	}
	return poller.ParseCoreMask(cores, online)
}

// idlePolicy is --idle and --idle-spin checked.
func idlePolicy(idle string, spin time.Duration) (poller.IdlePolicy, error) {
	mode, err := poller.ParseIdleMode(idle)
	if err != nil {
		return poller.IdlePolicy{}, err
	}
	if spin < 0 {
		return poller.IdlePolicy{}, fmt.Errorf("--idle-spin %v: must not be negative", spin)
	}
	return poller.IdlePolicy{Mode: mode, SpinFor: spin}, nil
}

func newBenchVerbsCmd() *cobra.Command {
	var (
		f          pairFlags
		transport  string
		msg, depth int
		writeSizes []string
	)
	cmd := &cobra.Command{
		Use:   "verbs",
		Short: "measure an RDMA transport: SEND/RECV round trips and RDMA WRITE throughput between two pinned reactors",
		Long: `Connect a client and a server queue pair through the connection manager of
--transport, each polled by a reactor pinned to one of the first two CPUs of
--cores, and measure:
  - SEND/RECV round trips of --msg bytes (the client sends, the server
    answers), with a latency histogram reported as fio-style percentiles;
  - RDMA WRITE throughput from the client into the server's memory for each
    --write size, --depth writes in flight, posted as chains.
Transports: loop (the in-process fabric: RDMA semantics by memory copy, what
the protocol layers cost without a wire). roce and ibv come with their
issues.`,
		Example: `  usrpt bench verbs
  usrpt bench verbs --cores 0-1 --time 5s --msg 64 --write 4k,64k --depth 32
  usrpt bench verbs --output-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cpus, pol, err := f.resolve()
			if err != nil {
				return err
			}
			var writes []int
			for _, w := range writeSizes {
				n, err := parseSize("--write", w)
				if err != nil {
					return err
				}
				if n == 0 || n > 1<<20 {
					return fmt.Errorf("--write %s: want 1 byte to 1MiB", w)
				}
				writes = append(writes, int(n))
			}
			if transport != "loop" {
				return fmt.Errorf("--transport %q: only loop exists so far (roce and ibv are still to come)", transport)
			}
			rep, err := bench.RunVerbs(bench.VerbsConfig{
				Transport: transport, Open: openLoopPair, CPUs: cpus, Duration: f.duration,
				MsgSize: msg, Writes: writes, Depth: depth, Idle: pol,
			})
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), rep)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	fl.StringVar(&transport, "transport", "loop", "RDMA transport: loop")
	fl.IntVar(&msg, "msg", 64, "SEND/RECV message size in bytes")
	fl.StringSliceVar(&writeSizes, "write", []string{"4k", "64k"}, "RDMA WRITE sizes, comma separated (k, m: powers of 1024)")
	fl.IntVar(&depth, "depth", 16, "RDMA WRITEs in flight")
	return cmd
}

// openLoopPair makes an in-process fabric with a client and a server device.
func openLoopPair() (client, server verbs.Device, addr string, err error) {
	f := loop.NewFabric()
	if client, err = f.NewDevice("loop0"); err != nil {
		return nil, nil, "", err
	}
	if server, err = f.NewDevice("loop1"); err != nil {
		return nil, nil, "", err
	}
	return client, server, "usrpt-bench", nil
}
