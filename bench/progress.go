package bench

import (
	"fmt"
	"strings"
	"time"
)

// setPhase names what the progress line reports and when it ends (zero:
// unknown).
func (r *runner) setPhase(name string, until time.Time) {
	r.phaseName, r.phaseStart, r.progressUntil = name, time.Now(), until
}

// progress rewrites the one-line status: the phase, IOPS and bandwidth of
// the last interval, time elapsed and left. Only a terminal gets it (the
// caller decides), so \r and an erase-to-end-of-line are safe.
func (r *runner) progress(now time.Time, s Sample, ios [numDirs]uint64) {
	w := r.cfg.Progress
	if w == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\r[%s] %s IOPS", r.phaseName, kfmt(s.IOPS))
	if r.cfg.RW.Mixed() {
		fmt.Fprintf(&b, " (r=%s w=%s)", kfmt(s.ReadIOPS), kfmt(s.WriteIOPS))
	}
	fmt.Fprintf(&b, ", %s/s | %s elapsed", ibytes(uint64(s.BWBytes)), now.Sub(r.phaseStart).Round(time.Second))
	switch {
	case !r.progressUntil.IsZero():
		fmt.Fprintf(&b, ", %s left", max(0, r.progressUntil.Sub(now)).Round(time.Second))
	case r.measuring && r.progressTotalIOs > 0 && s.IOPS > 0:
		done := ios[dirRead] + ios[dirWrite] - r.beginIOs
		if done < r.progressTotalIOs {
			left := time.Duration(float64(r.progressTotalIOs-done) / s.IOPS * float64(time.Second))
			fmt.Fprintf(&b, ", ~%s left", left.Round(time.Second))
		}
	}
	b.WriteString("\x1b[K")
	_, _ = fmt.Fprint(w, b.String())
	r.wrote = true
}

// clearProgress erases the status line so the report starts on a clean one.
func (r *runner) clearProgress() {
	if r.wrote {
		_, _ = fmt.Fprint(r.cfg.Progress, "\r\x1b[K")
		r.wrote = false
	}
}
