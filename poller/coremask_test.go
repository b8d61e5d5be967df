package poller

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// seq returns lo..hi inclusive.
func seq(lo, hi int) []int {
	var s []int
	for c := lo; c <= hi; c++ {
		s = append(s, c)
	}
	return s
}

func TestParseCoreMask(t *testing.T) {
	big := seq(0, 127)
	tests := []struct {
		mask   string
		online []int
		want   []int
	}{
		// Hexadecimal bitmasks, with and without 0x.
		{"0x3", big, []int{0, 1}},
		{"0X3", big, []int{0, 1}},
		{"3", big, []int{0, 1}},
		{"5", big, []int{0, 2}}, // hex, not CPU 5
		{"10", big, []int{4}},   // hex, not CPU 10
		{"0x1", big, []int{0}},
		{"0xF0", big, []int{4, 5, 6, 7}},
		{"0xaB", big, []int{0, 1, 3, 5, 7}},
		{"0x0003", big, []int{0, 1}}, // leading zeros
		{"0x101", big, []int{0, 8}},
		{"0xff00ff00ff00ff00ff", big, slices.Concat(seq(0, 7), seq(16, 23), seq(32, 39), seq(48, 55), seq(64, 71))},
		{"0x80000000000000000000000000000000", big, []int{127}},
		{"0xff,00000000", big, seq(32, 39)}, // kernel-style digit groups
		{" 0x3\n", big, []int{0, 1}},
		{"0x3", []int{1, 0, 0}, []int{0, 1}}, // online unsorted, duplicated
		// SPDK lists in brackets.
		{"[0,2-3]", big, []int{0, 2, 3}},
		{"[5]", big, []int{5}},
		{"[ 1 , 0 ]", big, []int{0, 1}},
		{"[3,0-3]", big, []int{0, 1, 2, 3}},
		// taskset -c lists.
		{"0-3,8-11", big, []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{"5,7", big, []int{5, 7}},
		{"0-1", []int{0, 1}, []int{0, 1}},
		{"4-7", seq(4, 7), []int{4, 5, 6, 7}},
		{"120-127", big, seq(120, 127)},
	}
	for _, tt := range tests {
		got, err := ParseCoreMask(tt.mask, tt.online)
		if err != nil {
			t.Errorf("ParseCoreMask(%q): %v", tt.mask, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseCoreMask(%q) = %v, want %v", tt.mask, got, tt.want)
		}
	}
}

func TestParseCoreMaskErrors(t *testing.T) {
	twoCPUs := []int{0, 1}
	gappy := []int{0, 1, 4, 5, 6, 7} // CPUs 2-3 offline
	tests := []struct {
		mask   string
		online []int
		token  string
		cpu    int
		reason string // in Reason
		text   string // the whole Error()
	}{
		{"", twoCPUs, "", -1, "empty mask",
			`core mask "": empty mask; online CPUs: 0-1`},
		{" \t", twoCPUs, "", -1, "empty mask", ""},
		{"0x0", twoCPUs, "", -1, "selects no CPU",
			`core mask "0x0": selects no CPU; online CPUs: 0-1`},
		{"0", twoCPUs, "", -1, "selects no CPU", ""},
		{"0x0000", twoCPUs, "", -1, "selects no CPU", ""},
		{"[]", twoCPUs, "", -1, "selects no CPU", ""},
		{"[ ]", twoCPUs, "", -1, "selects no CPU", ""},
		// Not online.
		{"0-3", twoCPUs, "0-3", 2, "is not online",
			`core mask "0-3": CPU 2 (token "0-3") is not online; online CPUs: 0-1`},
		{"0,5,1", twoCPUs, "5", 5, "is not online", ""},
		{"[0, 1-2]", twoCPUs, "1-2", 2, "is not online", ""},
		{"0x5", twoCPUs, "0x5", 2, "is not online",
			`core mask "0x5": CPU 2 (token "0x5") is not online; online CPUs: 0-1`},
		{"5", twoCPUs, "5", 2, "is not online", ""}, // hex 5 = CPUs 0 and 2
		{"0xff00ff00ff00ff00ff", twoCPUs, "0xff00ff00ff00ff00ff", 2, "is not online", ""},
		{"0-7", gappy, "0-7", 2, "is not online",
			`core mask "0-7": CPU 2 (token "0-7") is not online; online CPUs: 0-1,4-7`},
		{"0xc", gappy, "0xc", 2, "is not online", ""},
		{"0x3", nil, "0x3", 0, "is not online",
			`core mask "0x3": CPU 0 (token "0x3") is not online; online CPUs: none`},
		// Malformed lists (the reason comes from sysfs.ParseCPUList).
		{"3-1", twoCPUs, "3-1", -1, "reversed range",
			`core mask "3-1": bad token "3-1": reversed range; online CPUs: 0-1`},
		{"-1", twoCPUs, "-1", -1, "negative", ""},
		{"0,,1", twoCPUs, "", -1, "empty entry",
			`core mask "0,,1": empty entry; online CPUs: 0-1`},
		{"0,", twoCPUs, "", -1, "empty entry", ""},
		{"0-", twoCPUs, "0-", -1, "missing range end", ""},
		{"0,x", twoCPUs, "x", -1, "not a decimal", ""},
		{"0-0x3", twoCPUs, "0-0x3", -1, "not a decimal", ""},
		{"1,99999999999999999999", twoCPUs, "99999999999999999999", -1, "above the limit", ""},
		{"[0,1", twoCPUs, "[0,1", -1, "missing closing ']'",
			`core mask "[0,1": bad token "[0,1": missing closing ']'; online CPUs: 0-1`},
		{"[[0]]", twoCPUs, "[0]", -1, "not a decimal", ""},
		{"[0x3]", twoCPUs, "0x3", -1, "not a decimal", ""},
		{"0,1]", twoCPUs, "1]", -1, "not a decimal", ""},
		{"0-15:2", twoCPUs, "0-15:2", -1, "not a decimal", ""}, // taskset stride: not supported
		// Malformed hex.
		{"0x", twoCPUs, "0x", -1, "no hexadecimal digits",
			`core mask "0x": bad token "0x": no hexadecimal digits after 0x; online CPUs: 0-1`},
		{"0xg", twoCPUs, "0xg", -1, `'g' is not a hexadecimal digit`, ""},
		{"3g", twoCPUs, "3g", -1, `'g' is not a hexadecimal digit`, ""},
		{"0x3 1", twoCPUs, "0x3 1", -1, `' ' is not a hexadecimal digit`, ""},
		{"0x-1", twoCPUs, "0x-1", -1, `'-' is not a hexadecimal digit`, ""},
		{"0x1é", twoCPUs, "0x1é", -1, `'é' is not a hexadecimal digit`, ""},
		{"0x,3", twoCPUs, "0x,3", -1, "empty digit group", ""},
		{"0x3,", twoCPUs, "0x3,", -1, "empty digit group", ""},
		{"0x1,,0", twoCPUs, "0x1,,0", -1, "empty digit group", ""},
		{"ff,ffffffff", twoCPUs, "ff", -1, "not a decimal", ""}, // no 0x: a list
	}
	for _, tt := range tests {
		got, err := ParseCoreMask(tt.mask, tt.online)
		var me *CoreMaskError
		if !errors.As(err, &me) {
			t.Errorf("ParseCoreMask(%q) = %v, %v; want *CoreMaskError", tt.mask, got, err)
			continue
		}
		if me.Mask != tt.mask || me.Token != tt.token || me.CPU != tt.cpu || !strings.Contains(me.Reason, tt.reason) {
			t.Errorf("ParseCoreMask(%q) error = %+v\nwant token %q, CPU %d, reason containing %q", tt.mask, *me, tt.token, tt.cpu, tt.reason)
		}
		if want := slices.Compact(slices.Sorted(slices.Values(tt.online))); !slices.Equal(me.Online, want) {
			t.Errorf("ParseCoreMask(%q) error Online = %v, want %v", tt.mask, me.Online, want)
		}
		if tt.text != "" && err.Error() != tt.text {
			t.Errorf("ParseCoreMask(%q) error text\n got %s\nwant %s", tt.mask, err, tt.text)
		}
		if tt.token != "" && !strings.Contains(err.Error(), `"`+tt.token+`"`) {
			t.Errorf("ParseCoreMask(%q) error %q does not name token %q", tt.mask, err, tt.token)
		}
		if !strings.Contains(err.Error(), "online CPUs: ") {
			t.Errorf("ParseCoreMask(%q) error %q does not list the online CPUs", tt.mask, err)
		}
	}
}

func TestParseCoreMaskDoesNotModifyOnline(t *testing.T) {
	online := []int{3, 1, 2, 0}
	if _, err := ParseCoreMask("0-9", online); err == nil {
		t.Fatal("want error")
	}
	if !slices.Equal(online, []int{3, 1, 2, 0}) {
		t.Errorf("online modified: %v", online)
	}
}

func TestFormatCoreMaskHex(t *testing.T) {
	tests := []struct {
		cpus []int
		want string
	}{
		{nil, "0x0"},
		{[]int{0}, "0x1"},
		{[]int{0, 1}, "0x3"},
		{[]int{1, 0, 1}, "0x3"},
		{[]int{4, 8}, "0x110"},
		{[]int{0, 8}, "0x101"},
		{[]int{3}, "0x8"},
		{[]int{4}, "0x10"},
		{seq(0, 63), "0xffffffffffffffff"},
		{[]int{71}, "0x80" + strings.Repeat("0", 16)},
	}
	for _, tt := range tests {
		if got := FormatCoreMaskHex(tt.cpus); got != tt.want {
			t.Errorf("FormatCoreMaskHex(%v) = %q, want %q", tt.cpus, got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("FormatCoreMaskHex([-1]) did not panic")
		}
	}()
	FormatCoreMaskHex([]int{0, -1})
}

func FuzzParseCoreMask(f *testing.F) {
	for _, seed := range []struct{ mask, online string }{
		{"0x3", "0-1"},
		{"3", "0-1"},
		{"5", "0-3"},
		{"0xff00ff00ff00ff00ff", "0-127"},
		{"0xff,00000000", "0-63"},
		{"[0,2-3]", "0-3"},
		{"[]", "0-1"},
		{"0-3,8-11", "0-15"},
		{"5,7", "0-7"},
		{"0-3", "0-1"},
		{"0-7", "0-1,4-7"},
		{"", "0-1"},
		{"0x0", "0-1"},
		{"3-1", "0-3"},
		{"0xg", "0-1"},
		{"[0,1", "0-1"},
		{"0x,3", "0-1"},
		{"-1", "0-1"},
		{"0x3", ""},
	} {
		f.Add(seed.mask, seed.online)
	}
	f.Fuzz(func(t *testing.T, mask, onlineList string) {
		online, err := sysfs.ParseCPUList(onlineList)
		if err != nil || len(online) > 4096 {
			online = seq(0, 15)
		}
		cpus, err := ParseCoreMask(mask, online)
		if err != nil {
			var me *CoreMaskError
			if !errors.As(err, &me) {
				t.Fatalf("ParseCoreMask(%q): %v is not a *CoreMaskError", mask, err)
			}
			if me.Mask != mask {
				t.Fatalf("error Mask = %q, want %q", me.Mask, mask)
			}
			if me.CPU >= 0 && slices.Contains(online, me.CPU) {
				t.Fatalf("ParseCoreMask(%q): CPU %d reported offline but is online", mask, me.CPU)
			}
			_ = err.Error()
			return
		}
		if len(cpus) == 0 {
			t.Fatalf("ParseCoreMask(%q) selected nothing without an error", mask)
		}
		for i, c := range cpus {
			if !slices.Contains(online, c) {
				t.Fatalf("ParseCoreMask(%q) = %v: CPU %d not online (%v)", mask, cpus, c, online)
			}
			if i > 0 && cpus[i-1] >= c {
				t.Fatalf("ParseCoreMask(%q) = %v: not sorted and unique", mask, cpus)
			}
		}
		// Both output forms parse back to the same CPUs.
		for _, again := range []string{FormatCoreMaskHex(cpus), "[" + sysfs.FormatCPUList(cpus) + "]"} {
			got, err := ParseCoreMask(again, online)
			if err != nil || !slices.Equal(got, cpus) {
				t.Fatalf("round trip %q -> %v -> %q -> %v, %v", mask, cpus, again, got, err)
			}
		}
	})
}
