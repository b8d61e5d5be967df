package srp

import "strconv"

// Error is the rule a peer's IU broke. It is a small integer so that
// returning one as an error allocates nothing; errors.Is works with the
// constants. Answer, TLogout and LoginRej say what the target answers.
type Error uint8

// The rules. The comment names the answer (see Error.Answer).
const (
	_ Error = iota
	// IU-level rules: the channel cannot trust the IU at all.
	ErrShortIU    // shorter than its fixed part: T_LOGOUT invalid IU length (8)
	ErrOpcode     // unknown IU type, or not the one parsed: T_LOGOUT invalid IU type (2)
	ErrAddCDBLen  // ADDITIONAL CDB LENGTH reaches past the IU: T_LOGOUT 8
	ErrDescPastIU // data-buffer descriptors reach past the IU: T_LOGOUT 8
	ErrImmPastIU  // immediate data reaches past the IU: T_LOGOUT 8
	ErrDataOutFmt // DATA-OUT format reserved, or IMMEDIATE not negotiated: T_LOGOUT 5
	ErrDataInFmt  // DATA-IN format reserved, or IMMEDIATE: T_LOGOUT 6
	// Command-level rules: the IU is well framed, the command is refused
	// with CHECK CONDITION, INVALID FIELD IN COMMAND INFORMATION UNIT.
	ErrDescCount        // a descriptor count does not fit the format
	ErrIndirectTableLen // indirect table length not a multiple of 16
	ErrPartialList      // partial descriptor list longer than the table
	ErrIndirectTotal    // descriptor lengths add up to more than TOTAL LENGTH, or (whole table in the IU) not to it
	ErrImmOffset        // immediate data would start inside the header or descriptors
	// Login rules: SRP_LOGIN_REJ.
	ErrLoginITIULen   // REQUEST IT IU LENGTH below 64: reason 0x00010002
	ErrLoginMultiChan // reserved MULTI-CHANNEL ACTION (2, 3): reason 0x00010000
	ErrLoginShort     // login request too short: reason 0x00010000
	ErrLoginOpcode    // login request with another IU type: reason 0x00010000
	// Rules for IUs a target sends, checked by an initiator.
	ErrRspLen   // SRP_RSP response or sense data reach past the IU
	ErrRspResid // SRP_RSP sets both OVER and UNDER for one direction
	ErrSenseLen // SRP_AER_REQ sense data reach past the IU
	errMax
)

var errText = [errMax]string{
	ErrShortIU:          "srp: IU shorter than its fixed part",
	ErrOpcode:           "srp: unknown or unexpected IU type",
	ErrAddCDBLen:        "srp: additional CDB reaches past the IU",
	ErrDescPastIU:       "srp: data-buffer descriptors reach past the IU",
	ErrImmPastIU:        "srp: immediate data reach past the IU",
	ErrDataOutFmt:       "srp: unsupported DATA-OUT buffer descriptor format",
	ErrDataInFmt:        "srp: unsupported DATA-IN buffer descriptor format",
	ErrDescCount:        "srp: descriptor count does not match the format",
	ErrIndirectTableLen: "srp: indirect table length not a multiple of 16",
	ErrPartialList:      "srp: partial descriptor list longer than the table",
	ErrIndirectTotal:    "srp: descriptor lengths do not add up to the total length",
	ErrImmOffset:        "srp: immediate data offset inside the command header",
	ErrLoginITIULen:     "srp: login requested IT IU length below 64",
	ErrLoginMultiChan:   "srp: login with reserved multi-channel action",
	ErrLoginShort:       "srp: login request too short",
	ErrLoginOpcode:      "srp: login request with another IU type",
	ErrRspLen:           "srp: response or sense data reach past the IU",
	ErrRspResid:         "srp: residual both over and under",
	ErrSenseLen:         "srp: sense data reach past the IU",
}

func (e Error) Error() string {
	if e > 0 && e < errMax {
		return errText[e]
	}
	return "srp: Error(" + strconv.Itoa(int(e)) + ")"
}

// Answer is the kind of protocol answer a rule calls for.
type Answer uint8

const (
	// AnswerTLogout: the IU cannot be trusted; send SRP_T_LOGOUT with
	// Error.TLogout and disconnect the channel.
	AnswerTLogout Answer = iota
	// AnswerCheckCondition: send SRP_RSP with CHECK CONDITION, ILLEGAL
	// REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT (0Eh/03h,
	// scsi.ReasonInvalidFieldIU) for the IU's tag.
	AnswerCheckCondition
	// AnswerLoginRej: send SRP_LOGIN_REJ with Error.LoginRej.
	AnswerLoginRej
)

// Answer says how a target answers an IU that broke e.
func (e Error) Answer() Answer {
	switch {
	case e >= ErrDescCount && e <= ErrImmOffset:
		return AnswerCheckCondition
	case e >= ErrLoginITIULen && e <= ErrLoginOpcode:
		return AnswerLoginRej
	}
	return AnswerTLogout
}

// TLogout is the SRP_T_LOGOUT reason for e (SRP r16a table 14 via iPXE
// srp.h). Rules whose answer is not a logout give LogoutNone.
func (e Error) TLogout() TLogoutReason {
	switch e {
	case ErrShortIU, ErrAddCDBLen, ErrDescPastIU, ErrImmPastIU, ErrRspLen, ErrSenseLen:
		return LogoutInvalidIULen
	case ErrOpcode:
		return LogoutInvalidIUType
	case ErrDataOutFmt:
		return LogoutDataOutFmt
	case ErrDataInFmt:
		return LogoutDataInFmt
	}
	return LogoutNone
}

// LoginRej is the SRP_LOGIN_REJ reason for e; every rule that is not a
// login rule gives RejUnable.
func (e Error) LoginRej() RejReason {
	if e == ErrLoginITIULen {
		return RejITIULenTooLarge
	}
	return RejUnable
}
