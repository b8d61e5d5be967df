// Package syncq is the completion queue of the synchronous engines, null and
// mem: engines that carry out every request at once, inside Submit, and so
// need no submission ring, no worker and no wait descriptor, only somewhere
// to keep finished requests until the reactor polls them.
//
// A Queue is a ring of Depth slots. Submit runs the engine's exec function on
// each request it accepts and parks the request in the next slot; Poll hands
// requests back in submission order. Every accepted request holds a slot
// until then, so the ring never overflows, and Submit and Poll never allocate
// and never block. WaitFD is -1: completions are ready as soon as Submit
// returns.
//
// The engine is reached through two func values given to New (method values
// of its Device, bound once per queue), not an interface, so that the
// engines' Device types need no extra exported methods. Nothing is allocated
// per request; the price is one indirect call per request, about a
// nanosecond, which shows only on null's benchmarks.
package syncq
