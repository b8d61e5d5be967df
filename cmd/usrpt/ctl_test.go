package main

import (
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/server/control"
	"github.com/usrpt/usrpt/server/control/controltest"
)

// ctlServer serves a controltest fake on a socket in a temporary
// directory and returns the flags that point ctl at it.
func ctlServer(t *testing.T) (*controltest.Fake, []string) {
	t.Helper()
	fake := controltest.New()
	path := filepath.Join(t.TempDir(), "usrpt.sock")
	l, err := control.Serve(t.Context(), path, fake, control.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return fake, []string{"ctl", "--socket", path}
}

func ctl(t *testing.T, sock []string, args ...string) (string, error) {
	t.Helper()
	out, _, err := run(t, append(append([]string{}, sock...), args...)...)
	return out, err
}

func TestCtlLUNsText(t *testing.T) {
	_, sock := ctlServer(t)
	out, err := ctl(t, sock, "luns")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 LUNs:\n%s", out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "LUN BACKEND ENGINE SIZE BLOCK CACHE RO SESSIONS PATH" {
		t.Errorf("header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "0 mem mem 256 MiB 512 write-through no 1 -" {
		t.Errorf("LUN 0 line %q", lines[1])
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "1 uring uring 1.0 GiB 4096 write-back no 1 /dev/nvme0n1" {
		t.Errorf("LUN 1 line %q", lines[2])
	}
	// Aligned: every column starts at the same offset on every line.
	if strings.Index(lines[0], "PATH") != strings.Index(lines[2], "/dev/nvme0n1") {
		t.Errorf("columns not aligned:\n%s", out)
	}
}

func TestCtlLUNsJSON(t *testing.T) {
	_, sock := ctlServer(t)
	out, err := ctl(t, sock, "luns", "--output-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var luns []map[string]any
	if err := json.Unmarshal([]byte(out), &luns); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, out)
	}
	if len(luns) != 2 || luns[1]["number"] != float64(1) || luns[1]["path"] != "/dev/nvme0n1" || luns[1]["size_bytes"] != float64(1<<30) || luns[1]["write_cache"] != true {
		t.Errorf("luns %v", luns)
	}
}

func TestCtlSessionsAndStats(t *testing.T) {
	_, sock := ctlServer(t)
	out, err := ctl(t, sock, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"session 7  initiator 0xfe800000000000000002c90300a1b2c3  peer 10.0.0.2  acl lab  luns 0-1", "CHANNEL", "4.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("sessions lacks %q:\n%s", want, out)
		}
	}
	out, err = ctl(t, sock, "sessions", "-o", "json")
	var ss []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &ss) != nil || len(ss) != 1 || ss[0]["id"] != float64(7) {
		t.Errorf("sessions JSON: %v\n%s", err, out)
	}
	out, err = ctl(t, sock, "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"uptime 1h0m0s", "logins 3, rejected 2 (acl 1, channel_limit 1)", "sessions 1, channels 2",
		"commands 1500", "credit overruns 1",
		"LUN  COMMANDS", "≤ 2.048µs", "> 4.294967296s", "75.0%", "50.0%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}
	out, err = ctl(t, sock, "stats", "-o", "json")
	var st map[string]any
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st["logins"] != float64(3) {
		t.Errorf("stats JSON: %v\n%s", err, out)
	}
}

func TestCtlChanges(t *testing.T) {
	fake, sock := ctlServer(t)
	out, err := ctl(t, sock, "lun", "add", "mem:64MiB", "--block-size", "4096", "--write-cache")
	if err != nil || !strings.Contains(out, "added LUN 2: mem:64MiB (mem engine), 64 MiB, 4096-byte blocks") {
		t.Fatalf("lun add: %v\n%s", err, out)
	}
	out, err = ctl(t, sock, "lun", "add", "uring:/dev/sdb", "--number", "9", "--read-only", "-o", "json")
	var l control.LUN
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || l.Number != 9 || !l.ReadOnly || l.Path != "/dev/sdb" {
		t.Fatalf("lun add JSON: %v\n%s", err, out)
	}
	if _, err := ctl(t, sock, "lun", "resize", "9", "2g"); err != nil {
		t.Fatal(err)
	}
	if luns := fake.LUNs(); luns[len(luns)-1].SizeBytes != 2<<30 {
		t.Errorf("after resize: %+v", luns[len(luns)-1])
	}
	if out, err := ctl(t, sock, "lun", "remove", "9"); err != nil || out != "removed LUN 9\n" {
		t.Fatalf("lun remove: %v %q", err, out)
	}
	if out, err := ctl(t, sock, "acl", "add", "rack2", "10.0.2.0/24,10.0.3.7", "0,2"); err != nil || !strings.Contains(out, "LUNs 0,2") {
		t.Fatalf("acl add: %v %q", err, out)
	}
	out, err = ctl(t, sock, "acls")
	if err != nil || !strings.Contains(out, "rack2") || !strings.Contains(out, "10.0.2.0/24,10.0.3.7") {
		t.Fatalf("acls: %v\n%s", err, out)
	}
	if _, err := ctl(t, sock, "acl", "remove", "rack2"); err != nil {
		t.Fatal(err)
	}
	if out, err := ctl(t, sock, "logout", "7"); err != nil || out != "logged out session 7\n" {
		t.Fatalf("logout: %v %q", err, out)
	}
	if out, err := ctl(t, sock, "sessions"); err != nil || out != "no sessions\n" {
		t.Errorf("sessions after logout: %v %q", err, out)
	}
}

func TestCtlErrors(t *testing.T) {
	_, sock := ctlServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lun", "remove", "5"}, "ctl lun remove: LUN 5 does not exist"},
		{[]string{"lun", "add", "mem:64MiB", "--number", "0"}, "LUN 0 exists"},
		{[]string{"lun", "add", "disk:/dev/sda"}, `unknown backend "disk"`},
		{[]string{"lun", "add", "mem:64MiB", "--number", "70000"}, "want 0 to 16383"},
		{[]string{"lun", "resize", "0", "lots"}, `SIZE "lots"`},
		{[]string{"lun", "resize", "x", "1g"}, `LUN "x"`},
		{[]string{"acl", "add", "a", "x,,y"}, "an empty ID"},
		{[]string{"acl", "add", "a", "*", "3-1"}, `LUN list "3-1"`},
		{[]string{"logout", "99"}, "no such session"},
		{[]string{"luns", "-o", "yaml"}, "--output-format"},
		{[]string{"lun", "remove"}, "accepts 1 arg"},
	} {
		if _, err := ctl(t, sock, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestCtlSocketErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.sock")
	_, err := ctl(t, []string{"ctl", "--socket", missing}, "luns")
	if err == nil || err.Error() != "is usrpt serve running? socket "+missing+": no such file" {
		t.Errorf("missing socket: %v", err)
	}
	if os.Geteuid() == 0 {
		t.Log("root: permission checks do not apply, skipping that case")
		return
	}
	path := filepath.Join(dir, "locked.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl(t, []string{"ctl", "--socket", path}, "luns"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("unreadable socket: %v", err)
	}
}

func TestCtlHelp(t *testing.T) {
	for _, args := range [][]string{
		{"ctl"}, {"ctl", "sessions"}, {"ctl", "luns"}, {"ctl", "stats"}, {"ctl", "acls"}, {"ctl", "logout"},
		{"ctl", "lun"}, {"ctl", "lun", "add"}, {"ctl", "lun", "remove"}, {"ctl", "lun", "resize"},
		{"ctl", "acl"}, {"ctl", "acl", "add"}, {"ctl", "acl", "remove"},
	} {
		out, _, err := run(t, append(args, "--help")...)
		if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "--socket") {
			t.Errorf("%v --help: %v\n%s", args, err, out)
		}
		if len(args) > 1 && args[len(args)-1] != "lun" && args[len(args)-1] != "acl" && !strings.Contains(out, "Examples:") {
			t.Errorf("%v --help has no examples", args)
		}
	}
}

func TestLUNList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0,1,2,3,7": "0-3,7", "7,0-2": "0-2,7", "5-5": "5"} {
		l, err := parseLUNList(in)
		if err != nil || lunList(l) != want {
			t.Errorf("%q: %v, %v; want %s", in, lunList(l), err, want)
		}
	}
	if lunList(nil) != "all" {
		t.Error("no LUNs should read all")
	}
}
