package blockfile

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/dustin/go-humanize"

	"github.com/usrpt/usrpt/internal/sysfs"
)

var (
	// ErrNotSupported is wrapped by Open's error on operating systems other
	// than Linux.
	ErrNotSupported = errors.New("not supported on this operating system")

	// ErrDirectUnsupported is wrapped by Open's error when the file system
	// refuses O_DIRECT (open returns EINVAL, which the error also wraps);
	// opening with Direct false avoids it.
	ErrDirectUnsupported = errors.New("file system refuses O_DIRECT")
)

// directError is Open's answer to a file system without O_DIRECT: it says
// the fix, and matches both ErrDirectUnsupported and EINVAL.
type directError struct {
	fs, path string
	errno    error
}

func (e *directError) Error() string {
	return "blockfile: O_DIRECT is not supported by " + e.fs + " at " + e.path +
		": use --direct=0 (direct = false in the config) to go through the page cache"
}

func (e *directError) Unwrap() []error { return []error{ErrDirectUnsupported, e.errno} }

// Config says what to open and how.
type Config struct {
	// Path is a regular file or a block device node.
	Path string
	// Direct opens with O_DIRECT, bypassing the page cache. Callers pass
	// true unless the user turned it off (--direct=0).
	Direct bool
	// ReadOnly opens O_RDONLY; otherwise O_RDWR (and O_EXCL for block
	// devices).
	ReadOnly bool
	// Create makes Path as a regular file if it does not exist, and extends
	// a regular file that is shorter than SizeBytes. It never shrinks one.
	Create bool
	// SizeBytes is the size to use. 0 uses the existing size (the file's,
	// or the device's). Otherwise it must be a whole number of blocks, and
	// a file or device larger than it is used only up to it; a shorter one
	// is an error unless Create extends the file.
	SizeBytes int64
	// SysRoot is the root under which /sys is read ("" or "/" for the
	// running system; tests point it at a fake tree).
	SysRoot string
}

// Kind is what a path turned out to be.
type Kind uint8

const (
	Regular Kind = iota + 1 // a regular file
	Block                   // a block device node
)

func (k Kind) String() string {
	switch k {
	case Regular:
		return "regular file"
	case Block:
		return "block device"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// File is an open file or block device.
type File struct {
	Fd   int    // the open descriptor, owned by File until Close
	Path string // as given in Config
	Kind Kind
	// FS is the file system type of a regular file ("ext4", "xfs",
	// "tmpfs", ...) from its statfs magic; "" for block devices.
	FS string
	// Device is the kernel's name of the block device ("zram0", "loop1",
	// "nvme0n1", "vda1"): the device itself for Block, and the device the
	// file system sits on for Regular when there is one (tmpfs, overlay and
	// btrfs have none), else "".
	Device string
	// SizeBytes is the usable size: Config.SizeBytes if given, else the
	// file's size or the device's (BLKGETSIZE64).
	SizeBytes int64
	// BlockSize is the logical block size in bytes: BLKSSZGET for devices;
	// for regular files the O_DIRECT offset alignment the kernel reports
	// (statx STATX_DIOALIGN), else the logical block size of Device, else
	// 512.
	BlockSize int
	// MemAlign is the buffer address alignment O_DIRECT needs: statx's
	// dio_mem_align when reported, else BlockSize. 1 without Direct.
	MemAlign int
	Direct   bool // opened O_DIRECT
	ReadOnly bool // opened O_RDONLY
	// Rotational is sysfs queue/rotational of Device, false when unknown.
	Rotational bool
	// CanDiscard says whether discard can work: for Block, queue/
	// discard_max_bytes > 0; for Regular, true (hole punching; a file
	// system without it fails the request with EOPNOTSUPP).
	CanDiscard bool

	dev         devInfo
	sys         sysfs.FS
	noZeroRange atomic.Bool // fallocate(ZERO_RANGE) said EOPNOTSUPP once
	closed      atomic.Bool
}

// devInfo is what sysfs says about a block device (the File's own, or the
// one under its file system).
type devInfo struct {
	major, minor uint32
	known        bool   // /sys/dev/block/MAJ:MIN exists
	name         string // DEVNAME from uevent
	queue        string // root-relative queue directory ("sys/block/vda/queue")
	rotational   bool
	discard      bool   // discard_max_bytes > 0
	nowait       string // queue/nowait when the kernel has it, else ""
	logicalBlock int    // queue/logical_block_size, 0 when unknown
}

// readDevInfo looks up block device major:minor under sys. A device sysfs
// does not know (a file system with an anonymous device such as tmpfs or
// btrfs) comes back with known false and no error.
func readDevInfo(sys sysfs.FS, major, minor uint32) devInfo {
	d := devInfo{major: major, minor: minor}
	dir := fmt.Sprintf("sys/dev/block/%d:%d", major, minor)
	uevent, err := sys.ReadString(dir + "/uevent")
	if err != nil {
		return d
	}
	d.known = true
	for line := range strings.SplitSeq(uevent, "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			d.name = v
		}
	}
	// A partition has no queue of its own; its disk's is the parent
	// directory of the partition's sysfs directory
	// (/sys/dev/block/254:1 -> ../../devices/.../block/vda/vda1). The link is
	// resolved by hand because sysfs.FS.Path cleans "..", which would skip
	// it.
	d.queue = dir + "/queue"
	if _, err := sys.ReadString(dir + "/partition"); err == nil {
		if disk := parentDisk(sys, dir); disk != "" {
			d.queue = "sys/block/" + disk + "/queue"
		}
	}
	if v, err := sys.ReadString(d.queue + "/rotational"); err == nil {
		d.rotational = v == "1"
	}
	if v, err := sys.ReadInt(d.queue + "/discard_max_bytes"); err == nil {
		d.discard = v > 0
	}
	if v, err := sys.ReadInt(d.queue + "/logical_block_size"); err == nil && v > 0 && v <= 1<<16 {
		d.logicalBlock = int(v)
	}
	if v, err := sys.ReadString(d.queue + "/nowait"); err == nil {
		d.nowait = v
	}
	return d
}

// WorkerPunts reports whether io_uring is known to hand every request on this
// target to its io-wq kernel workers instead of issuing it inline, and why.
// Such a target gains nothing from io_uring's asynchrony and pays a thread
// hand-off per request: on zram and tmpfs, psync beats io_uring about 3x at
// queue depth 1. `--engine auto` picks psync when this is true.
//
// It rests on facts the kernel exposes: tmpfs and ramfs files (page-cache
// copies; their read_iter may sleep, so io_uring never tries them inline),
// zram devices (the driver does not declare NOWAIT support, so a REQ_NOWAIT
// bio fails with EAGAIN and is retried in a worker), and any device whose
// queue/nowait reads 0 on kernels that expose that file.
func (f *File) WorkerPunts() (bool, string) {
	return workerPunts(f.FS, f.dev)
}

func workerPunts(fsName string, d devInfo) (bool, string) {
	switch fsName {
	case "tmpfs", "ramfs":
		return true, fsName + " files are page-cache copies without NOWAIT support: io_uring hands every request to an io-wq kernel worker"
	}
	if strings.HasPrefix(d.name, "zram") {
		return true, d.name + ": the zram driver does not support NOWAIT: io_uring hands every request to an io-wq kernel worker"
	}
	if d.nowait == "0" {
		return true, d.name + ": queue/nowait is 0: io_uring hands every request to an io-wq kernel worker"
	}
	return false, ""
}

// parentDisk returns the disk name of the partition whose sysfs directory is
// the root-relative symlink dir, or "".
func parentDisk(sys sysfs.FS, dir string) string {
	target, err := os.Readlink(sys.Path(dir))
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.TrimRight(target, "/"), "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-2]
}

// fsNames maps statfs f_type magics (linux/magic.h) to the names mount uses.
var fsNames = map[int64]string{
	0xef53:     "ext4", // shared by ext2, ext3 and ext4; today's kernels mount all three with the ext4 driver
	0x58465342: "xfs",
	0x9123683e: "btrfs",
	0x01021994: "tmpfs",
	0x858458f6: "ramfs",
	0x2fc12fc1: "zfs",
	0xf2f52010: "f2fs",
	0x794c7630: "overlay",
	0x6969:     "nfs",
	0xff534d42: "cifs",
	0xfe534d42: "smb2",
	0x65735546: "fuse",
	0x9fa0:     "proc",
	0x62656572: "sysfs",
	0x1cd1:     "devpts",
	0x64626720: "debugfs",
	0x4d44:     "vfat",
	0x2011bab0: "exfat",
	0x5346544e: "ntfs",
	0x7366746e: "ntfs3",
	0x3153464a: "jfs",
	0x52654973: "reiserfs",
	0x73717368: "squashfs",
	0x28cd3d45: "cramfs",
	0x9660:     "iso9660",
	0x01161970: "gfs2",
	0x7461636f: "ocfs2",
	0x00c36400: "ceph",
	0x6165676c: "pstore",
	0xca451a4e: "bcachefs",
	0x01021997: "9p",
	0xf15f:     "ecryptfs",
	0x73757245: "coda",
	0x5a3c69f0: "aafs",
	0xde5e81e4: "efivarfs",
	0x27e0eb:   "cgroup",
	0x63677270: "cgroup2",
	0x00000187: "autofs",
	0x42465331: "befs",
	0x958458f6: "hugetlbfs",
}

// fsName names a statfs f_type, or gives its magic in hex.
func fsName(magic int64) string {
	if n, ok := fsNames[magic&0xffffffff]; ok {
		return n
	}
	return fmt.Sprintf("fs-0x%x", uint64(magic)&0xffffffff)
}

// String describes f for logs and reports, e.g. "/srv/lun0.img: regular file
// on ext4 (vda), 1.0 GiB, 512-byte blocks, direct, rotational".
func (f *File) String() string {
	var b strings.Builder
	b.WriteString(f.Path + ": " + f.Kind.String())
	switch {
	case f.FS != "" && f.Device != "":
		b.WriteString(" on " + f.FS + " (" + f.Device + ")")
	case f.FS != "":
		b.WriteString(" on " + f.FS)
	case f.Device != "":
		b.WriteString(" " + f.Device)
	}
	fmt.Fprintf(&b, ", %s, %d-byte blocks", humanize.IBytes(uint64(max(f.SizeBytes, 0))), f.BlockSize)
	if f.Direct {
		fmt.Fprintf(&b, ", direct (memory aligned to %d)", f.MemAlign)
	}
	if f.ReadOnly {
		b.WriteString(", read-only")
	}
	if f.Rotational {
		b.WriteString(", rotational")
	}
	return b.String()
}
