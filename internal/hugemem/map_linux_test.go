package hugemem

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// hostHuge is the free 2 MiB hugepages this host has for tests, which may
// only read the setting: root may reserve some beforehand with
// `echo 8 > /proc/sys/vm/nr_hugepages`.
func hostHuge(t *testing.T) int {
	t.Helper()
	info, err := Hugepages("")
	if err != nil {
		return 0
	}
	return info.Free
}

// hostOvercommit reports whether the kernel may hand out surplus hugepages
// beyond the reserved pool.
func hostOvercommit() bool {
	b, err := os.ReadFile("/proc/sys/vm/nr_overcommit_hugepages")
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

func TestMapSmall(t *testing.T) {
	r := mapT(t, RegionConfig{Size: 10000, Pages: PagesSmall, Node: -1})
	page := os.Getpagesize()
	if r.Huge() || r.PageSize() != page {
		t.Errorf("huge %v page %d, want base pages of %d", r.Huge(), r.PageSize(), page)
	}
	if want := roundUp(10000, page); r.Len() != want || len(r.Bytes()) != want {
		t.Errorf("Len %d, want 10000 rounded up to %d", r.Len(), want)
	}
	if r.NodeBound() {
		t.Error("NodeBound without a node")
	}
	for i, c := range r.Bytes() {
		if c != 0 {
			t.Fatalf("byte %d of a fresh region is %d", i, c)
		}
	}
}

func TestMapAutoFallsBack(t *testing.T) {
	if hostOvercommit() {
		t.Skip("host overcommits hugepages: no size is sure to fail")
	}
	// More hugepages than the host has free: PagesAuto must use base pages.
	size := (hostHuge(t) + 2) * HugePageSize
	r := mapT(t, RegionConfig{Size: size, Pages: PagesAuto, Node: -1})
	if r.Huge() || r.PageSize() != os.Getpagesize() {
		t.Errorf("huge %v page %d beyond the free hugepages, want base pages", r.Huge(), r.PageSize())
	}
	if r.Len() != size {
		t.Errorf("Len %d, want %d", r.Len(), size)
	}
	r.Bytes()[r.Len()-1] = 1
}

func TestMapHugeMissing(t *testing.T) {
	if hostOvercommit() {
		t.Skip("host overcommits hugepages: no size is sure to fail")
	}
	// One byte more than the free hugepages hold, so one page short.
	free := hostHuge(t)
	size := free*HugePageSize + 1
	need := free + 1
	r, err := Map(RegionConfig{Size: size, Pages: PagesHuge, Node: -1})
	if err == nil {
		r.Close()
		t.Fatal("PagesHuge mapped more than the free hugepages")
	}
	if !errors.Is(err, ErrNoHugepages) || !(errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EINVAL)) {
		t.Errorf("error %v does not wrap ErrNoHugepages and the errno", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"hugemem: map " + humanize.IBytes(uint64(need*HugePageSize)),
		fmt.Sprintf("need %d free pages", need),
		"> /proc/sys/vm/nr_hugepages",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if info, ierr := Hugepages(""); ierr == nil {
		fix := fmt.Sprintf("fix: echo %d >", max(need, info.Total-info.Free+need))
		if !strings.Contains(msg, fix) {
			t.Errorf("error %q lacks %q", msg, fix)
		}
	}
}

func TestMapHuge(t *testing.T) {
	if free := hostHuge(t); free < 2 {
		t.Skipf("%d free 2 MiB hugepages; as root, `echo 8 > /proc/sys/vm/nr_hugepages` to run this", free)
	}
	for _, pages := range []PagePolicy{PagesHuge, PagesAuto} {
		t.Run(pages.String(), func(t *testing.T) {
			r := mapT(t, RegionConfig{Size: HugePageSize + 1, Pages: pages, Node: -1})
			if !r.Huge() || r.PageSize() != HugePageSize || r.Len() != 2*HugePageSize {
				t.Fatalf("huge %v page %d len %d, want two hugepages", r.Huge(), r.PageSize(), r.Len())
			}
			ps, err := r.Split(64<<10, 8, 2)
			if err != nil {
				t.Fatal(err)
			}
			if ps[1].Offset(0) != HugePageSize {
				t.Errorf("second pool at %d, want on the second hugepage", ps[1].Offset(0))
			}
			for i := range r.Bytes() {
				r.Bytes()[i] = byte(i)
			}
		})
	}
}

func TestMapNode(t *testing.T) {
	_, statErr := os.Stat("/sys/devices/system/node/node0")
	for _, pages := range []PagePolicy{PagesSmall, PagesAuto} {
		r := mapT(t, RegionConfig{Size: 1 << 20, Pages: pages, Node: 0})
		if statErr == nil && !r.NodeBound() {
			t.Errorf("%v: node 0 exists but NodeBound is false", pages)
		}
		r.Bytes()[0] = 1
	}
	r := mapT(t, RegionConfig{Size: 1 << 20, Pages: PagesSmall, Node: 1 << 16})
	if r.NodeBound() {
		t.Error("NodeBound to node 65536")
	}
	r.Bytes()[r.Len()-1] = 1
}

func TestMapLock(t *testing.T) {
	r, err := Map(RegionConfig{Size: 1 << 20, Pages: PagesAuto, Node: -1, Lock: true})
	if err != nil {
		// Without CAP_IPC_LOCK and under a small RLIMIT_MEMLOCK this is
		// the expected failure; it must say what to do.
		if !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") {
			t.Fatalf("mlock error %q does not name RLIMIT_MEMLOCK", err)
		}
		t.Skipf("%v", err)
	}
	defer r.Close()
	r.Bytes()[0] = 1
}

func TestLockError(t *testing.T) {
	err := lockError(64<<20, unix.ENOMEM)
	if !errors.Is(err, unix.ENOMEM) {
		t.Errorf("%v does not wrap ENOMEM", err)
	}
	for _, want := range []string{"hugemem: mlock 64 MiB", "RLIMIT_MEMLOCK is ", "ulimit -l", "LimitMEMLOCK="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestMapBadConfig(t *testing.T) {
	for _, cfg := range []RegionConfig{
		{Size: 0, Node: -1},
		{Size: -4096, Node: -1},
		{Size: 4096, Pages: PagePolicy(9), Node: -1},
		{Size: int(^uint(0) >> 1), Node: -1},
	} {
		if r, err := Map(cfg); err == nil {
			r.Close()
			t.Errorf("Map(%+v): no error", cfg)
		}
	}
	// Too large for the address space: a clean error, not a crash.
	if strconv.IntSize == 64 {
		size := maxInt/2 + 1
		if r, err := Map(RegionConfig{Size: size, Pages: PagesSmall, Node: -1}); err == nil {
			r.Close()
			t.Errorf("Map of %d bytes: no error", size)
		} else if want := "hugemem: map " + humanize.IBytes(uint64(size)); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
