package engines_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/ioengine/engines"
	"github.com/usrpt/usrpt/ioengine/uring"
)

func TestOpenMemoryEngines(t *testing.T) {
	for _, name := range []string{"null", "mem", ""} {
		d, choice, err := engines.Open(engines.Config{Engine: name, SizeBytes: 8 << 20})
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		want := name
		if want == "" {
			want = "null" // no path: nothing to choose between
		}
		if info := d.Info(); info.Engine != want || info.SizeBytes != 8<<20 || info.BlockSize != 512 || choice.Engine != want {
			t.Errorf("%q: info %+v choice %+v", name, info, choice)
		}
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  engines.Config
		want string
	}{
		{engines.Config{Engine: "uring"}, "needs a file"},
		{engines.Config{Engine: "auto"}, "needs a file"},
		{engines.Config{Engine: "mem", Path: "/tmp/x", SizeBytes: 1 << 20}, "serves memory"},
		{engines.Config{Engine: "spdk", Path: "/tmp/x"}, "unknown engine"},
		{engines.Config{Engine: "psync", Path: "/nonexistent/dir/file", Direct: true}, "/nonexistent/dir/file"},
	} {
		_, _, err := engines.Open(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.cfg, err, tc.want)
		}
	}
}

func TestAutoPicksURingForAnOrdinaryFile(t *testing.T) {
	if err := uring.Probe(); err != nil {
		t.Skip("io_uring unavailable:", err)
	}
	path := filepath.Join(t.TempDir(), "disk")
	d, choice, err := engines.Open(engines.Config{Engine: "auto", Path: path, Create: true, SizeBytes: 4 << 20, Direct: true})
	if err != nil {
		t.Skip("cannot open a file with O_DIRECT here:", err)
	}
	defer d.Close()
	if choice.Engine != "uring" || d.Info().Engine != "uring" || choice.Reason == "" {
		t.Fatalf("auto on %s chose %+v (info %+v)", path, choice, d.Info())
	}
	t.Logf("auto: %s (%s)", choice.Engine, choice.Reason)
}

// On tmpfs io_uring hands every request to a kernel worker (no NOWAIT), where
// pread/pwrite threads are faster: auto must say so and use psync.
func TestAutoPicksPsyncOnTmpfs(t *testing.T) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		t.Skip("no /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "usrpt-engines-")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(dir)
	d, choice, err := engines.Open(engines.Config{Engine: "auto", Path: filepath.Join(dir, "disk"), Create: true, SizeBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if choice.Engine != "psync" || d.Info().Engine != "psync" || !strings.Contains(choice.Reason, "tmpfs") {
		t.Fatalf("auto on tmpfs chose %+v", choice)
	}
	t.Logf("auto: %s (%s)", choice.Engine, choice.Reason)
}
