// Package loop is an in-process RDMA fabric: verbs devices that live in one
// process and move data by memory copy between registered regions. It is the
// backend of unit tests, benchmarks and the single-process demo, and the
// reference the conformance suite (verbs/verbstest) holds the other backends
// to, so it keeps the semantics of a real HCA wherever they can be observed:
// key, range and access checks on every SGE and every RDMA operation, error
// completions that move the QP (and for remote errors the peer's QP) to the
// error state, flushes in order, RNR retries, queue limits, and the
// RESET → INIT → RTR → RTS state machine of ibv_modify_qp.
//
// # Data path
//
// Work executes on the thread that posts it: PostSend copies the data into
// the peer's region, consumes the peer's receive and pushes the peer's
// receive completion and the sender's own send completion, all before it
// returns. No goroutine runs per operation and nothing allocates in steady
// state. A completion queue is an internal/ring MPSC ring (several senders
// may complete into one CQ); a QP's receive queue is an SPSC ring whose
// producer is the QP's owner. Its consumer side (the peer's sender, and the
// QP's own receive CQ poller when it flushes) is serialised by a small
// mutex, uncontended in a point-to-point connection; with an SRQ every QP
// that shares it contends on that mutex, which is acceptable in a test
// fabric. A QP's send queue is guarded by a mutex too, because RNR retries
// and flushes are driven from the send CQ's Poll, which may run on another
// reactor than the QP's poster; it is taken once per PostSend batch and is
// uncontended when one reactor both posts and polls, as usual.
//
// Send queue slots follow the hardware: a send WR holds its slot until its
// completion, or a later signaled one of the same QP, is polled. A QP that
// posts only unsignaled WRs therefore fills up (ErrQueueFull).
//
// # Units and choices
//
//   - RNR: a SEND (or RDMA WRITE with immediate) that finds no receive at the
//     peer waits and is retried from the sender's send CQ Poll. The wait is
//     counted in Polls of that CQ: the peer's MinRNRTimer value (IB encoding
//     1-31, 0 counted as 32). RNRRetry 7 retries forever; otherwise after
//     RNRRetry retries the WR completes with WCRNRRetryExcErr and the QP
//     goes to ERR. Later WRs wait behind the stalled one (RC ordering).
//   - A send to a peer QP that is not in RTR or RTS (gone, reset, in error)
//     completes with WCRetryExcErr at once, as a dropped packet would after
//     the transport retries; the QP goes to ERR.
//   - SEND_WITH_INV delivers InvRKey with WCWithInv; loop has no memory
//     windows or fast-registration MRs, so nothing is invalidated.
//   - RDMA READs complete at post time; MaxRdAtomic and MaxDestRdAtomic are
//     negotiated and checked against the device limits but never wait.
//     Remote read needs AccessRemoteRead on the responder's QP, which the
//     connection manager grants (as rdma_cm) only when the responder
//     negotiated ResponderResources > 0.
//   - Zero-length SGEs and zero-length RDMA operations are not checked
//     against any key (they touch no memory).
//   - Capacities are rounded up to a power of two for the rings: a CQ holds
//     at least the entries asked for, maybe more; a receive queue refuses a
//     receive beyond MaxRecvWR outstanding (conservatively: a receive just
//     consumed by the peer may still count for an instant).
//   - CQ overflow: a completion that finds its CQ full is lost, the CQ is in
//     error for good (it accepts nothing more), and every QP using it goes
//     to ERR. Poll returns what the ring still holds and then, once, a
//     completion with Status WCFatalErr, ID 0 and QPN 0 (libibverbs reports
//     IBV_EVENT_CQ_ERR as an asynchronous event instead; verbs has no
//     asynchronous events, so it travels in the CQ). Then Poll returns 0.
//   - QPNs are unique in the fabric, so QPs can also be connected by hand
//     with Modify (RTR's DestQPN names the peer), without the CM.
//
// # Connection manager
//
// Listen addresses are any strings, unique per fabric (ErrAddrInUse).
// Connect and Accept move the QPs through INIT, RTR and RTS as rdma_cm does
// (the acceptor reaches RTR before the connector reaches RTS, so nothing the
// connector sends is lost), negotiate ResponderResources and InitiatorDepth
// (the minimum of what each side allows), and carry private data: at most
// 196 bytes in a request or an accept, 148 in a reject, as IB CM. Done is
// closed by Disconnect from either side, by Drop, and by closing either QP.
//
// # Fault injection
//
// Drop breaks a connection as if the link died; FailNext makes the next
// send work requests of a QP complete with a chosen status; DelayCompletions
// holds a CQ's completions back for a number of Polls. See each function.
package loop
