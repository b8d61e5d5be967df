// Package null is usrpt's nullio engine, after SCST's nullio: a device of a
// given size that completes every request at the next Poll without moving a
// byte. Reads leave the caller's buffer as it was; writes, flushes, discards
// and write-zeroes change nothing. It is the ceiling of the data path: what the
// target, the transport and the reactors cost with no storage under them.
//
// Requests are still checked with ioengine.CheckRange, so an out-of-range or
// overflowing request completes with EINVAL exactly as on a real engine, and
// an unknown operation with EOPNOTSUPP. Offsets and lengths need not be
// block-aligned.
//
// Ownership follows package ioengine: a Device may be shared by reactors, and
// each reactor opens its own Queue. A Queue completes requests into a
// fixed-capacity ring allocated by NewQueue, so Submit and Poll never allocate
// and never block.
package null
