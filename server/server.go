// Package server is usrpt serve: a running SRP target built from a Config
// — reactors, engines, LUNs, listeners, ACLs — with live changes (LUNs,
// ACLs, sessions), reload, and a graceful drain. The control socket
// (server/control) and the Prometheus metrics (server/metrics) call its
// methods; cmd/usrpt wires them together.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/target"
	"github.com/usrpt/usrpt/verbs"
	"github.com/usrpt/usrpt/verbs/loop"
)

// ErrNotImplemented marks what is still a stub.
var ErrNotImplemented = errors.New("server: not implemented")

// ErrDrainTimeout is wrapped by Shutdown's error when channels or flushes
// were still outstanding when its context ended: usrpt serve exits 3.
var ErrDrainTimeout = errors.New("server: drain timed out")

// ErrClosed is returned by the live-change methods after Shutdown began.
var ErrClosed = errors.New("server: shut down")

// DefaultShutdownTimeout bounds the drain when target.shutdown_timeout is
// not set.
const DefaultShutdownTimeout = 30 * time.Second

// Server is a running target. Its methods are safe for concurrent use.
type Server struct {
	log   *slog.Logger
	start time.Time
	guid  uint64
	tgt   *target.Target
	fab   *loop.Fabric

	lns    []*listener
	cancel context.CancelFunc // ends the listeners' Serve
	served chan error         // each Serve's result

	mu       sync.Mutex // serializes the control plane: the fields below
	cfg      Config     // in effect: LUNs and ACLs follow the live changes
	luns     map[uint16]*lun
	shutting bool
	shutErr  error
	shutDone chan struct{}
}

type listener struct {
	cfg   ListenerConfig
	ln    verbs.Listener
	login string // the add_target string
}

// New opens every engine, LU and listener of cfg and starts the target's
// reactors, or opens nothing and returns the problems.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "server")
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = withDefaults(cfg)
	tc, guidFrom, err := targetConfig(&cfg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, start: time.Now(), guid: tc.GUID, luns: map[uint16]*lun{}, served: make(chan error, len(cfg.Listeners)), shutDone: make(chan struct{})}
	if guidFrom != "" {
		log.Info("target GUID derived", "guid", fmt.Sprintf("%016x", tc.GUID), "from", guidFrom)
	}
	if s.tgt, err = target.New(tc); err != nil {
		return nil, fmt.Errorf("server: start the target: %w", err)
	}
	fail := func(err error) (*Server, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, l := range s.lns {
			_ = l.ln.Close()
		}
		_ = s.tgt.Close(ctx)
		for _, l := range s.luns {
			_ = l.dev.Close()
		}
		return nil, err
	}
	for i := range cfg.LUNs {
		l, err := openLUN(cfg.LUNs[i], s.guid)
		if err != nil {
			return fail(fmt.Errorf("server: %w", err))
		}
		s.luns[l.cfg.Number] = l
		cfg.LUNs[i] = l.cfg
		if err := s.tgt.AddLUN(l.cfg.Number, l.lu); err != nil {
			return fail(fmt.Errorf("server: LUN %d: %w", l.cfg.Number, err))
		}
	}
	for _, lc := range cfg.Listeners {
		l, err := s.listen(lc)
		if err != nil {
			return fail(fmt.Errorf("server: listen %s %s: %w", lc.Transport, lc.Address, err))
		}
		s.lns = append(s.lns, l)
	}
	s.cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, l := range s.lns {
		go func() { s.served <- s.tgt.Serve(ctx, l.ln) }()
	}
	for _, l := range s.sortedLUNs() {
		i := l.info()
		log.Info("LUN", "lun", i.Number, "backend", i.Backend, "engine", i.Engine, "path", i.Path,
			"size", FormatSize(uint64(i.SizeBytes)), "block_size", i.BlockSize, "write_cache", i.WriteCache, "read_only", i.ReadOnly, "serial", i.Serial)
	}
	for _, l := range s.lns {
		log.Info("listening", "transport", l.cfg.Transport, "address", l.cfg.Address, "add_target", l.login)
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	return s, nil
}

// withDefaults fills in what a configuration may leave out: a loop
// listener (the only transport of this build), the loop address, the
// control socket.
func withDefaults(cfg Config) Config {
	cfg.Listeners = slices.Clone(cfg.Listeners)
	cfg.LUNs = slices.Clone(cfg.LUNs)
	cfg.ACLs = slices.Clone(cfg.ACLs)
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = []ListenerConfig{{Transport: "loop"}}
	}
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Transport == "loop" && cfg.Listeners[i].Address == "" {
			cfg.Listeners[i].Address = DefaultLoopAddress
		}
	}
	if cfg.Control.Socket == "" {
		cfg.Control.Socket = DefaultControlSocket
	}
	if cfg.Target.ShutdownTimeout == 0 {
		cfg.Target.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	return cfg
}

// targetConfig turns the validated [target] table into target.Config;
// guidFrom says where a derived GUID came from.
func targetConfig(cfg *Config, log *slog.Logger) (target.Config, string, error) {
	t := &cfg.Target
	tc := target.Config{MaxChannels: t.ChannelsPerNexus, Credits: t.QueueSize, MaxITIULen: t.MaxIUSize, NoImmData: t.NoImmediateData, Logger: log}
	guidFrom := ""
	var err error
	if t.GUID != "" {
		tc.GUID, _ = ParseGUID(t.GUID)
	} else if tc.GUID, guidFrom, err = deriveGUID(cfg.Listeners); err != nil {
		return tc, "", fmt.Errorf("server: %w", err)
	}
	online, err := onlineCPUs()
	if err != nil {
		return tc, "", fmt.Errorf("server: online CPUs: %w", err)
	}
	if t.Cores != "" {
		tc.CPUs, _ = poller.ParseCoreMask(t.Cores, online)
	} else {
		tc.CPUs = online[:1]
	}
	if t.Idle != "" {
		tc.Idle.Mode, _ = poller.ParseIdleMode(t.Idle)
	}
	if t.MaxRDMASize != "" {
		n, _ := ParseSize(t.MaxRDMASize)
		tc.MaxRDMASize = int(n)
	}
	if t.Hugepages != "" {
		tc.Pages, _ = hugemem.ParsePagePolicy(t.Hugepages)
	}
	tc.ACLs = targetACLs(cfg.ACLs)
	return tc, guidFrom, nil
}

func targetACLs(acls []ACLConfig) []target.ACL {
	out := make([]target.ACL, 0, len(acls))
	for _, a := range acls {
		out = append(out, target.ACL{Name: a.Name, Initiators: slices.Clone(a.Initiators), LUNs: nilIfEmpty(a.LUNs)})
	}
	return out
}

// nilIfEmpty keeps "luns = []" meaning every LUN, as an absent key does:
// target.ACL reads nil as every LUN and an empty list as none.
func nilIfEmpty(l []uint16) []uint16 {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

func (s *Server) listen(lc ListenerConfig) (*listener, error) {
	switch lc.Transport {
	case "loop":
		if s.fab == nil {
			s.fab = loop.NewFabric()
		}
		dev, err := s.fab.NewDevice("usrpt-" + lc.Address)
		if err != nil {
			return nil, err
		}
		ln, err := dev.Listen(lc.Address)
		if err != nil {
			return nil, err
		}
		return &listener{cfg: lc, ln: ln, login: s.tgt.LoginString(lc.Address)}, nil
	default:
		return nil, fmt.Errorf("transport %s is not available in this build yet (issue 8)", lc.Transport)
	}
}

// Run serves until ctx ends, then drains (Shutdown) within the
// configured shutdown timeout. A listener that fails ends the run too.
func (s *Server) Run(ctx context.Context) error {
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.served:
		s.served <- serveErr // Shutdown counts every listener's result
		if serveErr != nil {
			s.log.Error("listener failed", "err", serveErr)
		}
	case <-s.shutDone:
		return s.shutErr
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.Config().Target.ShutdownTimeout))
	defer cancel()
	return errors.Join(serveErr, s.Shutdown(sctx))
}

// Shutdown stops taking logins, lets I/O in flight finish, flushes write
// caches and closes the engines, within ctx. Channels still busy when ctx
// ends are torn down and the error wraps ErrDrainTimeout. A second call
// waits for the first and returns its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		select {
		case <-s.shutDone:
			return s.shutErr
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrDrainTimeout, ctx.Err())
		}
	}
	s.shutting = true
	s.mu.Unlock()
	t0 := time.Now()
	s.log.Info("draining: no new logins; finishing I/O in flight")

	// No new logins: the listeners go first, so a login cannot race the
	// target's logout of every channel.
	var errs []error
	s.cancel()
	for _, l := range s.lns {
		errs = append(errs, l.ln.Close())
	}
	for range s.lns {
		if err := <-s.served; err != nil {
			errs = append(errs, err)
		}
	}
	// target.Close logs every channel out once its commands are done:
	// every SRP_RSP GOOD sent before is for a write the engine has.
	drainTimedOut := false
	if err := s.tgt.Close(ctx); err != nil {
		if ctx.Err() != nil {
			drainTimedOut = true
		}
		errs = append(errs, fmt.Errorf("close the target: %w", err))
	}
	// Write-back LUs acknowledged writes their engine may hold in a cache:
	// flush them before the engine goes. A flush gets its own short
	// deadline even after a timed-out drain, since skipping it would lose
	// acknowledged writes.
	fctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
	}
	s.mu.Lock()
	for _, l := range s.sortedLUNs() {
		if l.lu.WriteCache() || l.cfg.WriteCache {
			if err := l.flush(fctx); err != nil {
				errs = append(errs, err)
				if fctx.Err() != nil {
					drainTimedOut = true
				}
			}
		}
		if err := l.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("LUN %d: close: %w", l.cfg.Number, err))
		}
	}
	s.mu.Unlock()
	err := errors.Join(errs...)
	if drainTimedOut {
		err = fmt.Errorf("%w: %w", ErrDrainTimeout, err)
	}
	if err != nil {
		err = fmt.Errorf("server: shutdown: %w", err)
		s.log.Error("drained with errors", "err", err, "took", time.Since(t0))
	} else {
		s.log.Info("drained", "took", time.Since(t0))
	}
	s.shutErr = err
	close(s.shutDone)
	return err
}

// Done is closed when Shutdown has finished.
func (s *Server) Done() <-chan struct{} { return s.shutDone }

// Config is the configuration in effect: the one New or Reload took, with
// the live LUN and ACL changes since, and defaults filled in.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	c.Listeners, c.LUNs, c.ACLs = slices.Clone(c.Listeners), slices.Clone(c.LUNs), slices.Clone(c.ACLs)
	return c
}

// GUID is the target's 64-bit identifier, as configured or derived.
func (s *Server) GUID() uint64 { return s.guid }

// PortID is the target port identifier initiators must name.
func (s *Server) PortID() [16]byte { return s.tgt.PortID() }

// LoginStrings are ib_srp add_target strings, one per listener.
func (s *Server) LoginStrings() []string {
	out := make([]string, len(s.lns))
	for i, l := range s.lns {
		out[i] = l.login
	}
	return out
}

// Fabric is the in-process fabric of loop listeners (tests and benches
// connect initiators to it); nil without one.
func (s *Server) Fabric() *loop.Fabric { return s.fab }

// Sessions lists the logged-in I_T nexuses with their channels.
func (s *Server) Sessions() []target.SessionInfo { return s.tgt.Sessions() }

// LUNs lists the exported LUNs, by number.
func (s *Server) LUNs() []LUNInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LUNInfo
	for _, l := range s.sortedLUNs() {
		out = append(out, l.info())
	}
	return out
}

func (s *Server) sortedLUNs() []*lun {
	out := make([]*lun, 0, len(s.luns))
	for _, l := range s.luns {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Number < out[j].cfg.Number })
	return out
}

// AddLUN opens and exports a LUN; initiators that see it get REPORTED
// LUNS DATA HAS CHANGED.
func (s *Server) AddLUN(c LUNConfig) (LUNInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return LUNInfo{}, ErrClosed
	}
	if _, ok := s.luns[c.Number]; ok {
		return LUNInfo{}, fmt.Errorf("server: add LUN %d: it exists (remove it first)", c.Number)
	}
	l, err := s.addLUNLocked(c)
	if err != nil {
		return LUNInfo{}, err
	}
	s.cfg.LUNs = append(s.cfg.LUNs, l.cfg)
	return l.info(), nil
}

func (s *Server) addLUNLocked(c LUNConfig) (*lun, error) {
	l, err := openLUN(c, s.guid)
	if err != nil {
		return nil, fmt.Errorf("server: add LUN %d: %w", c.Number, err)
	}
	if err := s.tgt.AddLUN(c.Number, l.lu); err != nil {
		_ = l.dev.Close()
		return nil, fmt.Errorf("server: add LUN %d: %w", c.Number, err)
	}
	s.luns[c.Number] = l
	s.log.Info("LUN added", "lun", c.Number, "backend", c.Backend, "path", c.Path, "engine", l.choice.Engine,
		"size", FormatSize(l.lu.Blocks()*uint64(l.lu.BlockSize())))
	return l, nil
}

// RemoveLUN stops exporting LUN n and closes its engine.
func (s *Server) RemoveLUN(n uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return ErrClosed
	}
	if err := s.removeLUNLocked(n); err != nil {
		return err
	}
	s.cfg.LUNs = slices.DeleteFunc(s.cfg.LUNs, func(c LUNConfig) bool { return c.Number == n })
	return nil
}

func (s *Server) removeLUNLocked(n uint16) error {
	l, ok := s.luns[n]
	if !ok {
		return fmt.Errorf("server: remove LUN %d: no such LUN", n)
	}
	// The target finishes the commands already started on the LU and
	// closes its queues; only then may the engine go.
	err := s.tgt.RemoveLUN(n)
	delete(s.luns, n)
	if err = errors.Join(err, l.close()); err != nil {
		return fmt.Errorf("server: remove LUN %d: %w", n, err)
	}
	s.log.Info("LUN removed", "lun", n)
	return nil
}

// ResizeLUN sets LUN n's capacity; initiators get CAPACITY DATA HAS CHANGED.
// The engine must hold the new size: a LUN can shrink, and grow back up to
// the size its engine was opened with (null and mem: their size; files:
// the file's size at open).
func (s *Server) ResizeLUN(n uint16, sizeBytes int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return ErrClosed
	}
	l, ok := s.luns[n]
	if !ok {
		return fmt.Errorf("server: resize LUN %d: no such LUN", n)
	}
	bs := int64(l.lu.BlockSize())
	if sizeBytes <= 0 || sizeBytes%bs != 0 {
		return fmt.Errorf("server: resize LUN %d: %d bytes is not a positive multiple of the %d-byte block", n, sizeBytes, bs)
	}
	if max := l.dev.Info().SizeBytes; sizeBytes > max {
		return fmt.Errorf("server: resize LUN %d to %s: the engine holds %s; remove and add the LUN with the new size to grow further", n, FormatSize(uint64(sizeBytes)), FormatSize(uint64(max)))
	}
	if err := l.lu.Resize(uint64(sizeBytes / bs)); err != nil {
		return fmt.Errorf("server: resize LUN %d: %w", n, err)
	}
	for i := range s.cfg.LUNs {
		if s.cfg.LUNs[i].Number == n {
			s.cfg.LUNs[i].Size = FormatSize(uint64(sizeBytes))
			l.cfg.Size = s.cfg.LUNs[i].Size
		}
	}
	s.log.Info("LUN resized", "lun", n, "size", FormatSize(uint64(sizeBytes)))
	return nil
}

// ACLs lists the ACL groups.
func (s *Server) ACLs() []ACLConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cfg.ACLs)
}

// AddACL adds (or replaces, by name) an ACL group.
func (s *Server) AddACL(a ACLConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return ErrClosed
	}
	luns := map[uint16]bool{}
	for n := range s.luns {
		luns[n] = true
	}
	if ps := checkACL(&a, luns); len(ps) > 0 {
		for i := range ps {
			ps[i].Key = fmt.Sprintf("acl %q %s", a.Name, ps[i].Key)
		}
		return fmt.Errorf("server: add ACL: %w", &ConfigError{Problems: ps})
	}
	acls := slices.Clone(s.cfg.ACLs)
	if i := slices.IndexFunc(acls, func(x ACLConfig) bool { return x.Name == a.Name }); i >= 0 {
		acls[i] = a
	} else {
		acls = append(acls, a)
	}
	if err := s.tgt.SetACLs(targetACLs(acls)); err != nil {
		return fmt.Errorf("server: add ACL %q: %w", a.Name, err)
	}
	s.cfg.ACLs = acls
	s.log.Info("ACL set", "acl", a.Name, "initiators", a.Initiators, "luns", a.LUNs)
	return nil
}

// RemoveACL removes the ACL group name; its sessions stay until they log out.
func (s *Server) RemoveACL(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return ErrClosed
	}
	i := slices.IndexFunc(s.cfg.ACLs, func(x ACLConfig) bool { return x.Name == name })
	if i < 0 {
		return fmt.Errorf("server: remove ACL %q: no such ACL", name)
	}
	acls := slices.Delete(slices.Clone(s.cfg.ACLs), i, i+1)
	if err := s.tgt.SetACLs(targetACLs(acls)); err != nil {
		return fmt.Errorf("server: remove ACL %q: %w", name, err)
	}
	s.cfg.ACLs = acls
	s.log.Info("ACL removed", "acl", name)
	return nil
}

// Logout ends a session (SessionInfo.ID) with SRP_T_LOGOUT.
func (s *Server) Logout(session uint64) error {
	if err := s.tgt.Logout(session); err != nil {
		return fmt.Errorf("server: logout session %d: %w", session, err)
	}
	return nil
}

// Stats collects the counters.
func (s *Server) Stats() Stats {
	return Stats{Stats: s.tgt.Stats(), Uptime: time.Since(s.start)}
}
