// Package control is usrpt serve's control socket: JSON-RPC 2.0 over a unix
// socket, in the manner of SPDK's RPC server, and the client usrpt ctl uses.
//
// # Wire
//
// A connection carries JSON values one after another: SPDK's rpc.py sends
// one object and waits, scripts send newline-delimited objects, and a
// client may send a single object with no newline and shut its side down.
// Each value is a request object or a batch (an array of them); each gets
// its response on the same connection, in order, followed by a newline.
// Notifications (no "id") get none. Params are an object decoded strictly:
// an unknown member is -32602, as SPDK's spdk_json_decode_object refuses
// one. A value larger than the request cap (1 MiB), or one not finished
// within the read timeout, ends the connection after an error response.
//
// # Methods
//
// get_sessions, get_luns, get_acls and get_stats read; lun_add,
// lun_remove, lun_resize, acl_add, acl_remove and session_logout change
// the running target (docs/control.md has each one's params and result).
// The package owns its wire types (LUN, ACL, the *Params structs) so that
// the JSON stays snake_case whatever the server's Go types look like.
//
// # Socket
//
// Serve creates the socket's directory, refuses a path where a server
// answers, replaces a stale socket, and publishes the new one with mode
// 0600 by binding a temporary name, changing its mode and renaming it into
// place, so that no other user can connect in between.
package control
