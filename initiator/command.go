package initiator

import "github.com/usrpt/usrpt/srp"

// Command is one SCSI command, or one task management function when TMF
// is not zero. The caller owns it and its buffers; between Submit taking
// it and Poll returning it, the channel and the target use them.
type Command struct {
	LUN uint64 // the 8-byte SAM LUN (scsi.EncodeLUN)
	// CDB is up to 16 bytes, or more as an additional CDB: a multiple of
	// 4, as long as the SRP_CMD still fits the IU length agreed at login.
	CDB  []byte
	Attr srp.TaskAttr
	// DataOut are the data-out segments (a write), each inside memory
	// registered with Session.RegMR: one segment goes as a direct
	// descriptor, several as an indirect table carried whole in the IU,
	// and up to MaxImmData bytes as immediate data when the login agreed
	// to it. Empty segments are skipped.
	DataOut [][]byte
	// DataIn are the data-in segments (a read), described the same way.
	DataIn [][]byte
	User   uint64 // the caller's, untouched

	// TMF, when not zero, makes this an SRP_TSK_MGMT for LUN instead of
	// an SRP_CMD.
	TMF    srp.TMFunc
	RefTag srp.Tag // ABORT TASK: the Tag of the command to abort

	// Tag is set by Submit: unique on the channel among outstanding
	// commands, echoed by the target.
	Tag srp.Tag

	// Results, valid when Poll returns the command.

	// Err is nil when an SRP_RSP arrived (look at Status); otherwise
	// ErrChannelClosed (or a *LogoutError wrapping it), ErrReset,
	// ErrAborted, a CommandError (errors.Is ErrBadCommand), or the
	// srp.Error a malformed SRP_RSP broke.
	Err          error
	Status       uint8 // SCSI status
	Sense        [96]byte
	SenseLen     int
	Flags        srp.RspFlags // residual flags as received
	DataOutResid uint32
	DataInResid  uint32
	RspCode      srp.RspCode // task management response code (TMF != 0)
}
