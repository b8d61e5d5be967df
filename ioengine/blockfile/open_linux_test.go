package blockfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/internal/sysfs/sysfstest"
	"github.com/usrpt/usrpt/ioengine/blockfile"
	"github.com/usrpt/usrpt/ioengine/blockfile/blockfiletest"
)

// alignedBuf returns n bytes of page-aligned off-heap memory.
func alignedBuf(t *testing.T, n int) []byte {
	t.Helper()
	r, err := hugemem.Map(hugemem.RegionConfig{Size: n, Pages: hugemem.PagesSmall, Node: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.Bytes()[:n]
}

func open(t *testing.T, cfg blockfile.Config) *blockfile.File {
	t.Helper()
	f, err := blockfile.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func fsMagicName(t *testing.T, path string) string {
	t.Helper()
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		t.Fatal(err)
	}
	switch uint32(sfs.Type) { // int32 on 32-bit platforms
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	}
	return ""
}

func TestOpenRegular(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			p := blockfiletest.File(t, "", "disk.img", 1<<20)
			f := open(t, blockfile.Config{Path: p, Direct: direct})
			t.Log(f)
			if f.Kind != blockfile.Regular || f.Path != p || f.Direct != direct || f.ReadOnly {
				t.Errorf("kind %v path %q direct %v read-only %v", f.Kind, f.Path, f.Direct, f.ReadOnly)
			}
			if f.SizeBytes != 1<<20 {
				t.Errorf("SizeBytes = %d, want %d", f.SizeBytes, 1<<20)
			}
			if bs := f.BlockSize; bs < 512 || bs > 64<<10 || bs&(bs-1) != 0 {
				t.Errorf("BlockSize = %d", bs)
			}
			if want := fsMagicName(t, p); want != "" && f.FS != want {
				t.Errorf("FS = %q, want %q", f.FS, want)
			}
			if f.FS == "" || !f.CanDiscard {
				t.Errorf("FS %q CanDiscard %v", f.FS, f.CanDiscard)
			}
			if direct && (f.MemAlign < 1 || f.MemAlign > f.BlockSize) || !direct && f.MemAlign != 1 {
				t.Errorf("MemAlign = %d with BlockSize %d, direct %v", f.MemAlign, f.BlockSize, direct)
			}
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if maj := unix.Major(st.Dev); maj != 0 {
				dev, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", maj, unix.Minor(st.Dev)))
				if err == nil && !bytes.Contains(dev, []byte("DEVNAME="+f.Device+"\n")) {
					t.Errorf("Device = %q; uevent says\n%s", f.Device, dev)
				}
			}
			// The descriptor works, with O_DIRECT alignment when asked.
			buf := alignedBuf(t, f.BlockSize)
			copy(buf, "usrpt")
			if _, err := unix.Pwrite(f.Fd, buf, int64(f.BlockSize)); err != nil {
				t.Fatal(err)
			}
			clear(buf)
			if _, err := unix.Pread(f.Fd, buf, int64(f.BlockSize)); err != nil || string(buf[:5]) != "usrpt" {
				t.Fatalf("read back %q, %v", buf[:5], err)
			}
			flags, err := unix.FcntlInt(uintptr(f.Fd), unix.F_GETFL, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := flags&unix.O_DIRECT != 0; got != direct {
				t.Errorf("O_DIRECT set = %v, want %v", got, direct)
			}
			if flags&unix.O_ACCMODE != unix.O_RDWR {
				t.Errorf("access mode %#o, want O_RDWR", flags&unix.O_ACCMODE)
			}
		})
	}
}

func TestOpenReadOnly(t *testing.T) {
	p := blockfiletest.File(t, "", "ro.img", 64<<10)
	f := open(t, blockfile.Config{Path: p, Direct: true, ReadOnly: true})
	if !f.ReadOnly {
		t.Error("ReadOnly false")
	}
	if _, err := unix.Pwrite(f.Fd, make([]byte, 512), 0); err != unix.EBADF {
		t.Errorf("write on a read-only file: %v, want EBADF", err)
	}
	if _, err := blockfile.Open(blockfile.Config{Path: p, ReadOnly: true, Create: true}); err == nil {
		t.Error("create and read-only together: no error")
	}
}

func TestOpenCreateAndSize(t *testing.T) {
	dir := t.TempDir()
	t.Run("new", func(t *testing.T) {
		p := filepath.Join(dir, "new.img")
		f := open(t, blockfile.Config{Path: p, Direct: true, Create: true, SizeBytes: 4 << 20})
		if f.SizeBytes != 4<<20 {
			t.Errorf("SizeBytes = %d", f.SizeBytes)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() != 4<<20 {
			t.Errorf("file: %v, %v", fi, err)
		}
	})
	t.Run("extend", func(t *testing.T) {
		p := blockfiletest.File(t, dir, "short.img", 1<<20)
		f := open(t, blockfile.Config{Path: p, Direct: true, Create: true, SizeBytes: 2 << 20})
		if fi, err := os.Stat(p); err != nil || fi.Size() != 2<<20 || f.SizeBytes != 2<<20 {
			t.Errorf("file %v, %v; SizeBytes %d", fi, err, f.SizeBytes)
		}
	})
	t.Run("smaller size exposes a prefix and keeps the file", func(t *testing.T) {
		p := blockfiletest.File(t, dir, "big.img", 2<<20)
		f := open(t, blockfile.Config{Path: p, Direct: true, Create: true, SizeBytes: 1 << 20})
		if fi, err := os.Stat(p); err != nil || fi.Size() != 2<<20 || f.SizeBytes != 1<<20 {
			t.Errorf("file %v, %v; SizeBytes %d", fi, err, f.SizeBytes)
		}
	})
	for _, tc := range []struct {
		name      string
		fileBytes int64 // -1: no file
		cfg       blockfile.Config
		want      []string
	}{
		{"too small without create", 1 << 20, blockfile.Config{SizeBytes: 2 << 20}, []string{"less than the 2097152 bytes", "set create"}},
		{"size not whole blocks", 1 << 20, blockfile.Config{SizeBytes: 1000}, []string{"not a multiple of its", "rounded down"}},
		{"file not whole blocks", 1000, blockfile.Config{}, []string{"size 1000", "not a multiple of its", "give a size of 512"}},
		{"empty", 0, blockfile.Config{}, []string{"is empty"}},
		{"created empty", -1, blockfile.Config{Create: true}, []string{"is empty"}},
		{"negative", 1 << 20, blockfile.Config{SizeBytes: -1}, []string{"negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.img")
			if tc.fileBytes >= 0 {
				p = blockfiletest.File(t, filepath.Dir(p), "x.img", tc.fileBytes)
			}
			cfg := tc.cfg
			cfg.Path = p
			f, err := blockfile.Open(cfg)
			if err == nil {
				f.Close()
				t.Fatalf("no error; %v", f)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "x.img") && tc.name != "negative" {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  blockfile.Config
		is   error
		want []string
	}{
		{"missing", blockfile.Config{Path: filepath.Join(dir, "nope.img"), Direct: true}, fs.ErrNotExist, []string{"nope.img", "set create"}},
		{"missing dir with create", blockfile.Config{Path: filepath.Join(dir, "no/x.img"), Create: true, SizeBytes: 4096}, fs.ErrNotExist, []string{"directory", "does not exist"}},
		{"directory", blockfile.Config{Path: dir, Direct: true}, nil, []string{dir, "is a directory"}},
		{"directory read-only", blockfile.Config{Path: dir, ReadOnly: true}, nil, []string{"is a directory"}},
		{"character device", blockfile.Config{Path: "/dev/null", ReadOnly: true}, nil, []string{"/dev/null", "character device"}},
		{"no path", blockfile.Config{}, nil, []string{"no path"}},
		{"O_DIRECT refused", blockfile.Config{Path: "/proc/version", Direct: true, ReadOnly: true}, blockfile.ErrDirectUnsupported,
			[]string{"O_DIRECT is not supported by proc at /proc/version: use --direct=0 (direct = false in the config) to go through the page cache"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := blockfile.Open(tc.cfg)
			if err == nil {
				f.Close()
				t.Fatalf("no error; %v", f)
			}
			t.Log(err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("O_DIRECT refused is EINVAL too", func(t *testing.T) {
		_, err := blockfile.Open(blockfile.Config{Path: "/proc/version", Direct: true, ReadOnly: true})
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("%v is not EINVAL", err)
		}
	})
}

func TestOpenPermissionDenied(t *testing.T) {
	// Reading /dev/vda gives EPERM on the lab VMs this project is built on:
	// a device cgroup denies it whatever the file mode says.
	const vda = "/dev/vda"
	f, err := blockfile.Open(blockfile.Config{Path: vda, Direct: true, ReadOnly: true})
	if err == nil {
		f.Close()
		t.Skipf("%s opened: nothing refuses it here", vda)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Skipf("%s: %v (not a permission error here)", vda, err)
	}
	t.Log(err)
	for _, w := range []string{vda, "device cgroup", "security module"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestOpenEACCES(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root is not refused by file modes")
	}
	p := blockfiletest.File(t, "", "locked.img", 4096)
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	_, err := blockfile.Open(blockfile.Config{Path: p})
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "mode and owner") {
		t.Errorf("error %v", err)
	}
}

func TestTmpfs(t *testing.T) {
	dir := blockfiletest.ShmDir(t)
	p := blockfiletest.File(t, dir, "shm.img", 1<<20)
	// tmpfs accepts O_DIRECT since Linux 6.6; fall back to buffered where
	// it does not, since the point here is the file system detection.
	f, err := blockfile.Open(blockfile.Config{Path: p, Direct: true})
	if errors.Is(err, blockfile.ErrDirectUnsupported) {
		f, err = blockfile.Open(blockfile.Config{Path: p})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Log(f)
	if f.FS != "tmpfs" || f.Device != "" {
		t.Errorf("FS %q Device %q, want tmpfs and none", f.FS, f.Device)
	}
	punts, why := f.WorkerPunts()
	if !punts || !strings.Contains(why, "tmpfs") {
		t.Errorf("WorkerPunts = %v, %q", punts, why)
	}
}

func TestNoPuntOnDiskFile(t *testing.T) {
	p := blockfiletest.File(t, "", "disk.img", 1<<20)
	f := open(t, blockfile.Config{Path: p, Direct: true})
	if f.FS == "tmpfs" || strings.HasPrefix(f.Device, "zram") {
		t.Skipf("t.TempDir() is on %s %s", f.FS, f.Device)
	}
	if punts, why := f.WorkerPunts(); punts {
		t.Errorf("WorkerPunts on %s (%s) = true, %q", f.FS, f.Device, why)
	}
}

// A regular file whose file system sits on a device that sysfs (faked here)
// calls zram0 punts as zram itself does.
func TestFakeSysfsZramUnderFile(t *testing.T) {
	p := blockfiletest.File(t, "", "disk.img", 1<<20)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	maj, min := unix.Major(st.Dev), unix.Minor(st.Dev)
	if maj == 0 {
		t.Skip("t.TempDir() has no block device behind it")
	}
	dev := fmt.Sprintf("sys/dev/block/%d:%d/", maj, min)
	root := sysfstest.Tree(t, sysfstest.Spec{Files: sysfstest.FileMap{
		dev + "uevent":                   fmt.Sprintf("MAJOR=%d\nMINOR=%d\nDEVNAME=zram0\nDEVTYPE=disk\n", maj, min),
		dev + "queue/rotational":         "0\n",
		dev + "queue/logical_block_size": "4096\n",
	}})
	f := open(t, blockfile.Config{Path: p, SysRoot: root})
	if f.Device != "zram0" || f.Rotational {
		t.Errorf("Device %q Rotational %v", f.Device, f.Rotational)
	}
	punts, why := f.WorkerPunts()
	if !punts || !strings.Contains(why, "zram0") {
		t.Errorf("WorkerPunts = %v, %q", punts, why)
	}
}

func TestDiscardAndWriteZeroesFile(t *testing.T) {
	dirs := map[string]func(t *testing.T) string{
		"tempdir": func(t *testing.T) string { return t.TempDir() },
		"tmpfs":   func(t *testing.T) string { return blockfiletest.ShmDir(t) },
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			p := blockfiletest.File(t, dir(t), "z.img", 1<<20)
			f := open(t, blockfile.Config{Path: p})
			checkDiscardZeroes(t, f)
		})
	}
}

func checkDiscardZeroes(t *testing.T, f *blockfile.File) {
	t.Helper()
	const span = 64 << 10
	buf := alignedBuf(t, span)
	fill := func() {
		for i := range buf {
			buf[i] = 0xa5
		}
		if n, err := unix.Pwrite(f.Fd, buf, 0); err != nil || n != span {
			t.Fatalf("pwrite: %d, %v", n, err)
		}
	}
	zeroes := func(what string, off, n int) {
		t.Helper()
		if _, err := unix.Pread(f.Fd, buf, 0); err != nil {
			t.Fatal(err)
		}
		for i, b := range buf {
			inside := i >= off && i < off+n
			if inside && b != 0 || !inside && b != 0xa5 {
				t.Fatalf("after %s of [%d,%d): byte %d is %#x", what, off, off+n, i, b)
			}
		}
	}
	fill()
	if e := f.WriteZeroes(8192, 16384); e != 0 {
		t.Fatalf("WriteZeroes: %v", e)
	}
	zeroes("write-zeroes", 8192, 16384)
	fill()
	if e := f.Discard(4096, 8192); e != 0 {
		if e == unix.EOPNOTSUPP && f.Kind == blockfile.Block {
			t.Logf("discard: %v (the device does not discard)", e)
			return
		}
		t.Fatalf("Discard: %v", e)
	}
	// Discarded blocks may read as anything in general; files and the
	// devices tested here (loop over a file, zram) return zeroes.
	zeroes("discard", 4096, 8192)
	if e := f.Discard(0, 0); e != 0 {
		t.Errorf("empty discard: %v", e)
	}
	allocs := testing.AllocsPerRun(50, func() {
		f.WriteZeroes(0, 4096)
		f.Discard(0, 4096)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per WriteZeroes+Discard, want 0", allocs)
	}
}

func TestLoopDevice(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			node := blockfiletest.Loop(t, blockfiletest.LoopConfig{SizeBytes: 8 << 20, BlockSize: bs, Direct: true})
			f := open(t, blockfile.Config{Path: node, Direct: true})
			t.Log(f)
			if f.Kind != blockfile.Block || f.FS != "" {
				t.Errorf("Kind %v FS %q", f.Kind, f.FS)
			}
			if want := filepath.Base(node); f.Device != want {
				t.Errorf("Device %q, want %q", f.Device, want)
			}
			if f.SizeBytes != 8<<20 || f.BlockSize != bs {
				t.Errorf("SizeBytes %d BlockSize %d, want %d and %d", f.SizeBytes, f.BlockSize, 8<<20, bs)
			}
			if punts, why := f.WorkerPunts(); punts {
				t.Errorf("WorkerPunts = true, %q", why)
			}
			// Opened for writing, the device is claimed: a second writer
			// is told it is in use.
			_, err := blockfile.Open(blockfile.Config{Path: node, Direct: true})
			if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "in use") {
				t.Errorf("second exclusive open: %v", err)
			}
			if bs == 4096 {
				// Exposing a prefix that is not whole blocks is refused.
				_, err := blockfile.Open(blockfile.Config{Path: node, ReadOnly: true, SizeBytes: 1 << 20 / 2 * 1})
				if err != nil {
					t.Errorf("512 KiB prefix: %v", err)
				}
				_, err = blockfile.Open(blockfile.Config{Path: node, ReadOnly: true, SizeBytes: 4096 + 512})
				if err == nil || !strings.Contains(err.Error(), "not a multiple of its 4096-byte") {
					t.Errorf("4608-byte prefix: %v", err)
				}
			}
			checkDiscardZeroes(t, f)
		})
	}
}

// TestZram opens /dev/zram0 read-only if someone has set it up (a disksize);
// it changes nothing.
func TestZram(t *testing.T) {
	size, err := os.ReadFile("/sys/block/zram0/disksize")
	if err != nil || strings.TrimSpace(string(size)) == "0" {
		t.Skip("no zram0 with a disksize")
	}
	f, err := blockfile.Open(blockfile.Config{Path: "/dev/zram0", Direct: true, ReadOnly: true})
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	t.Log(f)
	if f.Kind != blockfile.Block || f.Device != "zram0" || f.Rotational {
		t.Errorf("Kind %v Device %q Rotational %v", f.Kind, f.Device, f.Rotational)
	}
	if punts, why := f.WorkerPunts(); !punts || !strings.Contains(why, "zram") {
		t.Errorf("WorkerPunts = %v, %q", punts, why)
	}
}
