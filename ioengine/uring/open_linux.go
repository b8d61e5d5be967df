package uring

// A minimal opener for files and block devices. ioengine/blockfile will hold
// the shared one; this file is meant to be swapped for it.

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

type fileKind uint8

const (
	kindRegular fileKind = iota
	kindBlock
)

func (k fileKind) String() string {
	if k == kindBlock {
		return "block"
	}
	return "regular"
}

// backing is an opened file or block device.
type backing struct {
	fd        int
	kind      fileKind
	sizeBytes int64  // the device's capacity (a multiple of blockSize)
	fileBytes int64  // the file's length (regular files)
	blockSize int    // logical block size
	rdev      uint64 // device number (block devices)
}

// minBlock is the smallest logical block: the sector.
const minBlock = 512

// openBacking opens cfg.Path as cfg asks and sizes it.
func openBacking(cfg Config) (backing, error) {
	flags := unix.O_CLOEXEC
	if cfg.ReadOnly {
		flags |= unix.O_RDONLY
	} else {
		flags |= unix.O_RDWR
		if cfg.Create {
			flags |= unix.O_CREAT
		}
	}
	if cfg.Direct {
		flags |= unix.O_DIRECT
	}
	fd, err := unix.Open(cfg.Path, flags, 0o644)
	if err != nil {
		if cfg.Direct && errors.Is(err, unix.EINVAL) {
			// Tell a refusal of O_DIRECT from other EINVALs by trying
			// without it.
			if fd2, err2 := unix.Open(cfg.Path, flags&^unix.O_DIRECT, 0); err2 == nil {
				_ = unix.Close(fd2)
				return backing{}, fmt.Errorf("open %s: %w (EINVAL): open it with direct = false (--direct=0) to use the page cache", cfg.Path, ErrDirectUnsupported)
			}
		}
		return backing{}, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	b := backing{fd: fd}
	if err := b.size(cfg); err != nil {
		_ = unix.Close(fd)
		return backing{}, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	return b, nil
}

func (b *backing) size(cfg Config) error {
	var st unix.Stat_t
	if err := unix.Fstat(b.fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	var have int64
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		b.kind, b.rdev = kindBlock, uint64(st.Rdev)
		n, err := ioctlBlkGetSize64(b.fd)
		if err != nil {
			return fmt.Errorf("ioctl BLKGETSIZE64: %w", err)
		}
		bs, err := unix.IoctlGetUint32(b.fd, unix.BLKSSZGET)
		if err != nil {
			return fmt.Errorf("ioctl BLKSSZGET: %w", err)
		}
		have, b.blockSize = int64(n), int(bs)
	case unix.S_IFREG:
		b.kind, b.fileBytes = kindRegular, st.Size
		b.blockSize = minBlock
		if cfg.Direct {
			// STATX_DIOALIGN (6.1): the file offset alignment O_DIRECT
			// needs, which is the filesystem's (or device's) block.
			var stx unix.Statx_t
			err := unix.Statx(b.fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx)
			if err == nil && stx.Mask&unix.STATX_DIOALIGN != 0 && stx.Dio_offset_align > minBlock {
				b.blockSize = int(stx.Dio_offset_align)
			}
		}
		have = st.Size
		if cfg.SizeBytes > have && cfg.Create && !cfg.ReadOnly {
			if err := unix.Ftruncate(b.fd, cfg.SizeBytes); err != nil {
				return fmt.Errorf("extend to %d bytes: %w", cfg.SizeBytes, err)
			}
			have, b.fileBytes = cfg.SizeBytes, cfg.SizeBytes
		}
	default:
		return fmt.Errorf("not a regular file or block device (mode %#o)", st.Mode&unix.S_IFMT)
	}
	if b.blockSize < minBlock || b.blockSize&(b.blockSize-1) != 0 {
		return fmt.Errorf("logical block size %d is not a power of two >= %d", b.blockSize, minBlock)
	}
	bs := int64(b.blockSize)
	switch {
	case cfg.SizeBytes < 0:
		return fmt.Errorf("size %d is negative", cfg.SizeBytes)
	case cfg.SizeBytes == 0:
		b.sizeBytes = have / bs * bs
		if b.sizeBytes == 0 {
			return fmt.Errorf("%d bytes is less than one %d-byte block: give a size (and create) to extend it", have, bs)
		}
	case cfg.SizeBytes%bs != 0:
		return fmt.Errorf("size %d is not a multiple of the %d-byte logical block", cfg.SizeBytes, bs)
	case cfg.SizeBytes > have:
		if b.kind == kindRegular {
			return fmt.Errorf("file is %d bytes, smaller than size %d: set create to extend it", have, cfg.SizeBytes)
		}
		return fmt.Errorf("device is %d bytes, smaller than size %d", have, cfg.SizeBytes)
	default:
		b.sizeBytes = cfg.SizeBytes
	}
	return nil
}
