package psync_test

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
	"github.com/usrpt/usrpt/ioengine/blockfile/blockfiletest"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/psync"
)

const benchBytes = 64 << 20

// benchFile makes a 64 MiB file of data (not holes, which file systems
// answer without reading anything) in dir, or in b.TempDir() for "".
func benchFile(b *testing.B, dir string) string {
	b.Helper()
	p := blockfiletest.File(b, dir, "bench.img", benchBytes)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	enginetest.Fill(chunk, 1)
	for off := int64(0); off < benchBytes; off += int64(len(chunk)) {
		if _, err := f.WriteAt(chunk, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchEnv names a file or block device to benchmark as well, read-only
// (USRPT_PSYNC_BENCH_PATH=/dev/zram0): its first 64 MiB should hold data.
const benchEnv = "USRPT_PSYNC_BENCH_PATH"

func benchTargets(b *testing.B) map[string]string {
	targets := map[string]string{"tempdir": benchFile(b, "")}
	if p := os.Getenv(benchEnv); p != "" {
		targets["env"] = p
	}
	if _, err := os.Stat("/dev/shm"); err == nil {
		var sfs unix.Statfs_t
		if unix.Statfs("/dev/shm", &sfs) == nil && sfs.Type == unix.TMPFS_MAGIC {
			dir, err := os.MkdirTemp("/dev/shm", "usrpt-bench-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			targets["tmpfs"] = benchFile(b, dir)
		}
	}
	return targets
}

// BenchmarkRead4K is 4 KiB O_DIRECT random reads kept QD deep over 64 MiB,
// on tmpfs (/dev/shm, a page-cache copy, where io_uring punts every request),
// on a file in b.TempDir(), and on $USRPT_PSYNC_BENCH_PATH when set.
func BenchmarkRead4K(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"tmpfs", "tempdir", "env"} {
		path, ok := targets[name]
		if !ok {
			continue
		}
		for _, workers := range []int{1, 2} {
			for _, depth := range []int{1, 32} {
				b.Run(fmt.Sprintf("%s/workers=%d/QD%d", name, workers, depth), func(b *testing.B) {
					d, err := psync.Open(psync.Config{Config: blockfile.Config{Path: path, Direct: true, ReadOnly: true, SizeBytes: benchBytes}, Workers: workers})
					if err != nil {
						b.Fatal(err)
					}
					defer d.Close()
					enginetest.Bench(b, d, ioengine.OpRead, 4096, depth)
				})
			}
		}
	}
}

// BenchmarkRead4KWaitFD is BenchmarkRead4K at QD1 on a queue whose owner
// asked for WaitFD, busy-polling anyway: the cost of keeping the eventfd
// honest (a write per completion after an empty Poll, a read per drain).
func BenchmarkRead4KWaitFD(b *testing.B) {
	targets := benchTargets(b)
	path, ok := targets["tmpfs"]
	if !ok {
		b.Skip("no tmpfs")
	}
	for _, armed := range []bool{false, true} {
		b.Run(fmt.Sprint("waitfd=", armed), func(b *testing.B) {
			d, err := psync.Open(psync.Config{Config: blockfile.Config{Path: path, Direct: true}, Workers: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			bufs := enginetest.NewBuffers(b, 1, 4096)
			q := enginetest.NewQueue(b, d, 1, bufs)
			if armed {
				q.WaitFD()
			}
			r := []*ioengine.Request{{Op: ioengine.OpRead, Buf: bufs.Bufs[0]}}
			out := make([]*ioengine.Request, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r[0].Offset = int64(i*4096) % benchBytes
				q.Submit(r)
				for q.Poll(out) == 0 {
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
		})
	}
}

// BenchmarkPreadFloor is pread in a loop on the caller's thread, with no
// engine: the floor the workers' hand-off adds to.
func BenchmarkPreadFloor(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"tmpfs", "tempdir", "env"} {
		path, ok := targets[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fd)
			buf := enginetest.NewBuffers(b, 1, 4096).Bufs[0]
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := unix.Pread(fd, buf, int64(i*7*4096)%benchBytes); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
		})
	}
}
