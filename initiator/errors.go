package initiator

import (
	"errors"
	"fmt"

	"github.com/usrpt/usrpt/srp"
)

// Errors a Command comes back with. A data-path error is a preboxed value
// (or a small integer), so completing a command with one allocates nothing.
var (
	// ErrChannelClosed: the channel ended (SRP_T_LOGOUT, a disconnect, an
	// error completion, Logout) before the command's SRP_RSP arrived.
	// A *LogoutError wraps it when the target said why.
	ErrChannelClosed = errors.New("initiator: channel closed")
	// ErrReset: Reconnect tore the channel down under the command, as
	// ib_srp fails outstanding commands with DID_RESET.
	ErrReset = errors.New("initiator: channel reset by reconnect")
	// ErrAborted: a task management function the target completed (ABORT
	// TASK, ABORT TASK SET, CLEAR TASK SET, LUN RESET) ended the command
	// without an SRP_RSP, as ib_srp finishes it with DID_ABORT or DID_RESET.
	ErrAborted = errors.New("initiator: command aborted by task management")
	// ErrBadCommand: Submit could not describe the command; errors.Is
	// matches every CommandError with it.
	ErrBadCommand = errors.New("initiator: command cannot be sent")
)

// CommandError says why Submit could not describe a command. It is a small
// integer so that returning one allocates nothing; errors.Is(err,
// ErrBadCommand) is true for each.
type CommandError uint8

// Reasons a command is refused.
const (
	ErrNotRegistered   CommandError = iota + 1 // a data segment outside the session's registered memory
	ErrTooManySegments                         // more segments than CmdSGEntries
	ErrCDBLen                                  // CDB empty, longer than 16 and not a multiple of 4, or too long for the IU
	ErrTMFData                                 // data segments on a task management request
	ErrTooLong                                 // a direction's total length does not fit 32 bits
)

var cmdErrText = [...]string{
	ErrNotRegistered:   "initiator: data outside registered memory",
	ErrTooManySegments: "initiator: more data segments than cmd_sg_entries",
	ErrCDBLen:          "initiator: CDB length does not fit an SRP_CMD",
	ErrTMFData:         "initiator: data on a task management request",
	ErrTooLong:         "initiator: data longer than 4 GiB",
}

func (e CommandError) Error() string {
	if int(e) < len(cmdErrText) && cmdErrText[e] != "" {
		return cmdErrText[e]
	}
	return "initiator: bad command"
}

// Is makes errors.Is(e, ErrBadCommand) true.
func (e CommandError) Is(target error) bool { return target == ErrBadCommand }

// LoginError is a LOGIN_REJ: the target refused channel Channel.
type LoginError struct {
	Channel int
	Reason  srp.RejReason
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("initiator: channel %d: login rejected: %v (%#08x)", e.Channel, e.Reason, uint32(e.Reason))
}

// LogoutError is an SRP_T_LOGOUT: the target ended channel Channel. It
// wraps ErrChannelClosed.
type LogoutError struct {
	Channel int
	Reason  srp.TLogoutReason
}

func (e *LogoutError) Error() string {
	return fmt.Sprintf("initiator: channel %d: target logout: %v", e.Channel, e.Reason)
}

func (e *LogoutError) Unwrap() error { return ErrChannelClosed }
