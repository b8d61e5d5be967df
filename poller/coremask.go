package poller

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/usrpt/usrpt/internal/sysfs"
)

// CoreMaskError reports a core mask that does not parse or names CPUs the
// host cannot run a reactor on. Its text names the bad part and lists the
// online CPUs, so the user can fix the mask from the message alone:
//
//	core mask "0-3": CPU 2 (token "0-3") is not online; online CPUs: 0-1
type CoreMaskError struct {
	Mask string // the mask as given
	// Token is the offending part: the list entry ("2-3"), or the whole
	// mask for a hexadecimal or bracket problem; "" when the problem is the
	// mask as a whole (empty, selects no CPU) or an empty list entry.
	Token string
	// CPU is the CPU that is not online, or -1 when the mask is malformed.
	CPU    int
	Reason string // "is not online", "empty mask", "reversed range", ...
	Online []int  // the online CPUs the mask was checked against, sorted
}

func (e *CoreMaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "core mask %q: ", e.Mask)
	switch {
	case e.CPU >= 0:
		fmt.Fprintf(&b, "CPU %d (token %q) %s", e.CPU, e.Token, e.Reason)
	case e.Token != "":
		fmt.Fprintf(&b, "bad token %q: %s", e.Token, e.Reason)
	default:
		b.WriteString(e.Reason)
	}
	online := sysfs.FormatCPUList(e.Online)
	if online == "" {
		online = "none"
	}
	b.WriteString("; online CPUs: ")
	b.WriteString(online)
	return b.String()
}

// ParseCoreMask parses a reactor core mask as SPDK's -m and taskset users
// write it, checks every CPU it selects against online, and returns the CPUs
// sorted and without duplicates: reactor i runs on the i-th.
//
// The forms are told apart by this rule, applied to the mask with
// surrounding white space removed:
//
//   - "[...]": an SPDK CPU list in brackets, "[0,2-3]".
//   - "0x..." or "0X...": a hexadecimal bitmask, bit n for CPU n, of any
//     length: "0x3" is CPUs 0 and 1, "0xff00ff00ff00ff00ff" reaches CPU 71.
//     Commas may separate digit groups as the kernel prints masks
//     ("0xff,00000000" is CPUs 32-39).
//   - anything else containing ',' or '-': a cpulist as for taskset -c,
//     "0-3,8-11" or "5,7".
//   - anything else: a hexadecimal bitmask without the 0x, as taskset and
//     SPDK read it. So "3" is CPUs 0 and 1, and "5" is CPUs 0 and 2, not
//     CPU 5; write "[5]" or "0x20" for CPU 5 alone.
//
// Errors are *CoreMaskError: an empty mask, a mask selecting no CPU ("0x0",
// "[]"), a malformed token (named in the error), or a CPU that is not in
// online (absent, offline, or beyond the machine). online is typically
// sysfs.FS.OnlineCPUs or a topology's Online; it need not be sorted and is
// not modified.
func ParseCoreMask(s string, online []int) ([]int, error) {
	p := maskParser{mask: s, online: slices.Compact(slices.Sorted(slices.Values(online)))}
	m := strings.TrimSpace(s)
	switch {
	case m == "":
		return nil, p.fail("", "empty mask")
	case m[0] == '[':
		list, ok := strings.CutSuffix(m[1:], "]")
		if !ok {
			return nil, p.fail(m, "missing closing ']'")
		}
		return p.list(list)
	case strings.HasPrefix(m, "0x") || strings.HasPrefix(m, "0X"):
		return p.hex(m, m[2:], true)
	case strings.ContainsAny(m, ",-"):
		return p.list(m)
	default:
		return p.hex(m, m, false)
	}
}

type maskParser struct {
	mask   string
	online []int // sorted, unique
}

func (p *maskParser) fail(token, reason string) *CoreMaskError {
	return &CoreMaskError{Mask: p.mask, Token: token, CPU: -1, Reason: reason, Online: p.online}
}

func (p *maskParser) isOnline(cpu int) bool {
	_, ok := slices.BinarySearch(p.online, cpu)
	return ok
}

// list parses a cpulist, the inside of "[...]" or a taskset -c list.
func (p *maskParser) list(list string) ([]int, error) {
	cpus, err := sysfs.ParseCPUList(list)
	if err != nil {
		var le *sysfs.CPUListError
		if errors.As(err, &le) {
			return nil, p.fail(le.Token, le.Reason)
		}
		return nil, p.fail(list, err.Error())
	}
	if len(cpus) == 0 {
		return nil, p.fail("", "selects no CPU")
	}
	for _, c := range cpus {
		if p.isOnline(c) {
			continue
		}
		// Name the entry that brought c in. Each entry parsed on its
		// own here already parsed as part of the whole list.
		e := p.fail(list, "is not online")
		e.CPU = c
		for tok := range strings.SplitSeq(list, ",") {
			if sub, _ := sysfs.ParseCPUList(tok); slices.Contains(sub, c) {
				e.Token = strings.TrimSpace(tok)
				break
			}
		}
		return nil, e
	}
	return cpus, nil
}

// hex parses a bitmask; token is the whole mask for error messages, digits
// the part after any 0x. Commas between digit groups are allowed with 0x.
func (p *maskParser) hex(token, digits string, prefixed bool) ([]int, error) {
	if digits == "" {
		return nil, p.fail(token, "no hexadecimal digits after 0x")
	}
	if prefixed && strings.Contains(digits, ",") {
		for group := range strings.SplitSeq(digits, ",") {
			if group == "" {
				return nil, p.fail(token, "empty digit group between commas")
			}
		}
		digits = strings.ReplaceAll(digits, ",", "")
	}
	var cpus []int
	// The last digit holds CPUs 0-3, the one before it 4-7, and so on:
	// walking from the end yields CPUs in ascending order.
	for i := len(digits) - 1; i >= 0; i-- {
		nibble, ok := hexDigit(digits[i])
		if !ok {
			r, _ := utf8.DecodeLastRuneInString(digits[:i+1])
			return nil, p.fail(token, fmt.Sprintf("%q is not a hexadecimal digit", r))
		}
		base := 4 * (len(digits) - 1 - i)
		for bit := range 4 {
			if nibble&(1<<bit) == 0 {
				continue
			}
			c := base + bit
			if !p.isOnline(c) {
				e := p.fail(token, "is not online")
				e.CPU = c
				return nil, e
			}
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, p.fail("", "selects no CPU")
	}
	return cpus, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// FormatCoreMaskHex formats CPUs as a hexadecimal core mask for SPDK's -m
// or taskset: [0 1] gives "0x3", [4 8] gives "0x110", none gives "0x0".
// Duplicates are harmless; a negative CPU number panics.
func FormatCoreMaskHex(cpus []int) string {
	if len(cpus) == 0 {
		return "0x0"
	}
	if lo := slices.Min(cpus); lo < 0 {
		panic(fmt.Sprintf("poller: FormatCoreMaskHex: negative CPU %d", lo))
	}
	n := slices.Max(cpus)/4 + 1 // digits; the top one is never 0
	nibbles := make([]byte, n)
	for _, c := range cpus {
		nibbles[n-1-c/4] |= 1 << (c % 4)
	}
	const digits = "0123456789abcdef"
	b := make([]byte, 2, 2+n)
	copy(b, "0x")
	for _, v := range nibbles {
		b = append(b, digits[v])
	}
	return string(b)
}
