package blockfile

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// Open opens cfg.Path and describes it. See Config for what each field does
// and File for what is reported.
func Open(cfg Config) (*File, error) {
	if cfg.Path == "" {
		return nil, errors.New("blockfile: open: no path given")
	}
	if cfg.SizeBytes < 0 {
		return nil, fmt.Errorf("blockfile: open %s: size %d is negative", cfg.Path, cfg.SizeBytes)
	}
	if cfg.Create && cfg.ReadOnly {
		return nil, fmt.Errorf("blockfile: open %s: create and read-only exclude each other", cfg.Path)
	}

	var st unix.Stat_t
	exists := true
	if err := unix.Stat(cfg.Path, &st); err != nil {
		if err != unix.ENOENT || !cfg.Create {
			return nil, openError(cfg, err)
		}
		exists = false
	}
	block := false
	if exists {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFBLK:
			block = true
		case unix.S_IFDIR:
			return nil, fmt.Errorf("blockfile: %s is a directory: give a regular file or a block device", cfg.Path)
		default:
			return nil, fmt.Errorf("blockfile: %s is a %s, not a regular file or a block device", cfg.Path, modeName(st.Mode))
		}
	}

	flags := unix.O_CLOEXEC | unix.O_RDWR
	if cfg.ReadOnly {
		flags = unix.O_CLOEXEC | unix.O_RDONLY
	}
	if cfg.Direct {
		flags |= unix.O_DIRECT
	}
	switch {
	case block && !cfg.ReadOnly:
		// O_EXCL on a block device claims it exclusively, as the kernel's
		// own target (LIO iblock) does: a mounted file system or a device
		// under swap, dm, md or loop is refused with EBUSY.
		flags |= unix.O_EXCL
	case cfg.Create && !block:
		flags |= unix.O_CREAT
	}
	fd, err := openRetry(cfg.Path, flags)
	if err != nil {
		return nil, openError(cfg, err)
	}
	f := &File{
		Fd:       fd,
		Path:     cfg.Path,
		Direct:   cfg.Direct,
		ReadOnly: cfg.ReadOnly,
		sys:      sysfs.New(cfg.SysRoot),
	}
	if err := f.describe(cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return f, nil
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0o600)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// describe fills in everything after the open.
func (f *File) describe(cfg Config) error {
	var st unix.Stat_t
	if err := unix.Fstat(f.Fd, &st); err != nil {
		return fmt.Errorf("blockfile: fstat %s: %w", f.Path, err)
	}
	var size int64
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		f.Kind = Regular
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(f.Fd, &sfs); err != nil {
			return fmt.Errorf("blockfile: statfs %s: %w", f.Path, err)
		}
		f.FS = fsName(int64(sfs.Type))
		if maj := unix.Major(st.Dev); maj != 0 {
			// Major 0 is an anonymous device (tmpfs, btrfs, overlay):
			// there is no block device to describe.
			f.dev = readDevInfo(f.sys, maj, unix.Minor(st.Dev))
		}
		size = st.Size
		if cfg.Create && cfg.SizeBytes > size {
			if err := unix.Ftruncate(f.Fd, cfg.SizeBytes); err != nil {
				return fmt.Errorf("blockfile: extend %s to %s: %w", f.Path, humanize.IBytes(uint64(cfg.SizeBytes)), err)
			}
			size = cfg.SizeBytes
		}
		f.CanDiscard = true
	case unix.S_IFBLK:
		f.Kind = Block
		f.dev = readDevInfo(f.sys, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		if !f.dev.known {
			// No sysfs (a container, a fake root in tests): the node's own
			// name is the next best thing.
			if p, err := filepath.EvalSymlinks(f.Path); err == nil {
				f.dev.name = filepath.Base(p)
			}
		}
		n, err := ioctlGetUint64(f.Fd, unix.BLKGETSIZE64)
		if err != nil {
			return fmt.Errorf("blockfile: %s: get size (BLKGETSIZE64): %w", f.Path, err)
		}
		size = int64(n)
		bs, err := unix.IoctlGetInt(f.Fd, unix.BLKSSZGET)
		if err != nil {
			return fmt.Errorf("blockfile: %s: get logical block size (BLKSSZGET): %w", f.Path, err)
		}
		f.BlockSize = bs
		f.CanDiscard = f.dev.discard
	default:
		return fmt.Errorf("blockfile: %s is a %s, not a regular file or a block device", f.Path, modeName(st.Mode))
	}
	f.Device = f.dev.name
	f.Rotational = f.dev.rotational

	// O_DIRECT alignment, as the kernel reports it (Linux 6.1+).
	var stx unix.Statx_t
	var dioOffset, dioMem int
	if err := unix.Statx(f.Fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err == nil && stx.Mask&unix.STATX_DIOALIGN != 0 {
		dioOffset, dioMem = int(stx.Dio_offset_align), int(stx.Dio_mem_align)
	}
	if f.Kind == Regular {
		// The same chain with and without Direct, so that turning the page
		// cache on or off never changes a LUN's geometry under an initiator.
		switch {
		case validBlockSize(dioOffset):
			f.BlockSize = dioOffset
		case validBlockSize(f.dev.logicalBlock):
			f.BlockSize = f.dev.logicalBlock
		default:
			f.BlockSize = 512
		}
	}
	if !validBlockSize(f.BlockSize) {
		return fmt.Errorf("blockfile: %s: logical block size %d is not a power of two from 512 to 64 KiB", f.Path, f.BlockSize)
	}
	f.MemAlign = 1
	if f.Direct {
		f.MemAlign = f.BlockSize
		if dioMem > 0 && dioMem&(dioMem-1) == 0 {
			f.MemAlign = dioMem
		}
	}

	if size == 0 && cfg.SizeBytes == 0 {
		return fmt.Errorf("blockfile: %s is empty: give a size and set create to extend it", f.Path)
	}
	if cfg.SizeBytes > 0 {
		if cfg.SizeBytes > size {
			hint := "use a smaller size"
			if f.Kind == Regular {
				hint += ", or set create to extend the file"
			}
			return fmt.Errorf("blockfile: %s holds %d bytes (%s), less than the %d bytes (%s) asked for: %s",
				f.Path, size, humanize.IBytes(uint64(size)), cfg.SizeBytes, humanize.IBytes(uint64(cfg.SizeBytes)), hint)
		}
		size = cfg.SizeBytes
	}
	if size%int64(f.BlockSize) != 0 {
		return fmt.Errorf("blockfile: size %d of %s is not a multiple of its %d-byte logical block size: give a size of %d (rounded down) or resize it",
			size, f.Path, f.BlockSize, size/int64(f.BlockSize)*int64(f.BlockSize))
	}
	f.SizeBytes = size
	return nil
}

func validBlockSize(n int) bool {
	return n >= 512 && n <= 64<<10 && n&(n-1) == 0
}

// openError explains a failed stat or open of cfg.Path and says what to do.
// The errno stays wrapped for errors.Is.
func openError(cfg Config, err error) error {
	p := cfg.Path
	switch {
	case err == unix.EINVAL && cfg.Direct:
		// open(2): EINVAL "The filesystem does not support the O_DIRECT
		// flag" (the kernel checks FMODE_CAN_ODIRECT in do_dentry_open).
		return &directError{fs: fsAt(p), path: p, errno: err}
	case err == unix.ENOENT:
		if cfg.Create {
			return fmt.Errorf("blockfile: open %s: %w: the directory %s does not exist", p, err, filepath.Dir(p))
		}
		return fmt.Errorf("blockfile: open %s: %w: give an existing file or block device, or set create to make a file", p, err)
	case err == unix.EACCES:
		return fmt.Errorf("blockfile: open %s: %w: check the mode and owner of %s and the search (x) permission of every directory above it, and that usrpt runs as a user that may open it %s", p, err, p, access(cfg))
	case err == unix.EPERM:
		return fmt.Errorf("blockfile: open %s: %w: the kernel refused it whatever the file mode: check the device cgroup or container policy (block devices are often denied there), a security module (SELinux, AppArmor, kernel lockdown), and immutable or append-only attributes (lsattr %s); or use a file or another device", p, err, p)
	case err == unix.EBUSY:
		return fmt.Errorf("blockfile: open %s: %w: the device is in use (a mounted file system, swap, or held by dm, md, loop or another exclusive opener): free it first, or set read-only", p, err)
	case err == unix.EROFS:
		return fmt.Errorf("blockfile: open %s: %w: it is on a read-only file system or the device is write-protected: set read-only, or remount it read-write", p, err)
	case err == unix.ENXIO || err == unix.ENODEV:
		return fmt.Errorf("blockfile: open %s: %w: the device node has no device behind it (driver not loaded, device removed or not set up, e.g. a zram disk with no disksize)", p, err)
	case err == unix.ETXTBSY:
		return fmt.Errorf("blockfile: open %s: %w: the file is in use as swap or a running executable", p, err)
	}
	return fmt.Errorf("blockfile: open %s: %w", p, err)
}

func access(cfg Config) string {
	if cfg.ReadOnly {
		return "for reading"
	}
	return "for reading and writing (or set read-only)"
}

// fsAt names the file system holding path, or its directory when path does
// not exist yet.
func fsAt(path string) string {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		if err := unix.Statfs(filepath.Dir(path), &sfs); err != nil {
			return "the file system"
		}
	}
	return fsName(int64(sfs.Type))
}

func modeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFIFO:
		return "named pipe"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFDIR:
		return "directory"
	}
	return fmt.Sprintf("file of mode %#o", mode&unix.S_IFMT)
}

// Close closes the descriptor. A second Close returns nil.
func (f *File) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := unix.Close(f.Fd); err != nil {
		return fmt.Errorf("blockfile: close %s: %w", f.Path, err)
	}
	return nil
}
