package poller

import "time"

// PollerStats is one poller's accounting. Busy is the time spent in calls
// that reported Busy; Idle the time spent in calls that reported Idle.
type PollerStats struct {
	Name     string        `json:"name"`
	Kind     string        `json:"kind"` // "poller", "timer" or "oneshot"
	Runs     uint64        `json:"runs"`
	BusyRuns uint64        `json:"busy_runs"`
	Busy     time.Duration `json:"busy_ns"`
	Idle     time.Duration `json:"idle_ns"`
}

// ReactorStats is one reactor's accounting. An iteration is busy when any
// message or poller in it did work; its whole duration is then Busy, and
// otherwise Idle. Sleep is time blocked by the adaptive idle policy.
type ReactorStats struct {
	ID             int           `json:"id"`
	CPU            int           `json:"cpu"`
	Iterations     uint64        `json:"iterations"`
	BusyIterations uint64        `json:"busy_iterations"`
	Messages       uint64        `json:"messages"`
	Sleeps         uint64        `json:"sleeps"`
	Busy           time.Duration `json:"busy_ns"`
	Idle           time.Duration `json:"idle_ns"`
	Sleep          time.Duration `json:"sleep_ns"`
	Pollers        []PollerStats `json:"pollers"`
}

// BusyPercent is the share of accounted time that was busy, 0–100.
func (s ReactorStats) BusyPercent() float64 {
	total := s.Busy + s.Idle + s.Sleep
	if total <= 0 {
		return 0
	}
	return 100 * float64(s.Busy) / float64(total)
}

var kindNames = [...]string{kindActive: "poller", kindPeriodic: "timer", kindOneShot: "oneshot"}

// Snapshot copies r's counters. It must run on r's goroutine (or while r is
// not running); Group.Stats does that with a message.
func (r *Reactor) Snapshot() ReactorStats {
	s := ReactorStats{
		ID:             r.id,
		CPU:            r.cpu,
		Iterations:     r.iterations,
		BusyIterations: r.busyIterations,
		Messages:       r.messages,
		Sleeps:         r.sleeps,
		Busy:           time.Duration(r.busyNs),
		Idle:           time.Duration(r.idleNs),
		Sleep:          time.Duration(r.sleepNs),
	}
	add := func(p *Poller) {
		s.Pollers = append(s.Pollers, PollerStats{
			Name: p.name, Kind: kindNames[p.kind],
			Runs: p.runs, BusyRuns: p.busyRuns,
			Busy: time.Duration(p.busyNs), Idle: time.Duration(p.idleNs),
		})
	}
	for _, p := range r.active {
		add(p)
	}
	for _, p := range r.timers {
		add(p)
	}
	return s
}
