package hugemem

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// HugeInfo is the kernel's 2 MiB hugepage pool, as sysfs reports it.
type HugeInfo struct {
	Total int // nr_hugepages: pages reserved in the pool
	Free  int // free_hugepages: pages not yet mapped by anyone
}

// hugeDir is the sysfs directory of the 2 MiB hugepage pool.
const hugeDir = "sys/kernel/mm/hugepages/hugepages-2048kB"

// Hugepages reads the 2 MiB hugepage counters under root ("" means "/"), so
// that tests and `usrpt tune` can point it at another tree. A kernel without
// hugetlbfs has no such directory: the error then wraps fs.ErrNotExist.
func Hugepages(root string) (HugeInfo, error) {
	if root == "" {
		root = "/"
	}
	dir := filepath.Join(root, hugeDir)
	var info HugeInfo
	for _, f := range []struct {
		name string
		v    *int
	}{
		{"nr_hugepages", &info.Total},
		{"free_hugepages", &info.Free},
	} {
		n, err := readCount(filepath.Join(dir, f.name))
		if err != nil {
			return HugeInfo{}, err
		}
		*f.v = n
	}
	return info, nil
}

func readCount(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("hugemem: hugepages: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("hugemem: hugepages: %s: bad count %q", path, strings.TrimSpace(string(b)))
	}
	return n, nil
}

// HugepagesFor is the number of 2 MiB hugepages that size bytes occupy.
func HugepagesFor(size int) int {
	if size <= 0 {
		return 0
	}
	return (size-1)/HugePageSize + 1
}
