// Package srp is the SCSI RDMA Protocol wire codec: the information units
// (IUs) of SRP r16a (T10/1415-D) and SRP-2's immediate data, as Linux
// include/scsi/srp.h lays them out. It parses IUs an initiator sends
// (SRP_LOGIN_REQ in both wire forms, SRP_CMD, SRP_TSK_MGMT, SRP_I_LOGOUT,
// SRP_CRED_RSP, SRP_AER_RSP) and builds those a target sends (SRP_LOGIN_RSP,
// SRP_LOGIN_REJ, SRP_RSP, SRP_T_LOGOUT, SRP_CRED_REQ, SRP_AER_REQ), and the
// other way round for an initiator. It does no I/O, holds no state and
// imports only the standard library (internal/archtest enforces it).
//
// # Shape
//
// Each IU has a Go type (Cmd, LoginReq, Rsp, ...), a ParseX(b) that checks
// b and decodes it, and a Put(b) method that writes it into the caller's
// buffer and returns its length (0 when b is too short). Slices in a
// parsed value (Cmd.CDB, DataBuf.List, Rsp.Sense, ...) alias b. Parsing an
// SRP_CMD and building an SRP_RSP allocate nothing (TestZeroAllocs).
// Summary formats any IU for logs.
//
// # Byte order and tags
//
// Every multi-byte field is big-endian, except the 8-byte tag: it is
// opaque (srp.h declares it u64, and the Linux initiator stores a
// host-order number), so Tag is [8]byte and is copied from request to
// answer byte for byte. Tag.Uint64 and TagOf convert with a fixed
// little-endian order and round-trip exactly. LUNs are the 8-byte SAM LUN
// as a big-endian uint64, as scsi.Task.LUN takes them.
//
// # Errors
//
// Parsers never panic. Every length, offset and count from the peer is
// checked with arithmetic that cannot overflow before it is used, and a
// failure is an Error: a small integer naming the rule, which allocates
// nothing when returned. Error.Answer says what the target answers:
//
//   - AnswerTLogout: the IU cannot be trusted (too short, unknown type,
//     CDB or descriptors past its end, reserved buffer format); send
//     SRP_T_LOGOUT with Error.TLogout (2, 5, 6 or 8) and close the channel.
//   - AnswerCheckCondition: the IU is framed but its descriptors do not
//     agree (counts, indirect table, lengths, immediate offset); answer
//     the tag with CHECK CONDITION, INVALID FIELD IN COMMAND INFORMATION
//     UNIT (scsi.ReasonInvalidFieldIU).
//   - AnswerLoginRej: from the login parsers; send SRP_LOGIN_REJ with
//     Error.LoginRej.
//
// Policy stays with the caller: which buffer formats and lengths the
// target accepts, task attributes (unknown ones are ORDERED for both
// Linux targets), unknown task management functions (answered with
// RSP_CODE TMFNotSupported), and partial indirect tables
// (DataBuf.Partial). docs/srp.md has the tables.
package srp
