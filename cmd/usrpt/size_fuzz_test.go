package main

import (
	"strings"
	"testing"
)

func TestParseSizeForms(t *testing.T) {
	for in, want := range map[string]uint64{
		"4096": 4096, "4k": 4096, "4KB": 4096, "4KiB": 4096, "1g": 1 << 30, "1.5g": 3 << 29, "512b": 512, " 2m ": 2 << 20,
	} {
		got, err := parseSize("--bs", in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5", "k", "4q", "-4k", "4kk", "."} {
		if _, err := parseSize("--bs", in); err == nil || !strings.Contains(err.Error(), "--bs") {
			t.Errorf("parseSize(%q) error %v, want one naming the flag", in, err)
		}
	}
}

// FuzzParseSize: any flag text gives a size or an error naming the flag,
// never a panic.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4k", "1.5g", "512b", "1.5", "", "k", "99999999999999999999p", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseSize("--size", s); err != nil && !strings.Contains(err.Error(), "--size") {
			t.Fatalf("error %v does not name the flag", err)
		}
	})
}
