package scsi

import "strconv"

// Status is a SCSI status byte (SAM-5 table 34).
type Status uint8

const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusTaskAborted         Status = 0x40
)

func (s Status) String() string {
	switch s {
	case StatusGood:
		return "GOOD"
	case StatusCheckCondition:
		return "CHECK CONDITION"
	case StatusBusy:
		return "BUSY"
	case StatusReservationConflict:
		return "RESERVATION CONFLICT"
	case StatusTaskSetFull:
		return "TASK SET FULL"
	case StatusTaskAborted:
		return "TASK ABORTED"
	}
	return "Status(0x" + strconv.FormatUint(uint64(s), 16) + ")"
}

// Key is a sense key (SPC-4 table 45).
type Key uint8

const (
	KeyNoSense        Key = 0x0
	KeyNotReady       Key = 0x2
	KeyMediumError    Key = 0x3
	KeyHardwareError  Key = 0x4
	KeyIllegalRequest Key = 0x5
	KeyUnitAttention  Key = 0x6
	KeyDataProtect    Key = 0x7
	KeyAbortedCommand Key = 0xB
	KeyMiscompare     Key = 0xE
)

// Reason is why a command ended the way it did: one row of the sense table
// (reasonTable), which gives its sense key and additional sense code.
type Reason uint8

const (
	ReasonNone                     Reason = iota // NO SENSE, 0x0000
	ReasonNotReady                               // NOT READY, LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE 0x0400
	ReasonWriteError                             // MEDIUM ERROR, WRITE ERROR 0x0C00
	ReasonReadError                              // MEDIUM ERROR, UNRECOVERED READ ERROR 0x1100
	ReasonInvalidOpcode                          // ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE 0x2000
	ReasonInvalidFieldCDB                        // ILLEGAL REQUEST, INVALID FIELD IN CDB 0x2400 (with a field pointer)
	ReasonLBAOutOfRange                          // ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE 0x2100
	ReasonParamListLength                        // ILLEGAL REQUEST, PARAMETER LIST LENGTH ERROR 0x1A00
	ReasonInvalidFieldParam                      // ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST 0x2600
	ReasonInvalidFieldIU                         // ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT 0x0E03
	ReasonLUNotSupported                         // ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED 0x2500
	ReasonSavingNotSupported                     // ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED 0x3900
	ReasonWriteProtected                         // DATA PROTECT, WRITE PROTECTED 0x2700
	ReasonSpaceAllocFailed                       // DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT 0x2707
	ReasonPowerOnReset                           // UNIT ATTENTION, POWER ON, RESET, OR BUS DEVICE RESET OCCURRED 0x2900
	ReasonLUNsChanged                            // UNIT ATTENTION, REPORTED LUNS DATA HAS CHANGED 0x3F0E
	ReasonCapacityChanged                        // UNIT ATTENTION, CAPACITY DATA HAS CHANGED 0x2A09
	ReasonInternalFailure                        // HARDWARE ERROR, INTERNAL TARGET FAILURE 0x4400
	ReasonAborted                                // ABORTED COMMAND, NO ADDITIONAL SENSE INFORMATION 0x0000
	ReasonMiscompare                             // MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION 0x1D00
	ReasonBusDeviceReset                         // UNIT ATTENTION, BUS DEVICE RESET FUNCTION OCCURRED 0x2903 (LUN RESET)
	ReasonNexusLoss                              // UNIT ATTENTION, I_T NEXUS LOSS OCCURRED 0x2907
	ReasonCommandsCleared                        // UNIT ATTENTION, COMMANDS CLEARED BY ANOTHER INITIATOR 0x2F00
	ReasonModeChanged                            // UNIT ATTENTION, MODE PARAMETERS CHANGED 0x2A01
	ReasonReservationsPreempted                  // UNIT ATTENTION, RESERVATIONS PREEMPTED 0x2A03
	ReasonReservationsReleased                   // UNIT ATTENTION, RESERVATIONS RELEASED 0x2A04
	ReasonRegistrationsPreempted                 // UNIT ATTENTION, REGISTRATIONS PREEMPTED 0x2A05
	ReasonParamNotSupported                      // ILLEGAL REQUEST, PARAMETER NOT SUPPORTED 0x2601
	ReasonParamValueInvalid                      // ILLEGAL REQUEST, PARAMETER VALUE INVALID 0x2602
	ReasonInvalidReleasePR                       // ILLEGAL REQUEST, INVALID RELEASE OF PERSISTENT RESERVATION 0x2604
	ReasonInsufficientRegResources               // ILLEGAL REQUEST, INSUFFICIENT REGISTRATION RESOURCES 0x5504
	ReasonNotReadyManual                         // NOT READY, LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED 0x0403 (detached LU)
	numReasons
)

// reasonRow is one row of the sense table.
type reasonRow struct {
	key       Key
	asc, ascq uint8
	name      string
}

// reasonTable is the one table from Reason to sense key and ASC/ASCQ
// (SPC-4 tables 45 and 46; the same rows as LIO's sense_info_table in
// target_core_transport.c). It is a function over constants, so nothing
// can change it at run time.
func reasonTable(r Reason) reasonRow {
	switch r {
	case ReasonNone:
		return reasonRow{KeyNoSense, 0x00, 0x00, "NO SENSE"}
	case ReasonNotReady:
		return reasonRow{KeyNotReady, 0x04, 0x00, "LOGICAL UNIT NOT READY"}
	case ReasonWriteError:
		return reasonRow{KeyMediumError, 0x0C, 0x00, "WRITE ERROR"}
	case ReasonReadError:
		return reasonRow{KeyMediumError, 0x11, 0x00, "UNRECOVERED READ ERROR"}
	case ReasonInvalidOpcode:
		return reasonRow{KeyIllegalRequest, 0x20, 0x00, "INVALID COMMAND OPERATION CODE"}
	case ReasonInvalidFieldCDB:
		return reasonRow{KeyIllegalRequest, 0x24, 0x00, "INVALID FIELD IN CDB"}
	case ReasonLBAOutOfRange:
		return reasonRow{KeyIllegalRequest, 0x21, 0x00, "LOGICAL BLOCK ADDRESS OUT OF RANGE"}
	case ReasonParamListLength:
		return reasonRow{KeyIllegalRequest, 0x1A, 0x00, "PARAMETER LIST LENGTH ERROR"}
	case ReasonInvalidFieldParam:
		return reasonRow{KeyIllegalRequest, 0x26, 0x00, "INVALID FIELD IN PARAMETER LIST"}
	case ReasonInvalidFieldIU:
		return reasonRow{KeyIllegalRequest, 0x0E, 0x03, "INVALID FIELD IN COMMAND INFORMATION UNIT"}
	case ReasonLUNotSupported:
		return reasonRow{KeyIllegalRequest, 0x25, 0x00, "LOGICAL UNIT NOT SUPPORTED"}
	case ReasonSavingNotSupported:
		return reasonRow{KeyIllegalRequest, 0x39, 0x00, "SAVING PARAMETERS NOT SUPPORTED"}
	case ReasonWriteProtected:
		return reasonRow{KeyDataProtect, 0x27, 0x00, "WRITE PROTECTED"}
	case ReasonSpaceAllocFailed:
		return reasonRow{KeyDataProtect, 0x27, 0x07, "SPACE ALLOCATION FAILED WRITE PROTECT"}
	case ReasonPowerOnReset:
		return reasonRow{KeyUnitAttention, 0x29, 0x00, "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED"}
	case ReasonLUNsChanged:
		return reasonRow{KeyUnitAttention, 0x3F, 0x0E, "REPORTED LUNS DATA HAS CHANGED"}
	case ReasonCapacityChanged:
		return reasonRow{KeyUnitAttention, 0x2A, 0x09, "CAPACITY DATA HAS CHANGED"}
	case ReasonInternalFailure:
		return reasonRow{KeyHardwareError, 0x44, 0x00, "INTERNAL TARGET FAILURE"}
	case ReasonAborted:
		return reasonRow{KeyAbortedCommand, 0x00, 0x00, "ABORTED COMMAND"}
	case ReasonMiscompare:
		return reasonRow{KeyMiscompare, 0x1D, 0x00, "MISCOMPARE DURING VERIFY OPERATION"}
	case ReasonBusDeviceReset:
		return reasonRow{KeyUnitAttention, 0x29, 0x03, "BUS DEVICE RESET FUNCTION OCCURRED"}
	case ReasonNexusLoss:
		return reasonRow{KeyUnitAttention, 0x29, 0x07, "I_T NEXUS LOSS OCCURRED"}
	case ReasonCommandsCleared:
		return reasonRow{KeyUnitAttention, 0x2F, 0x00, "COMMANDS CLEARED BY ANOTHER INITIATOR"}
	case ReasonModeChanged:
		return reasonRow{KeyUnitAttention, 0x2A, 0x01, "MODE PARAMETERS CHANGED"}
	case ReasonReservationsPreempted:
		return reasonRow{KeyUnitAttention, 0x2A, 0x03, "RESERVATIONS PREEMPTED"}
	case ReasonReservationsReleased:
		return reasonRow{KeyUnitAttention, 0x2A, 0x04, "RESERVATIONS RELEASED"}
	case ReasonRegistrationsPreempted:
		return reasonRow{KeyUnitAttention, 0x2A, 0x05, "REGISTRATIONS PREEMPTED"}
	case ReasonParamNotSupported:
		return reasonRow{KeyIllegalRequest, 0x26, 0x01, "PARAMETER NOT SUPPORTED"}
	case ReasonParamValueInvalid:
		return reasonRow{KeyIllegalRequest, 0x26, 0x02, "PARAMETER VALUE INVALID"}
	case ReasonInvalidReleasePR:
		return reasonRow{KeyIllegalRequest, 0x26, 0x04, "INVALID RELEASE OF PERSISTENT RESERVATION"}
	case ReasonInsufficientRegResources:
		return reasonRow{KeyIllegalRequest, 0x55, 0x04, "INSUFFICIENT REGISTRATION RESOURCES"}
	case ReasonNotReadyManual:
		return reasonRow{KeyNotReady, 0x04, 0x03, "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED"}
	}
	return reasonRow{KeyHardwareError, 0x44, 0x00, ""}
}

// Key is the reason's sense key.
func (r Reason) Key() Key { return reasonTable(r).key }

// ASC is the reason's additional sense code and qualifier.
func (r Reason) ASC() (asc, ascq uint8) { row := reasonTable(r); return row.asc, row.ascq }

func (r Reason) String() string {
	if r < numReasons {
		return reasonTable(r).name
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Sense is a command's outcome before it is written as sense data: the
// reason and, for INVALID FIELD IN CDB/PARAMETER LIST, the field pointer of
// the sense-key specific bytes (SPC-4 4.5.2.4.2).
type Sense struct {
	Reason Reason
	// FieldValid sets SKSV: Field (and Bit, when BitValid) point at the
	// offending byte of the CDB (InCDB) or parameter list.
	FieldValid bool
	InCDB      bool   // C/D: the field is in the CDB
	BitValid   bool   // BPV
	Bit        uint8  // bit pointer, 0-7: the most significant bit of the field
	Field      uint16 // byte offset of the field
	// InfoValid sets VALID and INFORMATION (fixed format) or adds an
	// information descriptor: for MISCOMPARE, the offset of the first
	// byte that differed (SBC-3 5.2).
	InfoValid bool
	Info      uint64
}

// invalidParam is INVALID FIELD IN PARAMETER LIST pointing at bit bit of
// byte field of the parameter data.
func invalidParam(field int, bit uint8) Sense {
	return Sense{Reason: ReasonInvalidFieldParam, FieldValid: true, BitValid: true, Bit: bit, Field: uint16(field)}
}

// invalidField is INVALID FIELD IN CDB pointing at bit bit of byte field.
func invalidField(field int, bit uint8) Sense {
	return Sense{Reason: ReasonInvalidFieldCDB, FieldValid: true, InCDB: true, BitValid: true, Bit: bit, Field: uint16(field)}
}

// invalidByte is INVALID FIELD IN CDB pointing at a whole byte (no bit pointer).
func invalidByte(field int) Sense {
	return Sense{Reason: ReasonInvalidFieldCDB, FieldValid: true, InCDB: true, Field: uint16(field)}
}

func (s Sense) sks() (b [3]byte, ok bool) {
	if !s.FieldValid {
		return b, false
	}
	b[0] = 0x80 // SKSV
	if s.InCDB {
		b[0] |= 0x40 // C/D
	}
	if s.BitValid {
		b[0] |= 0x08 | s.Bit&7 // BPV, BIT POINTER
	}
	b[1], b[2] = byte(s.Field>>8), byte(s.Field)
	return b, true
}

// Sense data sizes.
const (
	FixedSenseLen    = 18 // fixed format with ADDITIONAL SENSE LENGTH 10
	DescriptorHdrLen = 8
	sksDescLen       = 8  // sense key specific descriptor (type 0x02)
	infoDescLen      = 12 // information descriptor (type 0x00)
	MaxSenseLen      = 96
)

// PutFixed writes fixed-format sense data (response code 0x70, current
// error; SPC-4 4.5.3, table 48) for s into b and returns the bytes written,
// at most FixedSenseLen and at most len(b).
func PutFixed(b []byte, s Sense) int {
	var f [FixedSenseLen]byte
	row := reasonTable(s.Reason)
	f[0] = 0x70
	f[2] = byte(row.key)
	f[7] = FixedSenseLen - 8 // ADDITIONAL SENSE LENGTH
	f[12], f[13] = row.asc, row.ascq
	if s.InfoValid && s.Info <= 0xFFFFFFFF {
		f[0] |= 0x80 // VALID
		f[3], f[4], f[5], f[6] = byte(s.Info>>24), byte(s.Info>>16), byte(s.Info>>8), byte(s.Info)
	}
	if sks, ok := s.sks(); ok {
		copy(f[15:18], sks[:])
	}
	return copy(b, f[:])
}

// PutDescriptor writes descriptor-format sense data (response code 0x72;
// SPC-4 4.5.2, tables 27 and 32): the header and, when s carries a field
// pointer, a sense key specific descriptor. It returns the bytes written,
// at most len(b).
func PutDescriptor(b []byte, s Sense) int {
	var d [DescriptorHdrLen + infoDescLen + sksDescLen]byte
	row := reasonTable(s.Reason)
	d[0] = 0x72
	d[1] = byte(row.key)
	d[2], d[3] = row.asc, row.ascq
	n := DescriptorHdrLen
	if s.InfoValid {
		d[n] = 0x00   // DESCRIPTOR TYPE: information
		d[n+1] = 0x0A // ADDITIONAL LENGTH
		d[n+2] = 0x80 // VALID
		for i := 0; i < 8; i++ {
			d[n+4+i] = byte(s.Info >> (56 - 8*i))
		}
		n += infoDescLen
	}
	if sks, ok := s.sks(); ok {
		d[n] = 0x02   // DESCRIPTOR TYPE: sense key specific
		d[n+1] = 0x06 // ADDITIONAL LENGTH
		copy(d[n+4:n+7], sks[:])
		n += sksDescLen
	}
	d[7] = byte(n - DescriptorHdrLen) // ADDITIONAL SENSE LENGTH
	return copy(b, d[:n])
}

// ParseSense reads the sense key and ASC/ASCQ back from fixed or
// descriptor sense data; ok is false when b is neither.
func ParseSense(b []byte) (key Key, asc, ascq uint8, ok bool) {
	if len(b) < 1 {
		return 0, 0, 0, false
	}
	switch b[0] & 0x7F {
	case 0x70, 0x71:
		if len(b) < 14 || int(b[7])+8 > len(b) || b[7] < 6 {
			return 0, 0, 0, false
		}
		return Key(b[2] & 0x0F), b[12], b[13], true
	case 0x72, 0x73:
		if len(b) < DescriptorHdrLen || int(b[7])+DescriptorHdrLen > len(b) {
			return 0, 0, 0, false
		}
		return Key(b[1] & 0x0F), b[2], b[3], true
	}
	return 0, 0, 0, false
}
