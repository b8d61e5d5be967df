// Package enginetest is the conformance suite every ioengine engine passes,
// and the helpers to write an engine's own tests and benchmarks with.
//
// An engine's test calls Run with a function that opens a fresh device and
// Options that say what the engine can do:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, func(t *testing.T) ioengine.Device {
//			d, err := mem.Open(8<<20, 512)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return d
//		}, enginetest.Options{PersistsData: true, ZeroesDiscard: true, MaxDepth: mem.MaxDepth})
//	}
//
// Run checks the contract of package ioengine: Info and Supports agree;
// written data reads back (FUA too); flush, discard and write-zeroes behave;
// out-of-range and overflowing requests complete with EINVAL and unsupported
// operations with EOPNOTSUPP, never a panic; a queue takes exactly its free
// depth, returns every request exactly once with its User cookie intact, and
// never blocks; queues on two goroutines share a device; faults injected by
// package faulty arrive as typed results; and a submit-and-poll cycle in
// steady state allocates nothing.
//
// Buffers come from internal/hugemem, 4096-aligned and off the Go heap, and
// every offset and length the suite uses is a multiple of the device's block
// size, so the same suite runs against O_DIRECT engines.
package enginetest
