package hugemem

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func fakeHugeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, hugeDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestHugepages(t *testing.T) {
	root := fakeHugeTree(t, map[string]string{"nr_hugepages": "64\n", "free_hugepages": "40\n"})
	got, err := Hugepages(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := (HugeInfo{Total: 64, Free: 40}); got != want {
		t.Errorf("Hugepages = %+v, want %+v", got, want)
	}
}

func TestHugepagesBad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"missing free", map[string]string{"nr_hugepages": "1\n"}},
		{"not a number", map[string]string{"nr_hugepages": "lots\n", "free_hugepages": "0\n"}},
		{"negative", map[string]string{"nr_hugepages": "1\n", "free_hugepages": "-1\n"}},
		{"empty", map[string]string{"nr_hugepages": "", "free_hugepages": "0\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := Hugepages(fakeHugeTree(t, tt.files)); err == nil {
				t.Errorf("Hugepages = %+v, want an error", got)
			}
		})
	}
}

func TestHugepagesNoHugetlb(t *testing.T) {
	_, err := Hugepages(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Hugepages(empty tree) = %v, want fs.ErrNotExist", err)
	}
}

func TestHugepagesHost(t *testing.T) {
	info, err := Hugepages("")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("kernel has no 2 MiB hugetlb pool")
	}
	if err != nil {
		t.Fatal(err)
	}
	if info.Free > info.Total {
		t.Errorf("host hugepages %+v: more free than total", info)
	}
}

func TestHugepagesFor(t *testing.T) {
	for _, tt := range []struct{ size, want int }{
		{-1, 0}, {0, 0}, {1, 1}, {HugePageSize, 1}, {HugePageSize + 1, 2}, {64 << 20, 32},
	} {
		if got := HugepagesFor(tt.size); got != tt.want {
			t.Errorf("HugepagesFor(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}
