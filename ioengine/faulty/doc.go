// Package faulty wraps an ioengine.Device and injects faults into the
// requests that pass through it, for tests of everything above storage: the
// conformance suite, and the SCSI layer's handling of medium errors, full
// disks, short transfers and slow completions.
//
// A Rule selects requests (by operation, by byte range, every Nth, or with a
// seeded probability) and says what happens to them: complete with an errno
// without reaching the device, report a short transfer (half the bytes), or
// hold the completion back for a number of Polls. Rules are tried in order and
// the first that fires decides; a request no rule fires on passes through
// untouched. Counters say how many faults were injected.
//
// The wrapper never loses a request: every request Submit accepts comes back
// from Poll exactly once, with its Buf, User and Offset as the caller left
// them. It keeps the inner engine's contract otherwise: Submit and Poll never
// block and do not allocate, and a Queue has one owner. Rule state (the
// every-Nth counters, the random streams and the counters) is per Device and
// shared by its queues, so one queue sees a reproducible sequence of faults;
// several queues at once share it in whatever order they reach it.
package faulty
