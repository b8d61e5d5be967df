package uring

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Probe reports whether io_uring can be used here: nil if io_uring_setup
// works, or an error wrapping ErrNotSupported (and the errno) that says why
// not. `--engine auto` uses it to pick between uring and psync.
func Probe() error {
	var p params
	fd, errno := ioUringSetup(1, &p)
	if errno != 0 {
		err := setupError(errno)
		if !errors.Is(err, ErrNotSupported) {
			err = fmt.Errorf("%w: %w", ErrNotSupported, err)
		}
		return err
	}
	_ = unix.Close(fd)
	return nil
}

// disabledSysctl is where Linux 6.6+ lets an administrator turn io_uring off.
const disabledSysctl = "/proc/sys/kernel/io_uring_disabled"

// setupError explains an io_uring_setup failure. The errors that mean
// io_uring is unusable here wrap ErrNotSupported; others (EINVAL for a bad
// SQPOLL CPU, EMFILE) do not.
func setupError(errno syscall.Errno) error {
	const op = "io_uring_setup"
	switch errno {
	case unix.ENOSYS:
		return fmt.Errorf("%w: %s: %w (the kernel is built without CONFIG_IO_URING, or a seccomp filter hides it)", ErrNotSupported, op, errno)
	case unix.EPERM:
		b, err := os.ReadFile(disabledSysctl)
		v := strings.TrimSpace(string(b))
		switch {
		case err != nil:
			return fmt.Errorf("%w: %s: %w (%s unreadable: %v; a seccomp filter such as a container runtime's default profile is the usual cause)", ErrNotSupported, op, errno, disabledSysctl, err)
		case v == "2":
			return fmt.Errorf("%w: %s: %w (disabled for every process: sysctl kernel.io_uring_disabled=2)", ErrNotSupported, op, errno)
		case v == "1":
			return fmt.Errorf("%w: %s: %w (sysctl kernel.io_uring_disabled=1 allows only CAP_SYS_ADMIN and members of group kernel.io_uring_group)", ErrNotSupported, op, errno)
		default:
			return fmt.Errorf("%w: %s: %w (kernel.io_uring_disabled=%s allows it, so a seccomp filter, e.g. a container runtime's default profile, refuses it)", ErrNotSupported, op, errno, v)
		}
	case unix.ENOMEM:
		return fmt.Errorf("%w: %s: %w (kernels before 5.12 charge rings to RLIMIT_MEMLOCK: raise ulimit -l)", ErrNotSupported, op, errno)
	}
	return fmt.Errorf("%s: %w", op, errno)
}
