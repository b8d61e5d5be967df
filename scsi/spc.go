package scsi

// MODE SELECT(6/10) (SPC-4 6.9, 6.10) and MAINTENANCE IN: REPORT TARGET
// PORT GROUPS (6.36), REPORT SUPPORTED OPERATION CODES (6.35), REPORT
// SUPPORTED TASK MANAGEMENT FUNCTIONS (6.36).

// decodeSPC decodes MODE SELECT(6/10) and MAINTENANCE IN.
func decodeSPC(cmd *command, c *[MaxCDBLen]byte, op Opcode) (Sense, bool) {
	return Sense{Reason: ReasonInvalidOpcode}, true
}

// execSPC executes a decoded MODE SELECT or MAINTENANCE IN.
func (e *Executor) execSPC(t *Task) { e.fail(t, Sense{Reason: ReasonInvalidOpcode}) }
