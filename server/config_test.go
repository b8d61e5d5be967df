package server

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// problemWant is a problem a bad config must report: its line, key, and
// words of the message and of the fix.
type problemWant struct {
	line int
	key  string
	msg  string
	fix  string
}

func TestParseProblems(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name string
		doc  string
		want []problemWant
	}{
		{"ok", `
[target]
guid = "0x0002c90300a1b2c3"
idle = "adaptive"
[[lun]]
number = 0
backend = "mem"
size = "64MiB"
[[lun]]
number = 1
backend = "psync"
path = "` + img + `"
[[acl]]
name = "all"
initiators = ["*"]
luns = [0, 1]
`, nil},
		{"unknown keys", `
[target]
gid = "1"
[[lun]]
number = 0
backend = "mem"
size = "1GiB"
blocksize = 512
`, []problemWant{{3, "target.gid", "unknown key", `did you mean "guid"`}, {8, "lun.blocksize", "unknown key", `did you mean "block_size"`}}},
		{"duplicate LUN and out of range", `
[[lun]]
number = 3
backend = "null"
size = "1GiB"
[[lun]]
number = 3
backend = "null"
size = "1GiB"
[[lun]]
number = 20000
backend = "null"
size = "1GiB"
`, []problemWant{{7, "lun[1].number", "defined twice", "its own number"}, {11, "lun[2].number", "out of range", "0 to 16383"}}},
		{"size and block size", `
[[lun]]
number = 0
backend = "mem"
size = "1000"
[[lun]]
number = 1
backend = "mem"
size = "1MiB"
block_size = 1024
[[lun]]
number = 2
backend = "mem"
`, []problemWant{{5, "lun[0].size", "not a positive multiple", `"512"`}, {10, "lun[1].block_size", "block size 1024", "512 or 4096"}, {11, "lun[2].size", "needs a size", "size ="}}},
		{"missing file", `
[[lun]]
number = 0
backend = "uring"
path = "` + missing + `"
[[lun]]
number = 1
backend = "psync"
`, []problemWant{{5, "lun[0].path", "does not exist", "create = true"}, {6, "lun[1].path", "needs a path", "path ="}}},
		{"bad values", `
[target]
guid = "xyz"
cores = "[0,4096]"
idle = "lazy"
max_rdma_size = "1k"
hugepages = "giant"
`, []problemWant{{3, "target.guid", "not hexadecimal", "16 hexadecimal digits"}, {4, "target.cores", "", "online CPUs"}, {5, "target.idle", "lazy", "adaptive"}, {6, "target.max_rdma_size", "out of range", "4KiB"}, {7, "target.hugepages", "giant", "auto"}}},
		{"transports", `
[[listener]]
transport = "roce"
address = "192.0.2.77:5555"
[[listener]]
transport = "tcp"
[[listener]]
transport = "ibv"
address = "not-an-address"
`, []problemWant{{3, "listener[0].transport", "not available in this build yet (issue 8)", `"loop"`}, {4, "listener[0].address", "not an address of this host", "local interface"}, {6, "listener[1].transport", "unknown", "loop"}, {8, "listener[2].transport", "issue 8", ""}, {9, "listener[2].address", "want IP:PORT", "IP:PORT"}}},
		{"acls", `
[[lun]]
number = 0
backend = "null"
size = "1GiB"
[[acl]]
name = "a"
initiators = ["10.0.0.0/33"]
[[acl]]
name = "a"
initiators = ["*"]
luns = [0, 7]
`, []problemWant{{8, "acl[0].initiators", "10.0.0.0/33", "CIDR"}, {10, "acl[1].name", "defined twice", "its own name"}, {12, "acl[1].luns", "LUN 7 is not defined", "number = 7"}}},
		{"type error", `
[[lun]]
number = 0
backend = "mem"
size = 1073741824
`, []problemWant{{5, "lun.size", "TOML integer where a string", "quote the value"}}},
		{"syntax error", "[target\nguid = 1\n", []problemWant{{1, "", "", "valid TOML"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse: %v, want a *ConfigError", err)
			}
			if len(ce.Problems) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(ce.Problems), len(tc.want), err)
			}
			for i, w := range tc.want {
				p := ce.Problems[i]
				if p.Line != w.line || (w.key != "" && p.Key != w.key) || !strings.Contains(p.Message, w.msg) || !strings.Contains(p.Fix, w.fix) || p.Fix == "" {
					t.Errorf("problem %d = %+v, want line %d key %q message ~%q fix ~%q", i, p, w.line, w.key, w.msg, w.fix)
				}
			}
		})
	}
}

func TestGUIDFromMAC(t *testing.T) {
	for _, tc := range []struct {
		mac  string
		want uint64
	}{
		{"00:02:c9:a1:b2:c3", 0x0202c9fffea1b2c3},
		{"52:54:00:12:34:56", 0x505400fffe123456},
		{"ff:ff:ff:ff:ff:ff", 0xfdfffffffeffffff},
	} {
		mac, err := net.ParseMAC(tc.mac)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := GUIDFromMAC(mac); err != nil || got != tc.want {
			t.Errorf("GUIDFromMAC(%s) = %016x, %v; want %016x", tc.mac, got, err, tc.want)
		}
	}
	if _, err := GUIDFromMAC(make(net.HardwareAddr, 20)); err == nil {
		t.Error("GUIDFromMAC of an IPoIB address: no error")
	}
}

func TestParseGUIDAndSize(t *testing.T) {
	for s, want := range map[string]uint64{"0x0002c90300a1b2c3": 0x0002c90300a1b2c3, "0002:c903:00a1:b2c3": 0x0002c90300a1b2c3, "1": 1} {
		if got, err := ParseGUID(s); err != nil || got != want {
			t.Errorf("ParseGUID(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0", "0x", "12345678901234567", "g"} {
		if _, err := ParseGUID(s); err == nil {
			t.Errorf("ParseGUID(%q): no error", s)
		}
	}
	for s, want := range map[string]uint64{"4096": 4096, "1GiB": 1 << 30, "256m": 256 << 20, "1.5k": 1536, "512b": 512} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", s, got, err)
		}
		if got, _ := ParseSize(FormatSize(want)); got != want {
			t.Errorf("FormatSize(%d) = %q does not read back", want, FormatSize(want))
		}
	}
	for _, s := range []string{"", "k", "1x", "-1"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q): no error", s)
		}
	}
}

func TestParseLUNSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want LUNConfig
		ok   bool
	}{
		{"null:1GiB", LUNConfig{Number: 2, Backend: "null", Size: "1GiB"}, true},
		{"mem:256MiB,bs=4096,wc", LUNConfig{Number: 2, Backend: "mem", Size: "256MiB", BlockSize: 4096, WriteCache: true}, true},
		{"uring:/dev/nvme0n1,ro", LUNConfig{Number: 2, Backend: "uring", Path: "/dev/nvme0n1", ReadOnly: true}, true},
		{"file:/img,size=1g,create,serial=disk7", LUNConfig{Number: 2, Backend: "file", Path: "/img", Size: "1g", Create: true, Serial: "disk7"}, true},
		{"psync:/x,buffered", LUNConfig{Number: 2, Backend: "psync", Path: "/x", Buffered: true}, true},
		{"nvme:/dev/x", LUNConfig{}, false},
		{"mem", LUNConfig{}, false},
		{"mem:1g,colour=red", LUNConfig{}, false},
	} {
		got, err := ParseLUNSpec(tc.spec, 2)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseLUNSpec(%q) = %+v, %v; want %+v ok %v", tc.spec, got, err, tc.want, tc.ok)
		}
	}
}
