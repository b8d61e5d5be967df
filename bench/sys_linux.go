package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// rusage is the process's CPU time, in nanoseconds.
type rusage struct{ utime, stime int64 }

func (r rusage) total() int64 { return r.utime + r.stime }

// getrusage reads the whole process's user and system CPU time (every
// thread: reactors, the runtime, engine workers).
func getrusage() (rusage, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return rusage{}, fmt.Errorf("bench: getrusage: %w", err)
	}
	return rusage{utime: unix.TimevalToNsec(ru.Utime), stime: unix.TimevalToNsec(ru.Stime)}, nil
}

// kernel is uname's system, release, version and machine.
func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%s %s %s %s", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]),
		unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:]))
}
