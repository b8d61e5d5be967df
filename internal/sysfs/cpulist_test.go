package sysfs_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"  \n", nil},
		{"5", []int{5}},
		{"0\n", []int{0}},
		{"0,2", []int{0, 2}},
		{"0-3", []int{0, 1, 2, 3}},
		{"0-3,8-11", []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{"8-11,0-3", []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{"3,0-3,2", []int{0, 1, 2, 3}},       // deduplicated
		{"0-2,3-4", []int{0, 1, 2, 3, 4}},    // adjacent ranges merge
		{"0-5,2-3", []int{0, 1, 2, 3, 4, 5}}, // nested range
		{"7-7", []int{7}},                    // one-CPU range
		{" 0 - 1 , 4 ", []int{0, 1, 4}},      // white space
		{"007", []int{7}},                    // leading zeros are decimal
		{"1048576", []int{sysfs.MaxCPUID}},   // the limit itself
		{"1048575-1048576", []int{1<<20 - 1, 1 << 20}},
	}
	for _, tt := range tests {
		got, err := sysfs.ParseCPUList(tt.in)
		if err != nil {
			t.Errorf("ParseCPUList(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseCPUList(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseCPUListErrors(t *testing.T) {
	tests := []struct {
		in, token, reason string
	}{
		{"0,,2", "", "empty entry"},
		{"0,", "", "empty entry"},
		{",0", "", "empty entry"},
		{"-1", "-1", "negative"},
		{"0--1", "0--1", "negative CPU number"},
		{"3-1", "3-1", "reversed range"},
		{"0-", "0-", "missing range end"},
		{"0-3-5", "0-3-5", "not a decimal"},
		{"x", "x", `"x" is not a decimal CPU number`},
		{"0,a-3", "a-3", "not a decimal"},
		{"0x3", "0x3", "not a decimal"},
		{"+1", "+1", "not a decimal"},
		{"1.5", "1.5", "not a decimal"},
		{"0-15:2/4", "0-15:2/4", "not a decimal"}, // kernel stride syntax
		{"1048577", "1048577", "above the limit"},
		{"0-4000000000", "0-4000000000", "above the limit"},
		{"99999999999999999999999", "99999999999999999999999", "above the limit"}, // uint64 overflow
		{"0 1", "0 1", "not a decimal"},
	}
	for _, tt := range tests {
		got, err := sysfs.ParseCPUList(tt.in)
		var le *sysfs.CPUListError
		if !errors.As(err, &le) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want *CPUListError", tt.in, got, err)
			continue
		}
		if le.List != tt.in || le.Token != tt.token || !strings.Contains(le.Reason, tt.reason) {
			t.Errorf("ParseCPUList(%q) error = %+v; want token %q, reason containing %q", tt.in, *le, tt.token, tt.reason)
		}
		if !strings.Contains(err.Error(), `"`+tt.token+`"`) {
			t.Errorf("ParseCPUList(%q) error %q does not name the token %q", tt.in, err, tt.token)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{}, ""},
		{[]int{5}, "5"},
		{[]int{0, 1}, "0-1"}, // the kernel prints pairs as ranges
		{[]int{0, 2}, "0,2"},
		{[]int{0, 1, 2, 3, 8}, "0-3,8"},
		{[]int{8, 3, 2, 1, 0, 2}, "0-3,8"}, // unsorted, duplicate
		{[]int{0, 1, 2, 3, 8, 9, 10, 11}, "0-3,8-11"},
		{[]int{1, 3, 5, 6}, "1,3,5-6"},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := sysfs.FormatCPUList(in); got != tt.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("FormatCPUList modified its input: %v, was %v", in, tt.in)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{
		"", "0", "5", "0-3,8-11", "0,2", "0-1\n", "3,0-3,2", " 0 - 1 , 4 ",
		"3-1", "-1", "0,,2", "0-", "x", "1048576", "1048577", "0-15:2/4",
		"99999999999999999999999", "007", "0-0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := sysfs.ParseCPUList(s)
		if err != nil {
			var le *sysfs.CPUListError
			if !errors.As(err, &le) {
				t.Fatalf("ParseCPUList(%q): error %v is not a *CPUListError", s, err)
			}
			return
		}
		for i, c := range cpus {
			if c < 0 || c > sysfs.MaxCPUID {
				t.Fatalf("ParseCPUList(%q): CPU %d out of range", s, c)
			}
			if i > 0 && cpus[i-1] >= c {
				t.Fatalf("ParseCPUList(%q) = %v: not sorted and unique", s, cpus)
			}
		}
		text := sysfs.FormatCPUList(cpus)
		again, err := sysfs.ParseCPUList(text)
		if err != nil {
			t.Fatalf("ParseCPUList(FormatCPUList(%v) = %q): %v", cpus, text, err)
		}
		if !slices.Equal(again, cpus) {
			t.Fatalf("round trip %q -> %v -> %q -> %v", s, cpus, text, again)
		}
		if text2 := sysfs.FormatCPUList(again); text2 != text {
			t.Fatalf("format not canonical: %q then %q", text, text2)
		}
	})
}
