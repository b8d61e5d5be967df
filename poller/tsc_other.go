//go:build !amd64

package poller

func rdtsc() uint64 { return 0 }

const haveTSC = false
