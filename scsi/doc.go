// Package scsi is usrpt's SCSI target core: it decodes CDBs, emulates the
// SPC-4/SBC-3 commands whose data the target makes up, keeps the state
// every I_T nexus shares (unit attentions, reservations, mode parameters),
// and executes data commands through an ioengine.Queue. It knows nothing
// of SRP or any other transport, and imports only the standard library
// and ioengine's interface (internal/archtest enforces it).
//
// The shape is LIO's (target_core_sbc.c, target_core_spc.c): decode checks
// every field of the CDB (reserved bits, the CONTROL byte, allocation
// lengths, LBA plus length with one overflow-safe range check) and yields
// a command or a Sense; execute runs the command. One table (reasonTable)
// maps a Reason to sense key and ASC/ASCQ; PutFixed and PutDescriptor write
// it as fixed (0x70) or descriptor (0x72) sense into the caller's buffer.
//
// # Objects
//
//   - LU (NewLU): a direct-access block device over an ioengine.Device,
//     shared by every reactor. What may change while it runs (capacity,
//     WCE, D_SENSE, reservations) is read with atomics on the data path.
//   - Nexus (NewNexus): an I_T nexus, made by the transport at login. It
//     carries the initiator's TransportID, the target port, the LUN map
//     (the ACL's view) and, per LU, the unit attentions pending for it,
//     which any goroutine may establish and exactly one command reports.
//   - Executor (NewExecutor, Attach): one per reactor. It holds that
//     reactor's queue on each LU, a fixed pool of engine requests, the task
//     set of each LU as seen from the reactor, and returns finished Tasks
//     from Poll. Tasks and their buffers are the caller's; READ and WRITE
//     allocate nothing (TestZeroAllocs, BenchmarkRead4K), nor do the other
//     data commands (TestSBCZeroAllocs).
//
// # Commands
//
// TEST UNIT READY; INQUIRY with VPD 0x00, 0x80, 0x83, 0x86, 0xB0, 0xB1,
// 0xB2; REQUEST SENSE; REPORT LUNS with the well-known LUN; READ CAPACITY
// 10/16; READ/WRITE 6/10/12/16; WRITE AND VERIFY 10/16; VERIFY 10/16 with
// BYTCHK 0, 1 and 3; SYNCHRONIZE CACHE 10/16; UNMAP; WRITE SAME 10/16 with
// UNMAP; COMPARE AND WRITE; MODE SENSE/SELECT 6/10; START STOP UNIT;
// PREVENT ALLOW MEDIUM REMOVAL; REPORT SUPPORTED OPERATION CODES and TASK
// MANAGEMENT FUNCTIONS; REPORT TARGET PORT GROUPS; PERSISTENT RESERVE
// IN/OUT; RESERVE/RELEASE 6/10. Anything else is INVALID COMMAND OPERATION
// CODE. docs/scsi.md has the details and the limits.
//
// # Coordination between reactors
//
// Nothing on the data path takes a lock. Unit attentions are bit sets set
// and taken with atomics. Reservations are an immutable snapshot behind an
// atomic pointer, replaced under a mutex only by reservation commands.
// COMPARE AND WRITE claims its range in a small per-LU table and waits
// until every reactor's writes to the range have drained; writes count
// themselves and check the table with sequentially consistent atomics, so
// one of the two always sees the other (sbc.go). Task management that
// spans reactors is the transport's to fan out: it runs the function on
// one Executor and as TMFLocal on the others.
package scsi
