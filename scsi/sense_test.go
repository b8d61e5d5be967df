package scsi_test

import (
	"testing"

	"github.com/usrpt/usrpt/scsi"
)

func TestReasonTable(t *testing.T) {
	for _, tc := range []struct {
		r    scsi.Reason
		key  scsi.Key
		code uint16
	}{
		{scsi.ReasonNone, scsi.KeyNoSense, 0x0000},
		{scsi.ReasonNotReady, scsi.KeyNotReady, 0x0400},
		{scsi.ReasonWriteError, scsi.KeyMediumError, 0x0C00},
		{scsi.ReasonReadError, scsi.KeyMediumError, 0x1100},
		{scsi.ReasonInvalidOpcode, scsi.KeyIllegalRequest, 0x2000},
		{scsi.ReasonInvalidFieldCDB, scsi.KeyIllegalRequest, 0x2400},
		{scsi.ReasonLBAOutOfRange, scsi.KeyIllegalRequest, 0x2100},
		{scsi.ReasonParamListLength, scsi.KeyIllegalRequest, 0x1A00},
		{scsi.ReasonInvalidFieldParam, scsi.KeyIllegalRequest, 0x2600},
		{scsi.ReasonInvalidFieldIU, scsi.KeyIllegalRequest, 0x0E03},
		{scsi.ReasonLUNotSupported, scsi.KeyIllegalRequest, 0x2500},
		{scsi.ReasonSavingNotSupported, scsi.KeyIllegalRequest, 0x3900},
		{scsi.ReasonWriteProtected, scsi.KeyDataProtect, 0x2700},
		{scsi.ReasonSpaceAllocFailed, scsi.KeyDataProtect, 0x2707},
		{scsi.ReasonPowerOnReset, scsi.KeyUnitAttention, 0x2900},
		{scsi.ReasonLUNsChanged, scsi.KeyUnitAttention, 0x3F0E},
		{scsi.ReasonCapacityChanged, scsi.KeyUnitAttention, 0x2A09},
		{scsi.ReasonInternalFailure, scsi.KeyHardwareError, 0x4400},
		{scsi.ReasonAborted, scsi.KeyAbortedCommand, 0x0000},
		{scsi.ReasonMiscompare, scsi.KeyMiscompare, 0x1D00},
	} {
		asc, ascq := tc.r.ASC()
		if tc.r.Key() != tc.key || uint16(asc)<<8|uint16(ascq) != tc.code {
			t.Errorf("%v: key %#x code %02x%02x, want %#x %04x", tc.r, tc.r.Key(), asc, ascq, tc.key, tc.code)
		}
		if tc.r.String() == "" {
			t.Errorf("Reason(%d) has no name", tc.r)
		}
	}
}

func TestSenseGolden(t *testing.T) {
	field := scsi.Sense{Reason: scsi.ReasonInvalidFieldCDB, FieldValid: true, InCDB: true, BitValid: true, Bit: 7, Field: 1}
	for _, tc := range []struct {
		name string
		s    scsi.Sense
		desc bool
	}{
		{"sense_fixed_read_error", scsi.Sense{Reason: scsi.ReasonReadError}, false},
		{"sense_fixed_invalid_field", field, false},
		{"sense_desc_space_alloc", scsi.Sense{Reason: scsi.ReasonSpaceAllocFailed}, true},
		{"sense_desc_invalid_field", field, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b [scsi.MaxSenseLen]byte
			var n int
			if tc.desc {
				n = scsi.PutDescriptor(b[:], tc.s)
			} else {
				n = scsi.PutFixed(b[:], tc.s)
			}
			golden(t, tc.name, b[:n])
			k, asc, ascq, ok := scsi.ParseSense(b[:n])
			wasc, wascq := tc.s.Reason.ASC()
			if !ok || k != tc.s.Reason.Key() || asc != wasc || ascq != wascq {
				t.Errorf("ParseSense = %v %#x %#x %v", k, asc, ascq, ok)
			}
		})
	}
	// Short buffers get a prefix, never a panic.
	var small [5]byte
	if n := scsi.PutFixed(small[:], field); n != 5 {
		t.Errorf("PutFixed into 5 bytes = %d", n)
	}
	if n := scsi.PutDescriptor(small[:], field); n != 5 {
		t.Errorf("PutDescriptor into 5 bytes = %d", n)
	}
}

func TestLUNEncoding(t *testing.T) {
	for _, tc := range []struct {
		n   uint16
		lun uint64
	}{{0, 0}, {1, 0x0001 << 48}, {255, 0x00FF << 48}, {256, 0x4100 << 48}, {16383, 0x7FFF << 48}} {
		l, ok := scsi.EncodeLUN(tc.n)
		if !ok || l != tc.lun {
			t.Errorf("EncodeLUN(%d) = %#x %v, want %#x", tc.n, l, ok, tc.lun)
		}
		n, ok := scsi.DecodeLUN(l)
		if !ok || n != tc.n {
			t.Errorf("DecodeLUN(%#x) = %d %v", l, n, ok)
		}
	}
	if _, ok := scsi.EncodeLUN(16384); ok {
		t.Error("EncodeLUN(16384) ok")
	}
	for _, l := range []uint64{0x0101 << 48, 0x8000 << 48, 0xC000 << 48, 1} {
		if _, ok := scsi.DecodeLUN(l); ok {
			t.Errorf("DecodeLUN(%#x) ok", l)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{scsi.StatusCheckCondition.String(), "CHECK CONDITION"},
		{scsi.StatusTaskSetFull.String(), "TASK SET FULL"},
		{scsi.Status(0x40).String(), "TASK ABORTED"},
		{scsi.Status(0x60).String(), "Status(0x60)"},
		{scsi.Read16.String(), "READ(16)"},
		{scsi.ServiceActionIn16.String(), "SERVICE ACTION IN(16)"},
		{scsi.Opcode(0xC0).String(), "Opcode(0xc0)"},
		{scsi.ReasonLBAOutOfRange.String(), "LOGICAL BLOCK ADDRESS OUT OF RANGE"},
		{scsi.Reason(200).String(), "Reason(200)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseSenseRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0x70, 0, 5}, // fixed, too short
		{0x70, 0, 5, 0, 0, 0, 0, 40, 0, 0, 0, 0, 0x24, 0}, // additional length past the end
		{0x72, 5, 0x24},                // descriptor, too short
		{0x72, 5, 0x24, 0, 0, 0, 0, 8}, // descriptor length past the end
		{0x7F, 0, 0, 0, 0, 0, 0, 0},    // vendor specific format
	} {
		if _, _, _, ok := scsi.ParseSense(b); ok {
			t.Errorf("ParseSense(% x) ok", b)
		}
	}
}
