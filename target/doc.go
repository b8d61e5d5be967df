// Package target is usrpt's SRP target port: it answers logins, keeps the
// I_T nexuses and their channels, and runs every SRP_CMD and SRP_TSK_MGMT
// through the SCSI core (scsi) on per-core reactors (poller), moving data
// with RDMA through the verbs API.
//
// # Login
//
// A connection request carries SRP_LOGIN_REQ (the 56-byte RDMA/CM form, or
// the 64-byte IU for IB CM). It is checked as ib_srpt checks it — REQUEST
// IT IU LENGTH within [64, MaxITIULen], the target port identifier equal
// to IDExt ‖ GUID, buffer formats direct and indirect only — then against
// the ACL groups (initiator port identifier patterns or source addresses)
// and the channel limit of the nexus. The answer is SRP_LOGIN_RSP with the
// credits, the IU sizes, DIRECT|INDIRECT and IMMEDIATE DATA SUPPORTED when
// asked for with a sane offset; or SRP_LOGIN_REJ with the reason. A SINGLE
// login ends the nexus's other channels with SRP_T_LOGOUT (reason 4) and
// answers TERMINATED; MULTI keeps them and answers MAINTAINED. Channels of a
// nexus are spread over the reactors.
//
// # The data path
//
// Each channel lives on one reactor. A request moves through explicit
// states (request.go) in the manner of SPDK's nvmf_rdma_request_process:
// NEW → [NEED_BUFFER → FETCH_TABLE → READING] → EXECUTING → [WAIT_SQ] →
// SENDING → FREE. Data-out arrives as immediate data (used in place, zero
// copy) or by RDMA READs into the reactor's registered buffers, at most as
// many outstanding as the connection negotiated; data-in leaves by RDMA
// WRITEs split at MaxRDMASize, followed by SRP_RSP on the same queue so
// that RC ordering delivers the data first. Work requests of one reactor
// iteration are posted as one chain per channel. Nothing allocates per
// command and nothing takes a lock.
//
// Credits: each SRP_RSP returns 1 plus what aborted commands accumulated;
// when no response is coming, SRP_CRED_REQ carries them (one outstanding
// at most). A command beyond the credits granted is a protocol violation:
// counted, and the channel logged out.
//
// Task management runs on every reactor: in full on the channel's, as
// TMFLocal on the others; requests not yet in the Executor are aborted by
// the transport itself. Aborted commands get no SRP_RSP and return their
// credit in the next delta. The answer comes once every part is back.
//
// Bad input gets the protocol's answer (CHECK CONDITION with INVALID FIELD
// IN COMMAND INFORMATION UNIT, or SRP_T_LOGOUT with the reason, or
// SRP_LOGIN_REJ) and a counter; a closing channel drains everything it has
// outstanding (RDMA, engines) and releases each buffer and credit once.
package target
