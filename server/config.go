package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/target"
)

// Problem is one thing wrong with a configuration: where (the line in the
// file, 0 when the configuration came from flags or the value has no
// line), which key, what is wrong and how to fix it. usrpt serve --check
// prints every Problem of a file at once, so an operator fixes a config in
// one pass instead of one error per restart.
type Problem struct {
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key"` // "lun[1].size": the TOML key, with the index of an array of tables
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		fmt.Fprintf(&b, " (fix: %s)", p.Fix)
	}
	return b.String()
}

// ConfigError is every Problem of a configuration. New, Reload, Parse and
// LoadFile return it (errors.As) for anything an operator must change.
type ConfigError struct {
	File     string // empty for a configuration built from flags
	Problems []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "configuration"
	}
	fmt.Fprintf(&b, "%s: %d problem", name, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if e.File != "" && p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: ", e.File, p.Line)
			p.Line = 0
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// LoadFile reads and checks the TOML configuration at path (Parse).
func LoadFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Problems: []Problem{{
			Message: fmt.Sprintf("cannot read the configuration: %v", err),
			Fix:     "give --config the path of a readable TOML file (docs/configuration.md)",
		}}}
	}
	cfg, err := Parse(b)
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.File = path
	}
	return cfg, err
}

// Parse decodes a TOML configuration and checks it (Config.Validate),
// returning every problem with its line as a *ConfigError. Unknown keys
// are problems, not ignored, so that a misspelt key never silently takes
// its default.
func Parse(b []byte) (Config, error) {
	var cfg Config
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&cfg)
	var (
		de *toml.DecodeError
		se *toml.StrictMissingError
	)
	switch {
	case err == nil:
	case errors.As(err, &se):
		// Every unknown key at once, then the semantic checks as well:
		// the decoder filled in everything it knew.
		ce := &ConfigError{}
		for i := range se.Errors {
			row, _ := se.Errors[i].Position()
			key := strings.Join(se.Errors[i].Key(), ".")
			ce.Problems = append(ce.Problems, Problem{
				Line: row, Key: key, Message: "unknown key",
				Fix: unknownKeyFix(se.Errors[i].Key()),
			})
		}
		if verr := cfg.validate(keyLines(b)); verr != nil {
			var ve *ConfigError
			errors.As(verr, &ve)
			ce.Problems = append(ce.Problems, ve.Problems...)
		}
		sortProblems(ce.Problems)
		return cfg, ce
	case errors.As(err, &de):
		// A syntax or type error stops the decoder: there is no complete
		// Config to check further.
		row, _ := de.Position()
		return cfg, &ConfigError{Problems: []Problem{decodeProblem(row, de)}}
	default:
		return cfg, &ConfigError{Problems: []Problem{{Message: err.Error(), Fix: "write valid TOML (https://toml.io)"}}}
	}
	return cfg, cfg.validate(keyLines(b))
}

var typeErrRE = regexp.MustCompile(`cannot decode TOML (\w+) into .* of type (\S+)`)

func decodeProblem(row int, de *toml.DecodeError) Problem {
	key := strings.Join(de.Key(), ".")
	if m := typeErrRE.FindStringSubmatch(de.Error()); m != nil {
		want := m[2]
		fix := "give the key a " + want + " value (docs/configuration.md)"
		switch want {
		case "string", "server.Duration":
			fix = `quote the value: sizes, durations, masks and identifiers are strings ("1GiB", "30s", "0x3")`
			want = "string"
		case "[]uint16":
			want = "array of LUN numbers"
			fix = "write a list of LUN numbers: luns = [0, 1]"
		case "[]string":
			want = "array of strings"
			fix = `write a list of strings: initiators = ["*"]`
		}
		return Problem{Line: row, Key: key, Message: fmt.Sprintf("a TOML %s where a %s is wanted", m[1], want), Fix: fix}
	}
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	return Problem{Line: row, Key: key, Message: msg, Fix: "write valid TOML (https://toml.io); docs/configuration.md has a complete example"}
}

// knownKeys are the keys of each table, for the fix of an unknown key.
var knownKeys = map[string][]string{
	"":         {"target", "listener", "lun", "acl", "control", "metrics"},
	"target":   {"guid", "cores", "idle", "channels_per_nexus", "queue_size", "max_iu_size", "max_rdma_size", "no_immediate_data", "hugepages", "shutdown_timeout"},
	"listener": {"transport", "address"},
	"lun":      {"number", "backend", "path", "size", "block_size", "write_cache", "read_only", "serial", "naa", "thin", "create", "buffered"},
	"acl":      {"name", "initiators", "luns"},
	"control":  {"socket"},
	"metrics":  {"listen"},
}

func unknownKeyFix(key []string) string {
	table := ""
	if len(key) > 1 {
		table = key[0]
	}
	keys, ok := knownKeys[table]
	if !ok {
		return "remove it; see docs/configuration.md"
	}
	last := key[len(key)-1]
	best, bestD := "", 3
	for _, k := range keys {
		if d := editDistance(last, k); d < bestD {
			best, bestD = k, d
		}
	}
	where := "at the top level"
	if table != "" {
		where = "in [" + table + "]"
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q? The keys %s are %s", best, where, strings.Join(keys, ", "))
	}
	return fmt.Sprintf("remove it; the keys %s are %s", where, strings.Join(keys, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line == 0 || ps[j].Line == 0 {
			return ps[i].Line != 0 && ps[j].Line == 0
		}
		return ps[i].Line < ps[j].Line
	})
}

// lines maps a key ("lun[1].size", "lun[1]", "target.cores") to the line
// it is written on, so that semantic problems, found after decoding, point
// at the line to change.
type lines map[string]int

// keyLines walks the document with go-toml's parser (the decoder keeps no
// positions) and records the line of every table header and key.
func keyLines(b []byte) lines {
	m := lines{}
	var p unstable.Parser
	p.Reset(b)
	prefix := ""
	arrays := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		var parts []string
		line := 0
		it := e.Key()
		for it.Next() {
			n := it.Node()
			parts = append(parts, string(n.Data))
			if line == 0 {
				line = p.Shape(n.Raw).Start.Line
			}
		}
		name := strings.Join(parts, ".")
		switch e.Kind {
		case unstable.Table:
			prefix = name
		case unstable.ArrayTable:
			i := arrays[name]
			arrays[name] = i + 1
			prefix = fmt.Sprintf("%s[%d]", name, i)
			name = prefix
		case unstable.KeyValue:
			if prefix != "" {
				name = prefix + "." + name
			}
		default:
			continue
		}
		if _, ok := m[name]; !ok {
			m[name] = line
		}
	}
	return m
}

// line finds key's line, or that of the nearest enclosing table written
// in the file; 0 when there is none (flags, defaults).
func (l lines) line(key string) int {
	for key != "" {
		if n, ok := l[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// Validate checks cfg as New will use it and returns every problem as a
// *ConfigError (without lines: Parse adds them for a file).
func (c *Config) Validate() error { return c.validate(nil) }

type checker struct {
	l  lines
	ps []Problem
}

func (k *checker) add(key, fix, format string, a ...any) {
	k.ps = append(k.ps, Problem{Line: k.l.line(key), Key: key, Message: fmt.Sprintf(format, a...), Fix: fix})
}

func (c *Config) validate(l lines) error {
	k := &checker{l: l}
	c.checkTarget(k)
	c.checkListeners(k)
	luns := c.checkLUNs(k)
	c.checkACLs(k, luns)
	if c.Metrics.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil || port == "" {
			k.add("metrics.listen", `write HOST:PORT or :PORT, e.g. ":9456"; leave it out to turn metrics off`, "%q is not an HTTP listen address", c.Metrics.Listen)
		}
	}
	if len(k.ps) == 0 {
		return nil
	}
	sortProblems(k.ps)
	return &ConfigError{Problems: k.ps}
}

// onlineCPUs is a variable so that tests can pretend to another machine.
var onlineCPUs = func() ([]int, error) { return sysfs.New("").OnlineCPUs() }

func (c *Config) checkTarget(k *checker) {
	t := &c.Target
	if t.GUID != "" {
		if _, err := ParseGUID(t.GUID); err != nil {
			k.add("target.guid", `write 16 hexadecimal digits, e.g. "0x0002c90300a1b2c3" or "0002:c903:00a1:b2c3"; leave it out to derive it from the interface MAC`, "%v", err)
		}
	}
	if t.Cores != "" {
		online, err := onlineCPUs()
		if err != nil {
			k.add("target.cores", "check that /sys is mounted", "cannot read the online CPUs: %v", err)
		} else if _, err := poller.ParseCoreMask(t.Cores, online); err != nil {
			k.add("target.cores", fmt.Sprintf(`name online CPUs (%s) as a mask "0x3", a list "[0,2-3]" or a cpulist "0-3"`, sysfs.FormatCPUList(online)), "%v", err)
		}
	}
	if t.Idle != "" {
		if _, err := poller.ParseIdleMode(t.Idle); err != nil {
			k.add("target.idle", `write "busy" (dedicated cores) or "adaptive" (shared machines)`, "idle policy %q is unknown", t.Idle)
		}
	}
	if t.ChannelsPerNexus < 0 || t.ChannelsPerNexus > 1024 {
		k.add("target.channels_per_nexus", "write 1 to 1024, or leave it out for 32", "%d channels per I_T nexus", t.ChannelsPerNexus)
	}
	if t.QueueSize != 0 && (t.QueueSize < 2 || t.QueueSize > 4096) {
		k.add("target.queue_size", "write 2 to 4096, or leave it out for 128", "queue size %d", t.QueueSize)
	}
	if minIU := srp.CmdLen + srp.DirectDescLen; t.MaxIUSize != 0 && (t.MaxIUSize < minIU || t.MaxIUSize > 1<<20) {
		k.add("target.max_iu_size", fmt.Sprintf("write %d to 1048576, or leave it out for %d", minIU, target.DefaultMaxITIULen), "max IU size %d", t.MaxIUSize)
	}
	if t.MaxRDMASize != "" {
		n, err := ParseSize(t.MaxRDMASize)
		switch {
		case err != nil:
			k.add("target.max_rdma_size", `write a size such as "64KiB"`, "%v", err)
		case n < 4096 || n > 16<<20:
			k.add("target.max_rdma_size", `write 4KiB to 16MiB, or leave it out for 64KiB`, "max RDMA size %s is out of range", t.MaxRDMASize)
		}
	}
	if t.Hugepages != "" {
		if _, err := hugemem.ParsePagePolicy(t.Hugepages); err != nil {
			k.add("target.hugepages", `write "auto", "huge" or "small"`, "hugepage policy %q is unknown", t.Hugepages)
		}
	}
	if t.ShutdownTimeout < 0 {
		k.add("target.shutdown_timeout", `write a positive duration such as "30s"`, "negative shutdown timeout")
	}
}

// Transports usrpt knows, and which of them this build has.
var transports = map[string]bool{"loop": true, "roce": false, "ibv": false}

// DefaultLoopAddress is the address of a loop listener without one. The
// loop fabric is in-process and binds nothing: the address is only a name,
// written as IP:PORT so that the add_target string has the form ib_srp
// and initiator.ParseTarget read.
const DefaultLoopAddress = "127.0.0.1:5555"

func (c *Config) checkListeners(k *checker) {
	seen := map[string]bool{}
	for i, ln := range c.Listeners {
		key := fmt.Sprintf("listener[%d]", i)
		have, known := transports[ln.Transport]
		switch {
		case ln.Transport == "":
			k.add(key+".transport", `write transport = "loop"`, "no transport")
			continue
		case !known:
			k.add(key+".transport", `write "loop" (in-process), or "roce" / "ibv" once they exist`, "transport %q is unknown", ln.Transport)
			continue
		case !have:
			k.add(key+".transport", `use transport = "loop" in this build`, "transport %s is not available in this build yet (issue 8)", ln.Transport)
		}
		addr := ln.Address
		if ln.Transport == "loop" {
			if addr == "" {
				addr = DefaultLoopAddress
			}
		} else {
			ap, err := ListenAddr(addr)
			if err != nil {
				k.add(key+".address", "write IP:PORT with an address of this host, e.g. \"192.168.1.10:5555\"", "%v", err)
				continue
			}
			if err := checkLocal(ap.Addr()); err != nil {
				k.add(key+".address", "name an address configured on a local interface (ip -br addr), or 0.0.0.0", "%v", err)
			}
			addr = ap.String()
		}
		if seen[ln.Transport+" "+addr] {
			k.add(key+".address", "give each listener its own address", "%s listener %s is configured twice", ln.Transport, addr)
		}
		seen[ln.Transport+" "+addr] = true
	}
}

// ListenAddr parses a roce/ibv listen address: IP:PORT, or an IP alone
// for DefaultPort.
func ListenAddr(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), DefaultPort), nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(ip, DefaultPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("listen address %q: want IP:PORT", s)
	}
	if ap.Port() == 0 {
		return ap, fmt.Errorf("listen address %q: port 0", s)
	}
	return ap, nil
}

// checkLocal reports whether ip is configured on an interface of this
// host, as RDMA/CM will need to bind it.
func checkLocal(ip netip.Addr) error {
	if ip.IsUnspecified() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("cannot list the local addresses: %w", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
			return nil
		}
	}
	return fmt.Errorf("%s is not an address of this host", ip)
}

// Backends a LUN may name.
var backends = map[string]bool{"null": false, "mem": false, "uring": true, "psync": true, "file": true} // true: needs a path

func (c *Config) checkLUNs(k *checker) map[uint16]bool {
	luns := map[uint16]bool{}
	for i := range c.LUNs {
		key := fmt.Sprintf("lun[%d]", i)
		lc := &c.LUNs[i]
		if _, ok := scsi.EncodeLUN(lc.Number); !ok {
			k.add(key+".number", "use LUN numbers 0 to 16383", "LUN %d is out of range", lc.Number)
		} else if luns[lc.Number] {
			k.add(key+".number", "give each [[lun]] its own number", "LUN %d is defined twice", lc.Number)
		}
		luns[lc.Number] = true
		for _, p := range checkLUN(lc) {
			k.add(key+"."+p.Key, p.Fix, "%s", p.Message)
		}
	}
	return luns
}

// checkLUN checks one LUN's own settings; Problem.Key is the key within
// the [[lun]] table.
func checkLUN(lc *LUNConfig) []Problem {
	var ps []Problem
	add := func(key, fix, format string, a ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, a...), Fix: fix})
	}
	needsPath, ok := backends[lc.Backend]
	if !ok {
		if lc.Backend == "" {
			add("backend", `write backend = "mem", "null", "uring", "psync" or "file"`, "no backend")
		} else {
			add("backend", `write "null", "mem", "uring", "psync" or "file" (the best engine for the path)`, "backend %q is unknown", lc.Backend)
		}
		return ps
	}
	bs := lc.BlockSize
	if bs != 0 && bs != 512 && bs != 4096 {
		add("block_size", "write 512 or 4096", "block size %d", bs)
		bs = 0
	}
	if bs == 0 {
		bs = 512
	}
	var size uint64
	if lc.Size != "" {
		var err error
		if size, err = ParseSize(lc.Size); err != nil {
			add("size", `write a size such as "1GiB" or "512MiB" (units k, m, g, t, p are powers of 1024)`, "%v", err)
		} else if size == 0 || size%uint64(bs) != 0 {
			add("size", fmt.Sprintf("make it a multiple of the %d-byte block size, e.g. %q", bs, FormatSize(max(uint64(bs), size/uint64(bs)*uint64(bs)))),
				"size %s (%d bytes) is not a positive multiple of the %d-byte block size", lc.Size, size, bs)
		}
	}
	switch {
	case !needsPath:
		if lc.Path != "" {
			add("path", fmt.Sprintf(`remove path, or use backend = "file" to serve %s`, lc.Path), "backend %s serves memory, not a file", lc.Backend)
		}
		if lc.Size == "" {
			add("size", `write size = "1GiB" (the capacity)`, "backend %s needs a size", lc.Backend)
		}
		if lc.Create {
			add("create", "remove create: it is for files", "backend %s has no file to create", lc.Backend)
		}
	case lc.Path == "":
		add("path", `write path = "/dev/nvme0n1" or the path of an image file`, "backend %s needs a path", lc.Backend)
	default:
		fi, err := os.Stat(lc.Path)
		switch {
		case err != nil && os.IsNotExist(err):
			if !lc.Create {
				fix := fmt.Sprintf("create it (truncate -s 1G %s), or set create = true and a size", lc.Path)
				if strings.HasPrefix(lc.Path, "/dev/") {
					fix = "check the device's name (ls -l /dev/disk/by-id), or point path at an image file"
				}
				add("path", fix, "%s does not exist", lc.Path)
			} else if lc.Size == "" {
				add("size", "give the size to create the file with", "create = true needs a size")
			}
		case err != nil:
			add("path", "make it readable and writable by usrpt", "%v", err)
		case fi.IsDir():
			add("path", "name a block device or a regular file", "%s is a directory", lc.Path)
		case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice != 0:
			add("path", "name the block device (/dev/nvme0n1), not a character device", "%s is a character device", lc.Path)
		case fi.Mode().IsRegular() && fi.Size() == 0 && lc.Size == "":
			add("size", "give a size and create = true, or grow the file (truncate -s 1G)", "%s is empty", lc.Path)
		case fi.Mode().IsRegular() && size > uint64(fi.Size()) && !lc.Create:
			add("size", "set create = true to extend the file, or lower the size", "size %s is larger than %s (%s)", lc.Size, lc.Path, FormatSize(uint64(fi.Size())))
		}
		if lc.Create && lc.ReadOnly {
			add("create", "remove create or read_only", "a read-only LUN cannot create its file")
		}
	}
	if lc.Serial != "" {
		if len(lc.Serial) > scsi.MaxSerialLen {
			add("serial", fmt.Sprintf("shorten it to %d characters", scsi.MaxSerialLen), "serial %q is too long", lc.Serial)
		}
		for i := 0; i < len(lc.Serial); i++ {
			if lc.Serial[i] < 0x21 || lc.Serial[i] > 0x7e {
				add("serial", "use printable ASCII without spaces", "serial %q has a byte that is not printable ASCII", lc.Serial)
				break
			}
		}
	}
	if lc.NAA != "" {
		if _, err := parseHex64(lc.NAA); err != nil {
			add("naa", `write up to 16 hexadecimal digits ("0x1234abcd"), or leave it out to derive it from the serial`, "naa %q: %v", lc.NAA, err)
		}
	}
	return ps
}

func (c *Config) checkACLs(k *checker, luns map[uint16]bool) {
	names := map[string]bool{}
	for i, a := range c.ACLs {
		key := fmt.Sprintf("acl[%d]", i)
		for _, p := range checkACL(&a, luns) {
			k.add(key+"."+p.Key, p.Fix, "%s", p.Message)
		}
		if a.Name != "" && names[a.Name] {
			k.add(key+".name", "give each [[acl]] its own name", "ACL %q is defined twice", a.Name)
		}
		names[a.Name] = true
	}
}

func checkACL(a *ACLConfig, luns map[uint16]bool) []Problem {
	var ps []Problem
	if a.Name == "" {
		ps = append(ps, Problem{Key: "name", Message: "no name", Fix: `write name = "hosts" (it names the group in logs and usrpt ctl)`})
	}
	ta := target.ACL{Name: a.Name, Initiators: a.Initiators}
	if err := ta.Validate(); err != nil {
		ps = append(ps, Problem{Key: "initiators", Message: err.Error(),
			Fix: `write "*", initiator port IDs (32 hex digits, * and ? wildcards), or IP addresses / CIDR prefixes`})
	}
	for _, n := range a.LUNs {
		if !luns[n] {
			ps = append(ps, Problem{Key: "luns", Message: fmt.Sprintf("LUN %d is not defined", n),
				Fix: fmt.Sprintf("add a [[lun]] with number = %d, or remove %d from luns", n, n)})
		}
	}
	return ps
}

// Warnings are what is legal but probably not meant: today, a target
// that nobody may log in to.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.ACLs) == 0 {
		w = append(w, "no ACL: every login is rejected (deny by default); add --acl '*' or an [[acl]] group to let initiators in")
	}
	if len(c.LUNs) == 0 {
		w = append(w, "no LUN: initiators can log in but see no disk; add --lun mem:1GiB or a [[lun]]")
	}
	return w
}

// ParseGUID reads a 64-bit GUID: 16 hexadecimal digits, with an optional
// 0x and the colons ibstat prints ("0002:c903:00a1:b2c3").
func ParseGUID(s string) (uint64, error) {
	v, err := parseHex64(strings.ReplaceAll(s, ":", ""))
	if err != nil {
		return 0, fmt.Errorf("GUID %q: %w", s, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("GUID %q: must not be 0", s)
	}
	return v, nil
}

func parseHex64(s string) (uint64, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if h == "" || len(h) > 16 {
		return 0, errors.New("want 1 to 16 hexadecimal digits")
	}
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil {
		return 0, errors.New("not hexadecimal")
	}
	return v, nil
}
