package uring

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
)

// benchFile is a 64 MiB file of data (not holes, which O_DIRECT reads
// without touching the disk), written once per test binary run.
var benchFile struct {
	once sync.Once
	dir  string
	path string
	err  error
}

const benchSize = 64 << 20

func TestMain(m *testing.M) {
	code := m.Run()
	if benchFile.dir != "" {
		_ = os.RemoveAll(benchFile.dir)
	}
	os.Exit(code)
}

func benchPath(b *testing.B) string {
	benchFile.once.Do(func() {
		benchFile.dir, benchFile.err = os.MkdirTemp("", "uring-bench")
		if benchFile.err != nil {
			return
		}
		benchFile.path = filepath.Join(benchFile.dir, "disk")
		buf := make([]byte, 1<<20)
		f, err := os.Create(benchFile.path)
		if err != nil {
			benchFile.err = err
			return
		}
		for i := range benchSize / len(buf) {
			enginetest.Fill(buf, uint64(i))
			if _, err := f.Write(buf); err != nil {
				benchFile.err = err
				break
			}
		}
		if err := f.Sync(); benchFile.err == nil {
			benchFile.err = err
		}
		if err := f.Close(); benchFile.err == nil {
			benchFile.err = err
		}
	})
	if benchFile.err != nil {
		b.Fatal(benchFile.err)
	}
	return benchFile.path
}

// BenchmarkRead4K reads random 4 KiB blocks of a 64 MiB O_DIRECT file
// through registered buffers, at queue depth 1 and 32, on a locked thread
// as a reactor would (SINGLE_ISSUER|DEFER_TASKRUN where the kernel has it).
// One op is one I/O; IOPS is reported.
func BenchmarkRead4K(b *testing.B) {
	for _, depth := range []int{1, 32} {
		b.Run("QD"+strconv.Itoa(depth), func(b *testing.B) {
			runtime.LockOSThread()
			b.Cleanup(runtime.UnlockOSThread) // after the queue's Close
			path := benchPath(b)
			d := openFile(b, Config{Path: path, Direct: true}, benchSize)
			enginetest.Bench(b, d, ioengine.OpRead, 4096, depth)
		})
	}
}

// BenchmarkRead4KCached is BenchmarkRead4K through the page cache (the
// file's pages are resident after the first pass), so the disk drops out
// and what is left is the engine's and the kernel's per-I/O cost.
func BenchmarkRead4KCached(b *testing.B) {
	for _, depth := range []int{1, 32} {
		b.Run("QD"+strconv.Itoa(depth), func(b *testing.B) {
			runtime.LockOSThread()
			b.Cleanup(runtime.UnlockOSThread)
			d := openFile(b, Config{Path: benchPath(b)}, benchSize)
			enginetest.Bench(b, d, ioengine.OpRead, 4096, depth)
		})
	}
}
