//go:build !linux

package bench

import (
	"errors"
	"runtime"
)

type rusage struct{ utime, stime int64 }

func (r rusage) total() int64 { return r.utime + r.stime }

func getrusage() (rusage, error) {
	return rusage{}, errors.New("bench: getrusage: not supported on " + runtime.GOOS)
}

func kernel() string { return runtime.GOOS }
