package loop

import (
	"fmt"

	"github.com/usrpt/usrpt/verbs"
)

// Drop breaks the connection c (from either side) as if the link died:
// both QPs go to ERR, their outstanding work is flushed, and both sides'
// Done channels close. c must come from this package.
func Drop(c verbs.Conn) error {
	lc, ok := c.(*conn)
	if !ok {
		return fmt.Errorf("loop: Drop of a %T: %w", c, verbs.ErrInvalid)
	}
	lc.l.close()
	return nil
}

// FailNext makes the next n send work requests that q executes complete
// with status instead of executing (nothing is read or written). As any
// error completion, the first moves q to ERR (and, for a remote status -
// WCRemAccessErr, WCRemInvReqErr, WCRemOpErr - the peer's QP too), so the
// WRs after it are flushed; the remaining count applies after q is reset and
// reconnected. n <= 0 cancels. status must not be WCSuccess.
func FailNext(q verbs.QP, n int, status verbs.WCStatus) error {
	lq, ok := q.(*qp)
	if !ok || status == verbs.WCSuccess {
		return fmt.Errorf("loop: FailNext(%T, %v): %w", q, status, verbs.ErrInvalid)
	}
	// Status first: an exec that sees the count sees the status.
	lq.failStatus.Store(uint32(status))
	lq.fail.Store(int32(max(n, 0)))
	return nil
}

// DelayCompletions holds every completion of q back until polls further
// Polls of q have passed since the Poll that first saw it (in order: a
// later completion is never returned before an earlier one). 0 turns the
// delay off; completions already held keep their due Poll. Any goroutine.
func DelayCompletions(q verbs.CQ, polls int) error {
	c, ok := q.(*cq)
	if !ok || polls < 0 {
		return fmt.Errorf("loop: DelayCompletions(%T, %d): %w", q, polls, verbs.ErrInvalid)
	}
	c.delay.Store(int64(polls))
	return nil
}
