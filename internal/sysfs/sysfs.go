package sysfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FS reads sysfs and procfs files below a root directory.
// The zero value reads the real system, as New("/") does.
type FS struct {
	root string // "" means "/"
}

// New returns an FS rooted at root. "" and "/" mean the running system;
// anything else is typically a fake tree written by package sysfstest.
func New(root string) FS {
	if root == "" {
		return FS{}
	}
	root = filepath.Clean(root) // "//" and "/tmp/x/" too
	if root == "/" {
		return FS{}
	}
	return FS{root: root}
}

// Root returns the root directory, "/" for the running system.
func (fs FS) Root() string {
	if fs.root == "" {
		return "/"
	}
	return fs.root
}

// Path joins elem below the root: with root "/tmp/x",
// Path("sys/devices/system/cpu", "online") is "/tmp/x/sys/devices/system/cpu/online".
// A leading slash in elem is ignored, so "/sys/..." stays under the root.
func (fs FS) Path(elem ...string) string {
	return filepath.Join(append([]string{fs.Root()}, elem...)...)
}

// ReadString returns the content of the file at rel, with surrounding
// white space (sysfs's trailing newline) removed. A missing file yields an
// error that matches errors.Is(err, fs.ErrNotExist).
func (fs FS) ReadString(rel string) (string, error) {
	b, err := os.ReadFile(fs.Path(rel))
	if err != nil {
		return "", err // *PathError: names the operation and the full path
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadInt reads a file holding one integer, such as
// "sys/devices/system/cpu/cpu0/topology/core_id". The value is decimal,
// possibly negative; a "0x" prefix marks hexadecimal, as in PCI IDs
// ("0x15b3"). A leading zero does not mean octal.
func (fs FS) ReadInt(rel string) (int64, error) {
	s, err := fs.ReadString(rel)
	if err != nil {
		return 0, err
	}
	n, err := parseInt(s)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", fs.Path(rel), err)
	}
	return n, nil
}

func parseInt(s string) (int64, error) {
	neg := false
	digits := s
	if strings.HasPrefix(digits, "-") {
		neg, digits = true, digits[1:]
	}
	base := 10
	if h, ok := strings.CutPrefix(digits, "0x"); ok {
		base, digits = 16, h
	} else if h, ok := strings.CutPrefix(digits, "0X"); ok {
		base, digits = 16, h
	}
	// ParseUint refuses signs and, with an explicit base, underscores; the
	// sign was taken above so "--1" and "-+1" fail here.
	u, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		return 0, fmt.Errorf("parse integer %q: %w", s, errorCause(err))
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("parse integer %q: %w", s, strconv.ErrRange)
		}
		return -int64(u), nil
	}
	if u > 1<<63-1 {
		return 0, fmt.Errorf("parse integer %q: %w", s, strconv.ErrRange)
	}
	return int64(u), nil
}

// errorCause strips strconv's *NumError, whose text repeats the input we
// already quote.
func errorCause(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}

// ReadCPUList reads a file in cpulist format, such as
// "sys/devices/system/node/node0/cpulist", and parses it with ParseCPUList.
func (fs FS) ReadCPUList(rel string) ([]int, error) {
	s, err := fs.ReadString(rel)
	if err != nil {
		return nil, err
	}
	cpus, err := ParseCPUList(s)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", fs.Path(rel), err)
	}
	return cpus, nil
}
