package hugemem

import (
	"errors"
	"fmt"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// Map maps an anonymous private region as cfg asks. See RegionConfig.
//
// The mapping is MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, with
// MAP_HUGETLB|MAP_HUGE_2MB while hugepages are tried. Under PagesAuto an
// ENOMEM or EINVAL from the hugepage attempt falls back to base pages; under
// PagesHuge it is an error wrapping ErrNoHugepages that says how many pages
// to reserve. When cfg.Node >= 0 the pages are populated after mbind rather
// than by MAP_POPULATE, since MPOL_PREFERRED only places pages faulted after
// it. The region is also marked MADV_DONTFORK, as rdma-core does for
// registered memory, so a fork never copy-on-writes pages a NIC has pinned.
func Map(cfg RegionConfig) (*Region, error) {
	if cfg.Size <= 0 {
		return nil, fmt.Errorf("hugemem: map %d bytes: want a positive size", cfg.Size)
	}
	if cfg.Size > maxInt-HugePageSize {
		return nil, fmt.Errorf("hugemem: map %s: size too large", humanize.IBytes(uint64(cfg.Size)))
	}
	switch cfg.Pages {
	case PagesAuto, PagesHuge, PagesSmall:
	default:
		return nil, fmt.Errorf("hugemem: map %s: unknown page policy %v", humanize.IBytes(uint64(cfg.Size)), cfg.Pages)
	}

	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	if cfg.Node < 0 {
		flags |= unix.MAP_POPULATE
	}

	var (
		mem  []byte
		page int
		huge bool
		err  error
	)
	if cfg.Pages != PagesSmall {
		page, huge = HugePageSize, true
		size := roundUp(cfg.Size, page)
		mem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, flags|unix.MAP_HUGETLB|unix.MAP_HUGE_2MB)
		if err != nil {
			if cfg.Pages == PagesHuge || !(errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EINVAL)) {
				return nil, hugeMapError(size, err)
			}
			mem = nil
		}
	}
	if mem == nil {
		page, huge = unix.Getpagesize(), false
		size := roundUp(cfg.Size, page)
		mem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, flags)
		if err != nil {
			return nil, fmt.Errorf("hugemem: map %s: %w", humanize.IBytes(uint64(size)), err)
		}
	}

	r := &Region{mem: mem, pageSize: page, huge: huge}
	if err := r.setup(cfg); err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	return r, nil
}

// setup applies the NUMA preference, populates, and locks a fresh mapping.
func (r *Region) setup(cfg RegionConfig) error {
	size := humanize.IBytes(uint64(len(r.mem)))
	if cfg.Node >= 0 {
		r.nodeBound = mbindPreferred(r.mem, cfg.Node) == nil
		if err := populate(r.mem, r.pageSize); err != nil {
			return fmt.Errorf("hugemem: populate %s: %w", size, err)
		}
	}
	if err := unix.Madvise(r.mem, unix.MADV_DONTFORK); err != nil {
		return fmt.Errorf("hugemem: madvise %s DONTFORK: %w", size, err)
	}
	if cfg.Lock {
		if err := unix.Mlock(r.mem); err != nil {
			return lockError(len(r.mem), err)
		}
	}
	return nil
}

// populate faults in every page, as MAP_POPULATE would have. Kernels before
// 5.14 lack MADV_POPULATE_WRITE; there a write to each page does it.
func populate(mem []byte, page int) error {
	err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE)
	if !errors.Is(err, unix.EINVAL) {
		return err
	}
	for off := 0; off < len(mem); off += page {
		mem[off] = 0
	}
	return nil
}

func munmap(mem []byte) error { return unix.Munmap(mem) }

// hugeMapError explains a failed hugepage mapping: how many pages the region
// needs, what the pool has, and the command that reserves them.
func hugeMapError(size int, err error) error {
	need := HugepagesFor(size)
	info, ierr := Hugepages("")
	if ierr != nil {
		return fmt.Errorf("hugemem: map %s: %w: %w: need %d free pages (%v); fix: echo %d > /proc/sys/vm/nr_hugepages",
			humanize.IBytes(uint64(size)), ErrNoHugepages, err, need, ierr, need)
	}
	// Pages others already use stay in use: reserve them plus ours.
	want := max(need, info.Total-info.Free+need)
	return fmt.Errorf("hugemem: map %s: %w: %w: need %d free pages, %d of %d free; fix: echo %d > /proc/sys/vm/nr_hugepages",
		humanize.IBytes(uint64(size)), ErrNoHugepages, err, need, info.Free, info.Total, want)
}

// lockError explains a failed mlock in terms of RLIMIT_MEMLOCK and its fix.
func lockError(size int, err error) error {
	limit := "unknown"
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl) == nil {
		if rl.Cur == unix.RLIM_INFINITY {
			limit = "unlimited"
		} else {
			limit = humanize.IBytes(rl.Cur)
		}
	}
	return fmt.Errorf("hugemem: mlock %s: %w: RLIMIT_MEMLOCK is %s; raise it with `ulimit -l unlimited`, "+
		"LimitMEMLOCK=infinity in the systemd unit, or memlock in /etc/security/limits.conf",
		humanize.IBytes(uint64(size)), err, limit)
}
