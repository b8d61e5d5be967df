// Package server is usrpt serve: a running SRP target built from a Config
// — reactors, engines, LUNs, listeners, ACLs — with live changes (LUNs,
// ACLs, sessions), reload, and a graceful drain. The control socket
// (server/control) and the Prometheus metrics (server/metrics) call its
// methods; cmd/usrpt wires them together.
package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/usrpt/usrpt/target"
	"github.com/usrpt/usrpt/verbs/loop"
)

// ErrNotImplemented marks what is still a stub.
var ErrNotImplemented = errors.New("server: not implemented")

// Server is a running target. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New opens every engine, LU and listener of cfg and starts the target's
// reactors, or opens nothing and returns the problems.
func New(cfg Config, log *slog.Logger) (*Server, error) { return nil, ErrNotImplemented }

// Run serves until ctx ends, then drains (Shutdown).
func (s *Server) Run(ctx context.Context) error { return ErrNotImplemented }

// Shutdown stops taking logins, lets I/O in flight finish, flushes write
// caches and closes the engines, within ctx.
func (s *Server) Shutdown(ctx context.Context) error { return ErrNotImplemented }

// Reload applies cfg's LUN and ACL differences live.
func (s *Server) Reload(cfg Config) error { return ErrNotImplemented }

// LoginStrings are ib_srp add_target strings, one per listener.
func (s *Server) LoginStrings() []string { return nil }

// Fabric is the in-process fabric of loop listeners (tests and benches
// connect initiators to it); nil without one.
func (s *Server) Fabric() *loop.Fabric { return nil }

// Sessions lists the logged-in I_T nexuses with their channels.
func (s *Server) Sessions() []target.SessionInfo { return nil }

// LUNs lists the exported LUNs, by number.
func (s *Server) LUNs() []LUNInfo { return nil }

// AddLUN opens and exports a LUN; initiators that see it get REPORTED
// LUNS DATA HAS CHANGED.
func (s *Server) AddLUN(c LUNConfig) (LUNInfo, error) { return LUNInfo{}, ErrNotImplemented }

// RemoveLUN stops exporting LUN n and closes its engine.
func (s *Server) RemoveLUN(n uint16) error { return ErrNotImplemented }

// ResizeLUN sets LUN n's capacity; initiators get CAPACITY DATA HAS CHANGED.
func (s *Server) ResizeLUN(n uint16, sizeBytes int64) error { return ErrNotImplemented }

// ACLs lists the ACL groups.
func (s *Server) ACLs() []ACLConfig { return nil }

// AddACL adds (or replaces, by name) an ACL group.
func (s *Server) AddACL(a ACLConfig) error { return ErrNotImplemented }

// RemoveACL removes the ACL group name; its sessions stay until they log out.
func (s *Server) RemoveACL(name string) error { return ErrNotImplemented }

// Logout ends a session (SessionInfo.ID) with SRP_T_LOGOUT.
func (s *Server) Logout(session uint64) error { return ErrNotImplemented }

// Stats collects the counters.
func (s *Server) Stats() Stats { return Stats{} }
