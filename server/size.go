package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// ParseSize reads a size as usrpt bench's flags do, in fio's units: a byte
// count with an optional k, m, g, t or p, each a power of 1024, with or
// without "i" and "b" ("1GiB", "1g", "512MiB", "4096").
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	if n, err := strconv.ParseUint(t, 10, 64); err == nil {
		return n, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i > 0 {
		num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
		unit = strings.TrimSuffix(unit, "b")
		if unit == "i" {
			unit = "?" // "4ib": a binary prefix without the prefix
		}
		unit = strings.TrimSuffix(unit, "i")
		switch unit {
		case "k", "m", "g", "t", "p":
			if n, err := humanize.ParseBytes(num + strings.ToUpper(unit) + "iB"); err == nil {
				return n, nil
			}
		case "":
			if n, err := strconv.ParseUint(num, 10, 64); err == nil {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("size %q: want a byte count with an optional k, m, g, t or p (powers of 1024)", s)
}

// FormatSize writes n in the largest binary unit that divides it exactly,
// so that ParseSize reads back the same number ("1GiB", "1536KiB", "4097").
func FormatSize(n uint64) string {
	units := []string{"PiB", "TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		div := uint64(1) << (10 * (len(units) - i))
		if n >= div && n%div == 0 {
			return fmt.Sprintf("%d%s", n/div, u)
		}
	}
	return strconv.FormatUint(n, 10)
}
