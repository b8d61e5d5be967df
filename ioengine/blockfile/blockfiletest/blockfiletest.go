package blockfiletest

import (
	"os"
	"path/filepath"
	"testing"
)

// File creates a sparse file of sizeBytes named name in dir (t.TempDir() when
// dir is "") and returns its path. It is removed when the test ends.
func File(t testing.TB, dir, name string, sizeBytes int64) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("blockfiletest: %v", err)
	}
	defer f.Close()
	if err := f.Truncate(sizeBytes); err != nil {
		t.Fatalf("blockfiletest: %v", err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}
