package hugemem

import "fmt"

// PagePolicy says which page size Map may use.
type PagePolicy int

const (
	// PagesAuto uses 2 MiB hugepages when the kernel gives them and base
	// pages (4 KiB) otherwise. It is the zero value.
	PagesAuto PagePolicy = iota
	// PagesHuge requires 2 MiB hugepages; Map fails without them.
	PagesHuge
	// PagesSmall never uses hugepages.
	PagesSmall
)

// HugePageSize is the hugepage size Map asks for (MAP_HUGE_2MB).
const HugePageSize = 2 << 20

func (p PagePolicy) String() string {
	switch p {
	case PagesAuto:
		return "auto"
	case PagesHuge:
		return "huge"
	case PagesSmall:
		return "small"
	}
	return fmt.Sprintf("PagePolicy(%d)", int(p))
}

// ParsePagePolicy parses "auto", "huge" or "small".
func ParsePagePolicy(s string) (PagePolicy, error) {
	switch s {
	case "auto":
		return PagesAuto, nil
	case "huge":
		return PagesHuge, nil
	case "small":
		return PagesSmall, nil
	}
	return 0, fmt.Errorf("hugemem: page policy %q: want auto, huge or small", s)
}

// MarshalText implements encoding.TextMarshaler, for configuration files.
func (p PagePolicy) MarshalText() ([]byte, error) {
	switch p {
	case PagesAuto, PagesHuge, PagesSmall:
		return []byte(p.String()), nil
	}
	return nil, fmt.Errorf("hugemem: marshal %v: unknown page policy", p)
}

// UnmarshalText implements encoding.TextUnmarshaler, for configuration files.
func (p *PagePolicy) UnmarshalText(b []byte) error {
	v, err := ParsePagePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
