package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/usrpt/usrpt/server"
)

// Exit codes of usrpt serve (docs/configuration.md, "Exit codes").
const (
	exitOK           = 0
	exitRuntime      = 1 // a failure while running: an engine, a listener
	exitConfig       = 2 // bad flags or configuration: nothing was started
	exitDrainTimeout = 3 // SIGTERM's drain did not finish within --shutdown-timeout
)

// Hooks for the control socket and the Prometheus endpoint, which live in
// server/control and server/metrics. Their wiring files in this package
// set these from init(), so serve.go builds and runs without them.
//
// HOOK: startControl serves usrpt ctl's JSON-RPC on the unix socket path
// once the server has started; stop closes it, before the drain.
// HOOK: startMetrics serves /metrics on addr likewise.
var (
	startControl func(ctx context.Context, path string, s *server.Server) (stop func(), err error)
	startMetrics func(ctx context.Context, addr string, s *server.Server) (stop func(), err error)
)

type serveFlags struct {
	config, transport, listen, cores, idle, guid, control, metrics string
	check                                                          bool
	luns, acls                                                     []string
	shutdownTimeout                                                time.Duration
}

func newServeCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve [--config FILE] [--check] [--lun SPEC]... [--acl ID|IP|*]...",
		Short: "run the SRP target daemon",
		Long: `serve runs the SRP target: reactors, LUNs, ACLs and listeners from a TOML
configuration (--config; docs/configuration.md) and the quick-start flags,
which override or extend the file.

  usrpt serve --lun mem:1GiB --acl '*'
  usrpt serve --config /etc/usrpt/usrpt.toml
  usrpt serve --check --config usrpt.toml     # every problem, with its line and fix

--lun specs, numbered 0, 1, ... after the file's LUNs: null:SIZE, mem:SIZE,
uring:PATH, psync:PATH, file:PATH (the best engine for the file), each with
optional ,bs=4096 ,wc ,ro ,size=SIZE ,create ,buffered ,serial=S.

Without an ACL nobody may log in (deny by default): --acl '*' admits every
initiator; --acl takes initiator port IDs (32 hex digits, * and ? wildcards),
IP addresses and CIDR prefixes. The transport is loop (in-process) for now:
roce and ibv, and with them the default --transport roce --listen
0.0.0.0:5555, arrive with issue 8.

Signals: SIGTERM and SIGINT drain (no new logins, I/O in flight finished,
write caches flushed) within --shutdown-timeout; SIGHUP reloads --config and
applies LUN and ACL changes live.

Exit status: 0 clean shutdown, 1 runtime error, 2 bad configuration or flags
(nothing started), 3 the drain timed out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "TOML configuration file (docs/configuration.md)")
	fl.BoolVar(&f.check, "check", false, "check the configuration, print every problem with its line, and exit (2 on problems)")
	fl.StringArrayVar(&f.luns, "lun", nil, "add a LUN: null:SIZE, mem:SIZE, uring:PATH, psync:PATH or file:PATH (repeatable; numbered in order)")
	fl.StringVar(&f.transport, "transport", "", "transport of the listener: loop (default; roce and ibv arrive with issue 8)")
	fl.StringVar(&f.listen, "listen", "", fmt.Sprintf("listen address IP:PORT (default port %d; loop default %s)", server.DefaultPort, server.DefaultLoopAddress))
	fl.StringVar(&f.cores, "cores", "", "reactor core mask (0x3, [0,2-3], 0-3); default: the first online CPU")
	fl.StringVar(&f.idle, "idle", "", "reactor idle policy: busy (dedicated cores) or adaptive")
	fl.StringVar(&f.guid, "guid", "", "target GUID as 16 hex digits (default: EUI-64 of the listen interface's MAC)")
	fl.StringArrayVar(&f.acls, "acl", nil, "admit initiators: '*', a port ID pattern, an IP or a CIDR prefix (repeatable; one group \"cli\" seeing every LUN)")
	fl.StringVar(&f.control, "control", "", fmt.Sprintf("control socket for usrpt ctl (default %s; - for none)", server.DefaultControlSocket))
	fl.StringVar(&f.metrics, "metrics", "", "Prometheus /metrics listen address, e.g. :9456 (default off)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 0, "bound on the drain at SIGTERM (default 30s)")
	return cmd
}

// buildConfig loads --config, if any, and applies the flags over it.
func buildConfig(f *serveFlags) (server.Config, error) {
	var cfg server.Config
	if f.config != "" {
		var err error
		if cfg, err = server.LoadFile(f.config); err != nil {
			return cfg, err
		}
	}
	var ps []server.Problem
	next := uint16(0)
	for _, l := range cfg.LUNs {
		next = max(next, l.Number+1)
	}
	for _, spec := range f.luns {
		l, err := server.ParseLUNSpec(spec, next)
		if err != nil {
			ps = append(ps, server.Problem{Key: "--lun", Message: err.Error(), Fix: "write --lun mem:1GiB, --lun uring:/dev/nvme0n1 or --lun file:/path/img"})
			continue
		}
		cfg.LUNs = append(cfg.LUNs, l)
		next++
	}
	if f.transport != "" || f.listen != "" {
		ln := server.ListenerConfig{Transport: f.transport, Address: f.listen}
		if ln.Transport == "" {
			ln.Transport = "loop"
			if len(cfg.Listeners) > 0 {
				ln.Transport = cfg.Listeners[0].Transport
			}
		}
		cfg.Listeners = []server.ListenerConfig{ln}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Target.Cores, f.cores)
	set(&cfg.Target.Idle, f.idle)
	set(&cfg.Target.GUID, f.guid)
	set(&cfg.Control.Socket, f.control)
	set(&cfg.Metrics.Listen, f.metrics)
	if f.shutdownTimeout != 0 {
		cfg.Target.ShutdownTimeout = server.Duration(f.shutdownTimeout)
	}
	if len(f.acls) > 0 {
		var ids []string
		for _, a := range f.acls {
			ids = append(ids, strings.Split(a, ",")...)
		}
		cfg.ACLs = append(slices.DeleteFunc(cfg.ACLs, func(a server.ACLConfig) bool { return a.Name == "cli" }),
			server.ACLConfig{Name: "cli", Initiators: ids})
	}
	if len(ps) > 0 {
		return cfg, &server.ConfigError{Problems: ps}
	}
	// A file was checked with its lines by LoadFile; check the merge again
	// for what the flags brought.
	return cfg, cfg.Validate()
}

// printProblems writes a *ConfigError as --check shows it: one problem a
// line with FILE:LINE, then its fix indented.
func printProblems(w io.Writer, err error) {
	var ce *server.ConfigError
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, "usrpt serve:", err)
		return
	}
	for _, p := range ce.Problems {
		loc := ce.File
		if loc == "" {
			loc = "flags"
		}
		if p.Line > 0 {
			loc = fmt.Sprintf("%s:%d", loc, p.Line)
		}
		if p.Key != "" {
			fmt.Fprintf(w, "%s: %s: %s\n", loc, p.Key, p.Message)
		} else {
			fmt.Fprintf(w, "%s: %s\n", loc, p.Message)
		}
		if p.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", p.Fix)
		}
	}
	fmt.Fprintf(w, "%d problem(s); nothing was started\n", len(ce.Problems))
}

func runServe(ctx context.Context, cmd *cobra.Command, f *serveFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	log := slog.Default().With("component", "serve")
	cfg, err := buildConfig(f)
	if err != nil {
		printProblems(stderr, err)
		return exitError{exitConfig}
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if f.check {
		fmt.Fprintf(stdout, "configuration OK: %d LUN(s), %d ACL group(s), %d listener(s)\n", len(cfg.LUNs), len(cfg.ACLs), max(1, len(cfg.Listeners)))
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Signals are taken before the server starts, so that a SIGTERM during
	// start-up still drains rather than killing the process half-started.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	s, err := server.New(cfg, slog.Default())
	if err != nil {
		var ce *server.ConfigError
		if errors.As(err, &ce) {
			printProblems(stderr, err)
			return exitError{exitConfig}
		}
		fmt.Fprintln(stderr, "usrpt serve:", err)
		return exitError{exitRuntime}
	}
	printServing(stdout, s)

	var stops []func()
	hookCtx, cancelHooks := context.WithCancel(ctx)
	defer cancelHooks()
	hookFail := func(what string, err error) error {
		fmt.Fprintf(stderr, "usrpt serve: %s: %v\n", what, err)
		for _, stop := range stops {
			stop()
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.Config().Target.ShutdownTimeout))
		defer cancel()
		_ = s.Shutdown(sctx)
		return exitError{exitRuntime}
	}
	if path := s.Config().Control.Socket; startControl != nil && path != "-" {
		stop, err := startControl(hookCtx, path, s)
		if err != nil {
			return hookFail("control socket "+path, err)
		}
		stops = append(stops, stop)
	}
	if addr := s.Config().Metrics.Listen; startMetrics != nil && addr != "" {
		stop, err := startMetrics(hookCtx, addr, s)
		if err != nil {
			return hookFail("metrics "+addr, err)
		}
		stops = append(stops, stop)
	}

	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(s, f, log)
				continue
			}
			log.Info("signal: draining", "signal", sig.String())
		case <-ctx.Done():
			log.Info("context ended: draining")
		case <-s.Done():
			// Shut down from elsewhere (usrpt ctl shutdown).
		}
		break
	}
	for _, stop := range stops {
		stop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.Config().Target.ShutdownTimeout))
	defer cancel()
	err = s.Shutdown(sctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, server.ErrDrainTimeout):
		fmt.Fprintln(stderr, "usrpt serve:", err)
		return exitError{exitDrainTimeout}
	default:
		fmt.Fprintln(stderr, "usrpt serve:", err)
		return exitError{exitRuntime}
	}
}

// reload re-reads --config (with the flags over it, as at start) and
// applies the differences; a bad file changes nothing.
func reload(s *server.Server, f *serveFlags, log *slog.Logger) {
	if f.config == "" {
		log.Warn("SIGHUP: reload needs --config; the flags-only configuration has nothing to re-read")
		return
	}
	cfg, err := buildConfig(f)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return
	}
	ch, err := s.Apply(cfg)
	if err != nil {
		log.Error("SIGHUP: reload", "err", err)
		return
	}
	log.Info("SIGHUP: reloaded", "changes", ch.String())
	if len(ch.NeedRestart) > 0 {
		log.Warn("SIGHUP: some changes need a restart", "tables", strings.Join(ch.NeedRestart, ", "))
	}
}

// printServing says what the target serves and how to log in to it.
func printServing(w io.Writer, s *server.Server) {
	fmt.Fprintf(w, "usrpt serving, target GUID %016x\n", s.GUID())
	for _, l := range s.LUNs() {
		where := l.Path
		if where == "" {
			where = "-"
		}
		cache := "write-through"
		if l.WriteCache {
			cache = "write-back"
		}
		ro := ""
		if l.ReadOnly {
			ro = ", read-only"
		}
		fmt.Fprintf(w, "  LUN %d: %s (%s) %s, %s, %d-byte blocks, %s%s, serial %s\n",
			l.Number, l.Backend, l.Engine, where, server.FormatSize(uint64(l.SizeBytes)), l.BlockSize, cache, ro, l.Serial)
	}
	cfg := s.Config()
	for i, ls := range s.LoginStrings() {
		fmt.Fprintf(w, "  listener %s %s; ib_srp add_target:\n    %s\n", cfg.Listeners[i].Transport, cfg.Listeners[i].Address, ls)
	}
	if len(cfg.ACLs) == 0 {
		fmt.Fprintln(w, "  no ACL: every login is rejected; add --acl '*' or an [[acl]] group")
	}
}
