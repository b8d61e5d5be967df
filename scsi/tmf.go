package scsi

import (
	"slices"
	"strconv"

	"github.com/usrpt/usrpt/ioengine"
)

// TMF is a task management function (SAM-5 7; SRP_TSK_MGMT).
type TMF uint8

const (
	TMFAbortTask    TMF = 1 + iota // the task of the nexus with tag RefTag on the LUN
	TMFAbortTaskSet                // every task of the nexus on the LUN
	TMFClearTaskSet                // every task on the LUN, of every nexus
	TMFLUNReset                    // every task on the LUN, then reset it
	TMFITNexusReset                // every task of the nexus, on every LUN
	TMFClearACA                    // no ACA is ever established: rejected
	// TMFFence aborts the tasks Task.Fence covers: the abort half of
	// PREEMPT AND ABORT, run as TMFLocal on every Executor. Not an SRP
	// function: transports start it themselves.
	TMFFence
)

func (f TMF) String() string {
	switch f {
	case TMFAbortTask:
		return "ABORT TASK"
	case TMFAbortTaskSet:
		return "ABORT TASK SET"
	case TMFClearTaskSet:
		return "CLEAR TASK SET"
	case TMFLUNReset:
		return "LOGICAL UNIT RESET"
	case TMFITNexusReset:
		return "I_T NEXUS RESET"
	case TMFClearACA:
		return "CLEAR ACA"
	case TMFFence:
		return "PREEMPT AND ABORT (abort half)"
	}
	return "TMF(" + strconv.Itoa(int(f)) + ")"
}

// TMFResponse is a task management function's service response (SAM-5 7.1).
type TMFResponse uint8

const (
	TMFComplete     TMFResponse = 1 + iota // FUNCTION COMPLETE
	TMFRejected                            // FUNCTION REJECTED: not supported
	TMFIncorrectLUN                        // INCORRECT LOGICAL UNIT NUMBER
)

func (r TMFResponse) String() string {
	switch r {
	case TMFComplete:
		return "FUNCTION COMPLETE"
	case TMFRejected:
		return "FUNCTION REJECTED"
	case TMFIncorrectLUN:
		return "INCORRECT LOGICAL UNIT NUMBER"
	}
	return "TMFResponse(" + strconv.Itoa(int(r)) + ")"
}

// SupportedTMFs are the functions startTMF carries out (REPORT SUPPORTED
// TASK MANAGEMENT FUNCTIONS reports them).
var SupportedTMFs = []TMF{TMFAbortTask, TMFAbortTaskSet, TMFClearTaskSet, TMFLUNReset, TMFITNexusReset}

// startTMF carries out a task management function on the tasks of this
// Executor. A matched task waiting for the task set or for a COMPARE AND
// WRITE range, or still in the backlog, completes as aborted at once; one
// in an engine is marked and completes as aborted when the engine gives it
// back (the engine cannot take a request back). The function itself comes
// back from Poll once none of the tasks it aborted is left in an engine,
// so its response never overtakes them.
func (e *Executor) startTMF(m *Task) {
	var target *binding
	if m.TMF == TMFFence && m.Fence == nil {
		m.Response = TMFRejected
		e.done = append(e.done, m)
		return
	}
	if m.TMF != TMFITNexusReset && m.TMF != TMFFence {
		if n, ok := DecodeLUN(m.LUN); ok {
			target = m.Nexus.luns.Load().find(n)
		}
		if target == nil {
			m.Response = TMFIncorrectLUN
			e.done = append(e.done, m)
			return
		}
	}
	match := func(t *Task) bool {
		switch m.TMF {
		case TMFAbortTask:
			return t.Nexus == m.Nexus && t.b == target && t.Tag == m.RefTag
		case TMFAbortTaskSet:
			return t.Nexus == m.Nexus && t.b == target
		case TMFClearTaskSet, TMFLUNReset:
			return t.b != nil && t.b.lu == target.lu
		case TMFITNexusReset:
			return t.Nexus == m.Nexus
		case TMFFence:
			return t.b != nil && t.b.lu == m.Fence.lu && slices.Contains(m.Fence.keys, t.Nexus.key)
		}
		return false
	}
	switch m.TMF {
	case TMFAbortTask, TMFAbortTaskSet, TMFClearTaskSet, TMFLUNReset, TMFITNexusReset, TMFFence:
	default:
		m.Response = TMFRejected
		e.done = append(e.done, m)
		return
	}
	for _, u := range e.order {
		if target != nil && u.lu != target.lu {
			continue
		}
		e.abortIn(u, m, match)
	}
	if !m.TMFLocal {
		switch m.TMF {
		case TMFLUNReset:
			// SAM-5 6.7: every nexus learns of the reset; a RESERVE(6/10)
			// reservation is released (persistent ones stay).
			target.lu.Establish(UABusDeviceReset, nil)
			target.lu.prLUNReset()
		case TMFITNexusReset:
			m.Nexus.Establish(UANexusLoss)
			for _, b := range m.Nexus.luns.Load().bs {
				b.lu.prNexusGone(m.Nexus)
			}
		}
	}
	m.Response = TMFComplete
	if e.aborted == 0 {
		e.done = append(e.done, m)
		return
	}
	e.tmfs = append(e.tmfs, m)
}

// abortIn aborts u's tasks that match.
func (e *Executor) abortIn(u *unit, m *Task, match func(*Task) bool) {
	cleared := func(t *Task) {
		// CLEAR TASK SET (TAS=0) tells the other nexuses their tasks
		// went; so does PREEMPT AND ABORT (SPC-4 5.13.11.2.5).
		if (m.TMF == TMFClearTaskSet || m.TMF == TMFFence) && t.Nexus != m.Nexus {
			t.b.ua.Or(uint32(UACommandsCleared))
		}
	}
	// Blocked by the task set: never started.
	kept := u.blocked[:0]
	var gone []*Task
	for _, t := range u.blocked {
		if match(t) {
			gone = append(gone, t)
			continue
		}
		kept = append(kept, t)
	}
	clear(u.blocked[len(kept):])
	u.blocked = kept
	// Parked: waiting for a COMPARE AND WRITE range or a buffer.
	keptP := u.parked[:0]
	for _, t := range u.parked {
		if match(t) {
			t.flags &^= tfParked
			gone = append(gone, t)
			continue
		}
		keptP = append(keptP, t)
	}
	clear(u.parked[len(keptP):])
	u.parked = keptP
	// In an engine slot: either still in the backlog or in the engine.
	for i := range e.slots {
		t := e.slots[i].task
		if t == nil || t.u != u || t.flags&tfAborted != 0 || !match(t) {
			continue
		}
		r := &e.slots[i].req
		if j := indexReq(u.backlog, r); j >= 0 {
			n := copy(u.backlog[j:], u.backlog[j+1:])
			u.backlog[j+n] = nil
			u.backlog = u.backlog[:j+n]
			t.flags &^= tfInEngine
			gone = append(gone, t)
			continue
		}
		t.flags |= tfAborted
		e.aborted++
		cleared(t)
	}
	for _, t := range gone {
		cleared(t)
		e.abortDone(t)
	}
}

func indexReq(rs []*ioengine.Request, r *ioengine.Request) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}
