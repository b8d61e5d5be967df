// Package initiator is a user-space SRP initiator on the verbs API: the
// load generator of usrpt's benchmark and the peer of the target's tests.
// It speaks to a target as Linux ib_srp does wherever a target could tell
// the difference (reference §A.4–A.8):
//
//   - Login (SRP r16a 6.2; the RDMA/CM private-data form of SRP_LOGIN_REQ):
//     tag 0, REQUEST IT IU LENGTH max(48+16+20+cmd_sg_entries×16,
//     68+max_imm_data) — 8260 with the defaults — capped by max_it_iu_size,
//     REQUIRED BUFFER FORMATS DIRECT|INDIRECT, channel 0 with MULTI-CHANNEL
//     ACTION SINGLE and the others MULTI, IMMED_REQUESTED with immediate
//     data at offset 68 unless NoImmData. The CM request asks for
//     responder resources (the target RDMA-READs data-out from us), RNR
//     retry 7 (infinite) and transport retry 7. A LOGIN_REJ is a *LoginError.
//   - Credits (SRP r16a 6.9): the LOGIN_RSP's REQ_LIM_DELTA, then each
//     SRP_RSP's, SRP_CRED_REQ's and SRP_AER_REQ's. Each SRP_CMD and
//     SRP_TSK_MGMT uses one; commands leave the last one to task management
//     (SRP_TSK_MGMT_SQ_SIZE), the queue is min(QueueSize, credits − 1)
//     (can_queue), and a Submit cut short by credits counts as a stall
//     (zero_req_lim). SRP_CRED_RSP and SRP_AER_RSP use none.
//   - Data: one segment is a direct descriptor, several an indirect table
//     carried whole in the IU (the target never reads a partial table);
//     a data-out of at most MaxImmData goes as immediate data (SRP-2) when
//     the LOGIN_RSP set IMMED_SUPPORTED and the IU has room.
//   - The channel ends on SRP_T_LOGOUT, a disconnect or an error
//     completion; its commands fail with ErrChannelClosed. Reconnect logs
//     every channel in again, SINGLE first, and fails what was in flight
//     with ErrReset, as srp_reconnect_target.
//
// # Shape
//
// Login returns a Session: one I_T nexus with Config.Channels Channels,
// one PD, and the data memory registered with Session.RegMR (hugemem
// regions: the target reads and writes them by RDMA). The Session is
// control plane. A Channel is data plane and belongs to one reactor:
// Submit builds SRP_CMD/SRP_TSK_MGMT IUs in the channel's own registered
// IU memory and posts them as one chain; Poll reaps the CQ, matches each
// SRP_RSP to its command by tag, answers target requests and posts the
// receives again. Neither allocates (TestZeroAllocs), nor does either
// start a goroutine; the package starts none at all.
//
// Tags are slot | generation<<32 (srp.TagOf): unique among a channel's
// outstanding commands, and a late SRP_RSP for a slot that has been
// reused does not match (it is counted in ChannelStats.UnknownTags and
// its credits are taken, as ib_srp does).
//
// # Ownership
//
// A Command and its buffers belong to the channel from Submit until Poll
// returns it. A per-channel mutex, uncontended in steady state, lets
// Logout and Reconnect run on another goroutine while the reactor polls;
// after Logout, Submit fails commands and Poll hands back what finished.
package initiator
