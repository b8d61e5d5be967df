package sysfs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCPUID is the largest CPU number ParseCPUList accepts. The kernel's
// NR_CPUS tops out at 8192 on x86 (CONFIG_MAXSMP); anything past a million is
// a typo or garbage, and refusing it keeps a stray "0-4000000000" from
// allocating gigabytes.
const MaxCPUID = 1 << 20

// CPUListError reports a cpulist that does not parse. Token is the offending
// comma-separated entry, trimmed of white space.
type CPUListError struct {
	List   string // the whole input
	Token  string // the bad entry
	Reason string // why it is bad, e.g. "reversed range"
}

func (e *CPUListError) Error() string {
	return fmt.Sprintf("cpu list %q: bad entry %q: %s", e.List, e.Token, e.Reason)
}

// ParseCPUList parses the kernel's cpulist format, as in
// /sys/devices/system/cpu/online, nodeN/cpulist, /proc/irq/N/smp_affinity_list
// and taskset -c: comma-separated CPU numbers and inclusive ranges, such as
// "0-3,8-11", "0,2" or "5". White space around the list and around entries is
// ignored; an empty list means no CPUs and returns nil.
//
// The result is sorted and deduplicated ("3,0-3" gives [0 1 2 3]). Errors are
// *CPUListError naming the bad entry: an empty entry ("0,,2"), a non-decimal
// or negative number, a reversed range ("3-1"), or a number above MaxCPUID.
// The kernel's stride syntax ("0-15:2/4") is not accepted.
func ParseCPUList(s string) ([]int, error) {
	list := strings.TrimSpace(s)
	if list == "" {
		return nil, nil
	}
	var spans []span
	for tok := range strings.SplitSeq(list, ",") {
		tok = strings.TrimSpace(tok)
		sp, reason := parseSpan(tok)
		if reason != "" {
			return nil, &CPUListError{List: s, Token: tok, Reason: reason}
		}
		spans = append(spans, sp)
	}

	// Sort and merge overlapping or adjacent spans, then expand: the result
	// is deduplicated without a set, and allocated once at its final size.
	slices.SortFunc(spans, func(a, b span) int { return a.lo - b.lo })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		last := &merged[len(merged)-1]
		if sp.lo <= last.hi+1 {
			last.hi = max(last.hi, sp.hi)
			continue
		}
		merged = append(merged, sp)
	}
	n := 0
	for _, sp := range merged {
		n += sp.hi - sp.lo + 1
	}
	cpus := make([]int, 0, n)
	for _, sp := range merged {
		for c := sp.lo; c <= sp.hi; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// span is an inclusive CPU range.
type span struct{ lo, hi int }

// parseSpan parses one entry, "N" or "N-M". It returns a reason on error.
func parseSpan(tok string) (span, string) {
	if tok == "" {
		return span{}, "empty entry"
	}
	if tok[0] == '-' {
		return span{}, "negative CPU number or missing range start"
	}
	first, last, isRange := strings.Cut(tok, "-")
	lo, reason := parseCPUID(strings.TrimSpace(first))
	if reason != "" {
		return span{}, reason
	}
	if !isRange {
		return span{lo, lo}, ""
	}
	last = strings.TrimSpace(last)
	if last == "" {
		return span{}, "missing range end"
	}
	hi, reason := parseCPUID(last)
	if reason != "" {
		return span{}, reason
	}
	if hi < lo {
		return span{}, "reversed range"
	}
	return span{lo, hi}, ""
}

// parseCPUID parses a decimal CPU number in [0, MaxCPUID].
func parseCPUID(s string) (int, string) {
	if s == "" {
		return 0, "missing CPU number"
	}
	if s[0] == '-' {
		return 0, "negative CPU number"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Sprintf("%q is not a decimal CPU number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxCPUID {
		// Only ErrRange is possible after the digit check.
		return 0, fmt.Sprintf("CPU number %s is above the limit %d", s, MaxCPUID)
	}
	return int(n), ""
}

// FormatCPUList formats CPU numbers in the kernel's cpulist format, with runs
// of two or more written as ranges, as the kernel prints them:
// [0 1 2 3 8] gives "0-3,8", nil gives "". The input need not be sorted and
// may hold duplicates; it is not modified. Numbers must not be negative.
func FormatCPUList(cpus []int) string {
	if len(cpus) == 0 {
		return ""
	}
	sorted := slices.Clone(cpus)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	b := make([]byte, 0, 4*len(sorted))
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(sorted[i]), 10)
		if j > i {
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(sorted[j]), 10)
		}
		i = j + 1
	}
	return string(b)
}
