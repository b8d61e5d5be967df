package poller

import (
	"fmt"
	"time"
)

// IdleMode selects what a reactor does when its pollers find no work.
type IdleMode uint8

const (
	// IdleBusy spins forever: the lowest latency, and a whole core burnt.
	// For dedicated, isolated cores.
	IdleBusy IdleMode = iota
	// IdleAdaptive spins for IdlePolicy.SpinFor, then sleeps on an eventfd
	// until a message, the next timer, a registered wait fd or MaxSleep.
	// For shared machines where a polling core is not always available.
	IdleAdaptive
)

func (m IdleMode) String() string {
	switch m {
	case IdleBusy:
		return "busy"
	case IdleAdaptive:
		return "adaptive"
	}
	return fmt.Sprintf("IdleMode(%d)", uint8(m))
}

// ParseIdleMode accepts "busy" and "adaptive".
func ParseIdleMode(s string) (IdleMode, error) {
	switch s {
	case "busy", "":
		return IdleBusy, nil
	case "adaptive":
		return IdleAdaptive, nil
	}
	return 0, fmt.Errorf("idle policy %q: want busy or adaptive", s)
}

// Defaults for the adaptive policy.
const (
	DefaultSpinFor  = time.Millisecond
	DefaultMaxSleep = 10 * time.Millisecond
)

// IdlePolicy configures idling. Zero durations take the defaults.
type IdlePolicy struct {
	Mode IdleMode
	// SpinFor is how long a reactor keeps spinning after its last busy
	// iteration before it sleeps.
	SpinFor time.Duration
	// MaxSleep bounds one sleep, for pollers whose work cannot wake the
	// reactor (nothing to wait on): it is their worst-case added latency.
	MaxSleep time.Duration
}

func (p IdlePolicy) withDefaults() IdlePolicy {
	if p.SpinFor <= 0 {
		p.SpinFor = DefaultSpinFor
	}
	if p.MaxSleep <= 0 {
		p.MaxSleep = DefaultMaxSleep
	}
	return p
}
