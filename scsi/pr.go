package scsi

// Reservations: PERSISTENT RESERVE IN/OUT (SPC-4 5.13, 6.15, 6.16) and
// RESERVE/RELEASE(6/10) (SPC-2 7.21, 7.13).

// prState is an LU's reservation state.
type prState struct{}

// prLoad reads the APTPL state file, if there is one.
func (lu *LU) prLoad(path string) error { return nil }

// prConflict reports whether cmd from nexus n conflicts with a reservation
// (RESERVATION CONFLICT). It is on the data path: no lock, no allocation.
func (lu *LU) prConflict(n *Nexus, cmd *command) bool { return false }

// prLUNReset releases a RESERVE(6/10) reservation (LUN RESET).
func (lu *LU) prLUNReset() {}

// prNexusGone releases a RESERVE(6/10) reservation held by n (logout,
// I_T NEXUS RESET).
func (lu *LU) prNexusGone(n *Nexus) {}

// decodePR decodes PERSISTENT RESERVE IN/OUT and RESERVE/RELEASE(6/10).
func decodePR(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	return Sense{Reason: ReasonInvalidOpcode}, true
}

// execPR executes a decoded reservation command.
func (e *Executor) execPR(t *Task) { e.fail(t, Sense{Reason: ReasonInvalidOpcode}) }
