package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/usrpt/usrpt/server"
	"github.com/usrpt/usrpt/server/control"
	"github.com/usrpt/usrpt/target"
)

// ctlFlags are usrpt ctl's flags, shared by its subcommands.
type ctlFlags struct {
	socket  string
	format  string
	timeout time.Duration
}

func newCtlCmd() *cobra.Command {
	f := &ctlFlags{}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "control a running usrpt serve: sessions, LUNs, ACLs, stats",
		Long: `Talk to a running usrpt serve over its control socket (JSON-RPC 2.0 on a
unix socket, mode 0600; see docs/control.md): list sessions with their
channels and counters, LUNs, ACLs and stats; add, remove and resize LUNs
live (initiators that see them get REPORTED LUNS DATA HAS CHANGED or
CAPACITY DATA HAS CHANGED); add and remove ACL groups; log a session out.

Text output is aligned tables; --output-format json prints the method's
result as JSON (an array for sessions, luns and acls; an object for stats).`,
		Example: `  usrpt ctl luns
  usrpt ctl --socket /tmp/usrpt.sock sessions
  usrpt ctl lun add mem:256MiB
  usrpt ctl lun add uring:/dev/nvme0n1 --number 3 --write-cache
  usrpt ctl lun resize 3 2TiB
  usrpt ctl acl add lab 0x*,10.0.0.0/24 0-3
  usrpt ctl stats -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.socket, "socket", server.DefaultControlSocket, "usrpt serve's control socket")
	pf.StringVarP(&f.format, "output-format", "o", "text", "text or json")
	pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on the server after this long")

	lun := &cobra.Command{
		Use:   "lun",
		Short: "add, remove or resize a LUN",
		Long: `Change the exported LUNs of a running usrpt serve: add, remove and resize
(see each subcommand's --help). Initiators are told with a unit attention:
REPORTED LUNS DATA HAS CHANGED, or CAPACITY DATA HAS CHANGED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	lun.AddCommand(newCtlLUNAddCmd(f), newCtlLUNRemoveCmd(f), newCtlLUNResizeCmd(f))
	acl := &cobra.Command{
		Use:   "acl",
		Short: "add or remove an ACL group",
		Long: `Change the ACL groups of a running usrpt serve: who may log in (initiator
port IDs, source addresses) and which LUNs each group sees. List them with
"usrpt ctl acls".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	acl.AddCommand(newCtlACLAddCmd(f), newCtlACLRemoveCmd(f))
	cmd.AddCommand(newCtlSessionsCmd(f), newCtlLUNsCmd(f), newCtlStatsCmd(f), newCtlACLsCmd(f),
		newCtlLogoutCmd(f), lun, acl)
	return cmd
}

// call runs one method and returns its raw result.
func (f *ctlFlags) call(cmd *cobra.Command, method string, params any) (json.RawMessage, error) {
	if err := outputFormat(f.format); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	c, err := control.Dial(ctx, f.socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var raw json.RawMessage
	if err := c.Call(ctx, method, params, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.CommandPath()[len(cmd.Root().Name())+1:], err)
	}
	return raw, nil
}

// show prints a result: as JSON, indented, or through text.
func (f *ctlFlags) show(cmd *cobra.Command, raw json.RawMessage, v any, text func(io.Writer)) error {
	w := cmd.OutOrStdout()
	if f.format == "json" {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return err
		}
		b.WriteByte('\n')
		_, err := w.Write(b.Bytes())
		return err
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("the server's answer: %w", err)
		}
	}
	text(w)
	return nil
}

func newCtlSessionsCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "sessions",
		Short: "list the logged-in sessions (I_T nexuses) and their channels with counters",
		Long: `List the logged-in sessions (I_T nexuses): ID, initiator port ID, peer
address, ACL group and the LUNs it sees; then each channel with its
reactor and CPU, state, credits held by the initiator, and counters:
commands, bytes read and written, CHECK CONDITIONs, aborts, waits for a
buffer or a send slot, protocol and transport errors. With
--output-format json, an array of session objects.`,
		Example: `  usrpt ctl sessions
  usrpt ctl sessions -o json | jq '.[].channels[].stats.commands'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.call(cmd, "get_sessions", nil)
			if err != nil {
				return err
			}
			var ss []target.SessionInfo
			return f.show(cmd, raw, &ss, func(w io.Writer) { printSessions(w, ss) })
		},
	}
}

func printSessions(w io.Writer, ss []target.SessionInfo) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no sessions")
		return
	}
	for i, s := range ss {
		if i > 0 {
			fmt.Fprintln(w)
		}
		acl := s.ACL
		if acl == "" {
			acl = "-"
		}
		fmt.Fprintf(w, "session %d  initiator %s  peer %s  acl %s  luns %s\n", s.ID, s.InitiatorID, s.Peer, acl, lunList(s.LUNs))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  CHANNEL\tREACTOR\tCPU\tSTATE\tCREDITS\tCOMMANDS\tREAD\tWRITTEN\tCHECK COND\tABORTED\tWAITS (BUF/SEND)\tERRORS (PROTO/XPORT)")
		for _, c := range s.Channels {
			x := c.Stats
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d/%d\t%d/%d\n",
				c.ID, c.Reactor, c.CPU, c.State, c.Credits, x.Commands, humanize.IBytes(x.ReadBytes), humanize.IBytes(x.WriteBytes),
				x.CheckCond, x.Aborted, x.BufferWaits, x.SendWaits, x.ProtocolErrs, x.TransportErrs)
		}
		_ = tw.Flush()
	}
}

// lunList writes LUN numbers compactly: "0-3,7"; "all" for none.
func lunList(luns []uint16) string {
	if len(luns) == 0 {
		return "all"
	}
	s := slices.Sorted(slices.Values(luns))
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", s[i], s[j]))
		} else {
			parts = append(parts, strconv.Itoa(int(s[i])))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// parseLUNList reads "0-3,7" (lunList's form).
func parseLUNList(s string) ([]uint16, error) {
	var out []uint16
	for tok := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(tok), "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 16)
		}
		if err != nil || b < a {
			return nil, fmt.Errorf("LUN list %q: token %q: want numbers and ranges (0-3,7)", s, tok)
		}
		for n := a; n <= b; n++ {
			out = append(out, uint16(n))
		}
	}
	return out, nil
}

func newCtlLUNsCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "luns",
		Short: "list the exported LUNs",
		Long: `List the exported LUNs: number, backend and engine, size, block size, write
cache (write-back or write-through, as it is now), read-only, how many
sessions see it, and its file or device. With --output-format json, a JSON
array with one object per LUN.`,
		Example: `  usrpt ctl luns
  usrpt ctl luns --output-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.call(cmd, "get_luns", nil)
			if err != nil {
				return err
			}
			var luns []control.LUN
			return f.show(cmd, raw, &luns, func(w io.Writer) { printLUNs(w, luns) })
		},
	}
}

func printLUNs(w io.Writer, luns []control.LUN) {
	if len(luns) == 0 {
		fmt.Fprintln(w, "no LUNs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LUN\tBACKEND\tENGINE\tSIZE\tBLOCK\tCACHE\tRO\tSESSIONS\tPATH")
	for _, l := range luns {
		cache, ro, path := "write-through", "no", l.Path
		if l.WriteCache {
			cache = "write-back"
		}
		if l.ReadOnly {
			ro = "yes"
		}
		if path == "" {
			path = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", l.Number, l.Backend, l.Engine, sizeText(l.SizeBytes), l.BlockSize, cache, ro, l.Sessions, path)
	}
	_ = tw.Flush()
}

func sizeText(n int64) string {
	if n < 0 {
		return strconv.FormatInt(n, 10)
	}
	return humanize.IBytes(uint64(n))
}

func newCtlStatsCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "show the target's counters: logins, commands, per-LUN latency, reactors",
		Long: `Show the target's counters: logins and rejects by reason, sessions and
channels, the channel counters summed over live and gone channels, per LUN
commands, bytes, errors and latency (mean, and the bucket holding the 99th
percentile), and each reactor's busy share since it started.`,
		Example: `  usrpt ctl stats
  usrpt ctl stats -o json | jq .reactors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.call(cmd, "get_stats", nil)
			if err != nil {
				return err
			}
			var st server.Stats
			return f.show(cmd, raw, &st, func(w io.Writer) { printStats(w, st) })
		},
	}
}

func printStats(w io.Writer, st server.Stats) {
	fmt.Fprintf(w, "uptime %s\n", st.Uptime.Round(time.Second))
	var rejects uint64
	var why []string
	for _, r := range slices.Sorted(maps.Keys(st.Rejects)) {
		rejects += st.Rejects[r]
		why = append(why, fmt.Sprintf("%s %d", r, st.Rejects[r]))
	}
	fmt.Fprintf(w, "logins %d, rejected %d", st.Logins, rejects)
	if len(why) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(why, ", "))
	}
	fmt.Fprintf(w, "\nsessions %d, channels %d\n", st.Sessions, st.Channels)
	t := st.Total
	fmt.Fprintf(w, "commands %d, task mgmt %d, read %s, written %s\n", t.Commands, t.TaskMgmt, humanize.IBytes(t.ReadBytes), humanize.IBytes(t.WriteBytes))
	fmt.Fprintf(w, "check conditions %d, aborted %d, credit overruns %d, protocol errors %d, transport errors %d\n",
		t.CheckCond, t.Aborted, t.CreditOverrun, t.ProtocolErrs, t.TransportErrs)
	fmt.Fprintf(w, "waits: buffer %d, send queue %d; credit requests %d\n", t.BufferWaits, t.SendWaits, t.CredReqs)

	if len(st.LUNs) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LUN\tCOMMANDS\tREAD\tWRITTEN\tERRORS\tMEAN LAT\tP99 LAT")
		for _, n := range slices.Sorted(maps.Keys(st.LUNs)) {
			l := st.LUNs[n]
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%s\n", n, l.Commands, humanize.IBytes(l.ReadBytes), humanize.IBytes(l.WriteBytes), l.Errors, meanLatency(l), p99Latency(l))
		}
		_ = tw.Flush()
	}
	if len(st.Reactors) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "REACTOR\tCPU\tBUSY\tITERATIONS\tMESSAGES")
		for _, r := range st.Reactors {
			busy := "-"
			if tot := r.Busy + r.Idle; tot > 0 {
				busy = fmt.Sprintf("%.1f%%", 100*float64(r.Busy)/float64(tot))
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\n", r.ID, r.CPU, busy, r.Iterations, r.Messages)
		}
		_ = tw.Flush()
	}
}

func latencyCount(l target.LUNStats) uint64 {
	var n uint64
	for _, c := range l.Latency {
		n += c
	}
	return n
}

func meanLatency(l target.LUNStats) string {
	n := latencyCount(l)
	if n == 0 {
		return "-"
	}
	return time.Duration(l.LatencyNs / n).String()
}

// p99Latency is the upper bound of the bucket holding the 99th
// percentile: "≤ 64µs", or "> 4.29s" for the last.
func p99Latency(l target.LUNStats) string {
	n := latencyCount(l)
	if n == 0 {
		return "-"
	}
	want := (n*99 + 99) / 100 // ceil(0.99 n)
	bounds := target.LatencyBounds()
	var cum uint64
	for i, c := range l.Latency {
		cum += c
		if cum >= want {
			if i == target.LatencyBuckets-1 {
				return "> " + time.Duration(bounds[i-1]).String()
			}
			return "≤ " + time.Duration(bounds[i]).String()
		}
	}
	return "-"
}

func newCtlLUNAddCmd(f *ctlFlags) *cobra.Command {
	var (
		number     int
		blockSize  int
		writeCache bool
		readOnly   bool
		thin       bool
		serial     string
	)
	cmd := &cobra.Command{
		Use:   "add SPEC",
		Short: "add a LUN live; initiators that see it get REPORTED LUNS DATA HAS CHANGED",
		Long: `Add a LUN from SPEC, BACKEND:ARG:

  null:SIZE    discards writes, reads zeros (SCST's nullio): the ceiling
  mem:SIZE     a RAM disk
  uring:PATH   a file or block device through io_uring
  psync:PATH   a file or block device through pread/pwrite threads
  file:PATH    a file or block device through the best engine for it

Sizes take k, m, g, t, p (powers of 1024: 4k, 4KiB and 4KB are 4096 bytes).
Without --number the server takes the lowest free LUN number. The LUN is
write-through unless --write-cache.`,
		Example: `  usrpt ctl lun add mem:256MiB
  usrpt ctl lun add null:1t --number 7 --block-size 4096
  usrpt ctl lun add uring:/dev/nvme0n1 --write-cache
  usrpt ctl lun add file:/var/lib/usrpt/disk0.img --read-only -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := control.ParseSpec(args[0])
			if err != nil {
				return err
			}
			p := control.LUNAddParams{
				Backend: cfg.Backend, Path: cfg.Path, Size: control.Size(cfg.Size),
				BlockSize: blockSize, WriteCache: writeCache, ReadOnly: readOnly, Thin: thin, Serial: serial,
			}
			if cmd.Flags().Changed("number") {
				if number < 0 || number > 0x3fff {
					return fmt.Errorf("--number %d: want 0 to 16383", number)
				}
				n := uint16(number)
				p.Number = &n
			}
			raw, err := f.call(cmd, "lun_add", p)
			if err != nil {
				return err
			}
			var l control.LUN
			return f.show(cmd, raw, &l, func(w io.Writer) {
				fmt.Fprintf(w, "added LUN %d: %s (%s engine), %s, %d-byte blocks\n", l.Number, args[0], l.Engine, sizeText(l.SizeBytes), l.BlockSize)
			})
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&number, "number", 0, "LUN number (default: the lowest free)")
	fl.IntVar(&blockSize, "block-size", 0, "logical block size, 512 or 4096 (default: the engine's)")
	fl.BoolVar(&writeCache, "write-cache", false, "write-back (WCE=1): writes complete when the engine has them; SYNCHRONIZE CACHE and FUA flush")
	fl.BoolVar(&readOnly, "read-only", false, "refuse writes (write protected)")
	fl.BoolVar(&thin, "thin", false, "advertise thin provisioning (UNMAP)")
	fl.StringVar(&serial, "serial", "", "unit serial number, VPD 0x80 (default: derived from the target and the LUN number)")
	return cmd
}

// lunNumber reads a LUN number argument.
func lunNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("LUN %q: want a number", s)
	}
	return uint16(n), nil
}

func newCtlLUNRemoveCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove N",
		Aliases: []string{"rm"},
		Short:   "stop exporting LUN N and close its engine",
		Long: `Stop exporting LUN N and close its engine. Initiators that saw it get
REPORTED LUNS DATA HAS CHANGED; commands for it then fail with LOGICAL UNIT
NOT SUPPORTED.`,
		Example: `  usrpt ctl lun remove 3`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := lunNumber(args[0])
			if err != nil {
				return err
			}
			raw, err := f.call(cmd, "lun_remove", control.LUNParams{Number: &n})
			if err != nil {
				return err
			}
			return f.show(cmd, raw, nil, func(w io.Writer) { fmt.Fprintf(w, "removed LUN %d\n", n) })
		},
	}
}

func newCtlLUNResizeCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "resize N SIZE",
		Short: "set LUN N's capacity; initiators get CAPACITY DATA HAS CHANGED",
		Long: `Set LUN N's capacity to SIZE (k, m, g, t, p are powers of 1024). Initiators
that see it get CAPACITY DATA HAS CHANGED and read the new capacity with
READ CAPACITY (on Linux: echo 1 > /sys/block/sdX/device/rescan).`,
		Example: `  usrpt ctl lun resize 0 512MiB
  usrpt ctl lun resize 3 2t`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := lunNumber(args[0])
			if err != nil {
				return err
			}
			size, err := parseSize("SIZE", args[1])
			if err != nil {
				return err
			}
			raw, err := f.call(cmd, "lun_resize", control.LUNResizeParams{Number: &n, Size: control.Size(strconv.FormatUint(size, 10))})
			if err != nil {
				return err
			}
			return f.show(cmd, raw, nil, func(w io.Writer) { fmt.Fprintf(w, "LUN %d is now %s\n", n, humanize.IBytes(size)) })
		},
	}
}

func newCtlACLsCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "acls",
		Short: "list the ACL groups",
		Long: `List the ACL groups: name, the LUNs their sessions see ("all" for every
LUN) and the initiators they admit. With --output-format json, an array of
{"name", "initiators", "luns"} objects.`,
		Example: `  usrpt ctl acls -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.call(cmd, "get_acls", nil)
			if err != nil {
				return err
			}
			var acls []control.ACL
			return f.show(cmd, raw, &acls, func(w io.Writer) {
				if len(acls) == 0 {
					fmt.Fprintln(w, "no ACL groups")
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tLUNS\tINITIATORS")
				for _, a := range acls {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, lunList(a.LUNs), strings.Join(a.Initiators, ","))
				}
				_ = tw.Flush()
			})
		},
	}
}

func newCtlACLAddCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME ID[,ID...] [LUNS]",
		Short: "add (or replace, by name) an ACL group: who may log in, and which LUNs they see",
		Long: `Add the ACL group NAME, or replace the one of that name. IDs are who may log
in: "*" for anyone, initiator port IDs (32 hexadecimal digits, with * and ?
wildcards) or source IP addresses and CIDR prefixes, separated by commas.
LUNS are the LUNs its sessions see, as numbers and ranges ("0-3,7");
without it, every LUN. Sessions already logged in keep their view until
they log in again.`,
		Example: `  usrpt ctl acl add lab '*'
  usrpt ctl acl add db 0x0002c90300a1b2c3* 0,1
  usrpt ctl acl add rack2 10.0.2.0/24,10.0.3.7 4-7`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a := control.ACL{Name: args[0]}
			for id := range strings.SplitSeq(args[1], ",") {
				if id = strings.TrimSpace(id); id == "" {
					return fmt.Errorf("initiators %q: an empty ID", args[1])
				}
				a.Initiators = append(a.Initiators, id)
			}
			if len(args) == 3 {
				var err error
				if a.LUNs, err = parseLUNList(args[2]); err != nil {
					return err
				}
			}
			raw, err := f.call(cmd, "acl_add", a)
			if err != nil {
				return err
			}
			return f.show(cmd, raw, nil, func(w io.Writer) {
				fmt.Fprintf(w, "ACL %s: %s see LUNs %s\n", a.Name, strings.Join(a.Initiators, ","), lunList(a.LUNs))
			})
		},
	}
}

func newCtlACLRemoveCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "remove an ACL group; its sessions stay until they log out",
		Long: `Remove the ACL group NAME. Sessions it admitted stay logged in with the
LUNs they see until they log out; usrpt ctl logout ends one now.`,
		Example: `  usrpt ctl acl remove lab`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.call(cmd, "acl_remove", control.NameParams{Name: args[0]})
			if err != nil {
				return err
			}
			return f.show(cmd, raw, nil, func(w io.Writer) { fmt.Fprintf(w, "removed ACL %s\n", args[0]) })
		},
	}
}

func newCtlLogoutCmd(f *ctlFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logout SESSION",
		Short: "end a session (its ID from ctl sessions) with SRP_T_LOGOUT",
		Long: `End a session: every channel of the I_T nexus gets SRP_T_LOGOUT and is
closed once what it has outstanding completes. SESSION is the ID that
"usrpt ctl sessions" shows. ib_srp reconnects unless told otherwise.`,
		Example: `  usrpt ctl logout 7`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("session %q: want the number usrpt ctl sessions shows", args[0])
			}
			raw, err := f.call(cmd, "session_logout", control.SessionParams{ID: &id})
			if err != nil {
				return err
			}
			return f.show(cmd, raw, nil, func(w io.Writer) { fmt.Fprintf(w, "logged out session %d\n", id) })
		},
	}
}
