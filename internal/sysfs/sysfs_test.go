package sysfs_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
)

func TestNewRoot(t *testing.T) {
	for _, root := range []string{"", "/", "//"} {
		f := sysfs.New(root)
		if f.Root() != "/" {
			t.Errorf("New(%q).Root() = %q, want /", root, f.Root())
		}
		if got := f.Path("sys/devices/system/cpu/online"); got != "/sys/devices/system/cpu/online" {
			t.Errorf("New(%q).Path = %q", root, got)
		}
	}
	var zero sysfs.FS
	if zero.Root() != "/" {
		t.Errorf("zero FS root = %q, want /", zero.Root())
	}
	if got := sysfs.New(".").Path("sys"); got != "sys" {
		t.Errorf(`New(".").Path("sys") = %q, want "sys" (relative root kept)`, got)
	}
	f := sysfs.New("/tmp/x/")
	if f.Root() != "/tmp/x" {
		t.Errorf("Root() = %q", f.Root())
	}
	for _, rel := range []string{"sys/class/net", "/sys/class/net"} {
		if got := f.Path(rel); got != "/tmp/x/sys/class/net" {
			t.Errorf("Path(%q) = %q", rel, got)
		}
	}
	if got := f.Path("sys", "class", "net"); got != "/tmp/x/sys/class/net" {
		t.Errorf("Path(elems) = %q", got)
	}
}

func TestReadStringAndInt(t *testing.T) {
	root := t.TempDir()
	sysfstest.WriteFiles(t, root, sysfstest.FileMap{
		"a/str":   "  hello world \n",
		"a/int":   "42\n",
		"a/neg":   "-1\n",
		"a/zero":  "010\n", // decimal, not octal
		"a/hex":   "0x15b3\n",
		"a/bad":   "12abc\n",
		"a/big":   "9223372036854775808\n",
		"a/min":   "-9223372036854775808\n",
		"a/empty": "\n",
	})
	f := sysfs.New(root)
	if s, err := f.ReadString("a/str"); err != nil || s != "hello world" {
		t.Errorf("ReadString = %q, %v", s, err)
	}
	ints := map[string]int64{"a/int": 42, "a/neg": -1, "a/zero": 10, "a/hex": 0x15b3, "a/min": -1 << 63}
	for rel, want := range ints {
		if n, err := f.ReadInt(rel); err != nil || n != want {
			t.Errorf("ReadInt(%s) = %d, %v; want %d", rel, n, err, want)
		}
	}
	for _, rel := range []string{"a/bad", "a/big", "a/empty"} {
		n, err := f.ReadInt(rel)
		if err == nil {
			t.Errorf("ReadInt(%s) = %d, want error", rel, n)
			continue
		}
		if want := filepath.Join(root, rel); !strings.Contains(err.Error(), want) {
			t.Errorf("ReadInt(%s) error %q does not name %s", rel, err, want)
		}
	}
	if _, err := f.ReadString("a/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadString(missing) error = %v, want fs.ErrNotExist", err)
	}
	if _, err := f.ReadInt("a/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadInt(missing) error = %v, want fs.ErrNotExist", err)
	}
}

func TestReadCPUList(t *testing.T) {
	root := t.TempDir()
	sysfstest.WriteFiles(t, root, sysfstest.FileMap{
		"proc/irq/24/smp_affinity_list": "0-3,8\n",
		"proc/irq/25/smp_affinity_list": "0-x\n",
	})
	f := sysfs.New(root)
	cpus, err := f.ReadCPUList("proc/irq/24/smp_affinity_list")
	if err != nil || sysfs.FormatCPUList(cpus) != "0-3,8" {
		t.Errorf("ReadCPUList = %v, %v", cpus, err)
	}
	_, err = f.ReadCPUList("proc/irq/25/smp_affinity_list")
	var le *sysfs.CPUListError
	if !errors.As(err, &le) || le.Token != "0-x" {
		t.Errorf("ReadCPUList(bad) error = %v, want *CPUListError for 0-x", err)
	}
	if _, err := f.ReadCPUList("proc/irq/26/smp_affinity_list"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadCPUList(missing) error = %v", err)
	}
}
