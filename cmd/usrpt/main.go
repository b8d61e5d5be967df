// Command usrpt is a user-space SCSI RDMA Protocol (SRP) target with a
// kernel-bypass data plane, and the tools around it. Run `usrpt --help`.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status for errors the command already
// printed in full.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := newRoot(os.Stdout, os.Stderr)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "usrpt:", err)
		os.Exit(1)
	}
}

type globals struct {
	logLevel   string
	logFormat  string
	cpuProfile string
	profile    *os.File
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "usrpt",
		Short: "user-space SRP target with a kernel-bypass data plane",
		Long: `usrpt is a user-space SCSI RDMA Protocol (SRP) target for stock Linux ib_srp
initiators, built on per-core pinned reactors that busy-poll their work.

usrpt serve runs the target (its config: docs/configuration.md), usrpt ctl
talks to it, usrpt bench measures engines, the SCSI core and the whole SRP
path. Each command has --help. This build has the in-process loop transport;
RoCEv2, libibverbs and the host tuner (tune) are still to come: see README.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := setupLogging(g, stderr); err != nil {
				return err
			}
			return startProfile(g)
		},
		PersistentPostRunE: func(cmd *cobra.Command, args []string) error {
			return stopProfile(g)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the command to this file (go tool pprof)")
	root.AddCommand(newVersionCmd(), newTopologyCmd(), newBenchCmd(), newServeCmd(), newCtlCmd())
	return root
}

func setupLogging(g *globals, w io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(w, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(w, opts)))
	default:
		return fmt.Errorf("--log-format %q: want text or json", g.logFormat)
	}
	return nil
}

// outputFormat validates the --output-format flag shared by reporting commands.
func outputFormat(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("--output-format %q: want text or json", s)
	}
	return nil
}

// startProfile starts the --cpuprofile profile, if asked for.
func startProfile(g *globals) error {
	if g.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(g.cpuProfile)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	g.profile = f
	return nil
}

func stopProfile(g *globals) error {
	if g.profile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := g.profile.Close()
	g.profile = nil
	return err
}
