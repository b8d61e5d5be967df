// Package scsi is usrpt's SCSI target core: it decodes CDBs, emulates the
// SPC-4/SBC-3 commands whose data the target makes up, and executes data
// commands through an ioengine.Queue. It knows nothing of SRP or any other
// transport, and imports only the standard library and ioengine's
// interface (internal/archtest enforces it).
//
// The shape is LIO's (target_core_sbc.c, target_core_spc.c): decode checks
// every field of the CDB (reserved bits, the CONTROL byte, allocation
// lengths, LBA plus length with one overflow-safe range check) and yields
// a command or a Sense; execute runs the command. One table (reasonTable)
// maps a Reason to sense key and ASC/ASCQ; PutFixed and PutDescriptor write
// it as fixed (0x70) or descriptor (0x72) sense into the caller's buffer.
//
// An LU (NewLU) is a direct-access block device over an ioengine.Device.
// An Executor belongs to one reactor: it holds that reactor's queue of each
// LU, a fixed pool of ioengine.Requests, and returns finished Tasks from
// Poll. Tasks and their buffers are the caller's; the READ/WRITE path
// allocates nothing (TestZeroAllocs, BenchmarkRead4K).
//
// # What this slice covers (issue 4, first slice)
//
//   - READ/WRITE 6/10/12/16, with FUA, write-through by default (every
//     write FUA) and write-back with WCE (SYNCHRONIZE CACHE 10/16 flushes);
//     VERIFY 10/16 with BYTCHK=0 (a range check); TEST UNIT READY; START
//     STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL accepted as no-ops.
//   - INQUIRY: standard data (SPC-4, HiSup, CmdQue) and VPD 0x00, 0x80,
//     0x83 (NAA IEEE Registered Extended and T10 vendor ID designators),
//     0xB0, 0xB1 (non-rotating) and 0xB2.
//   - READ CAPACITY 10/16, REQUEST SENSE (never pending sense: SRP carries
//     sense with every CHECK CONDITION), REPORT LUNS (peripheral and flat
//     addressing), MODE SENSE 6/10 with the caching, control and
//     informational exceptions pages, every page control but saved.
//   - Engine errors: EIO or a short transfer is MEDIUM ERROR (UNRECOVERED
//     READ ERROR or WRITE ERROR), ENOSPC is SPACE ALLOCATION FAILED WRITE
//     PROTECT, EROFS WRITE PROTECTED, anything else INTERNAL TARGET FAILURE.
//
// # What remains of issue 4
//
//   - Task attributes are recorded, not honoured: every task runs as it
//     arrives. ORDERED/HEAD OF QUEUE, ACA, and the task management
//     functions (ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LUN RESET,
//     I_T NEXUS RESET) come with task set management.
//   - Unit attentions per I_T nexus (the Reasons exist; nothing raises them).
//   - Reservations: PERSISTENT RESERVE IN/OUT, RESERVE/RELEASE 6/10.
//   - UNMAP, WRITE SAME 10/16, COMPARE AND WRITE, WRITE AND VERIFY 10/16,
//     VERIFY with BYTCHK, MODE SELECT 6/10, REPORT SUPPORTED OPERATION
//     CODES and TASK MANAGEMENT FUNCTIONS, REPORT TARGET PORT GROUPS.
//     Until UNMAP and WRITE SAME exist, thin provisioning is not advertised
//     (advertiseThin in lu.go): VPD 0xB2 and READ CAPACITY(16) report a
//     fully provisioned disk, so the Linux sd driver never sends UNMAP.
//   - VPD 0x86, and the relative target port and target port group
//     designators of VPD 0x83 (they need the port, which is the target's).
//   - The REPORT LUNS well-known LUN; the conformance set after libiscsi's
//     test-tool topics.
package scsi
