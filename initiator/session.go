package initiator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// ErrSessionClosed is what Reconnect and RegMR return after Logout.
var ErrSessionClosed = errors.New("initiator: session logged out")

// Session is one SRP I_T nexus: Config.Channels RDMA channels to one
// target port, sharing a protection domain and the data memory registered
// with RegMR. Its methods are control plane and safe from any goroutine;
// each Channel belongs to one reactor.
type Session struct {
	dev  verbs.Device
	addr string
	cfg  Config // with defaults
	pd   verbs.PD

	// mrs is the registered data memory Submit looks data up in. It is
	// replaced, never changed, so the data path reads it with one atomic
	// load and no lock while RegMR runs on another goroutine.
	mrs atomic.Pointer[[]memRegion]

	mu     sync.Mutex // RegMR, Logout, Reconnect
	mrList []verbs.MR
	chans  []*Channel
	closed bool
}

// memRegion is one registered data region, as Submit needs it.
type memRegion struct {
	start, end uint64
	rkey       uint32
}

// Login connects cfg.Channels channels to the target listening at addr on
// dev: channel 0 with MULTI-CHANNEL ACTION SINGLE (the target ends the
// nexus's other channels, as after an ib_srp reconnect), the others MULTI.
// A LOGIN_REJ comes back as *LoginError. Each channel gets its own QP and
// CQ in the session's PD, and its own memory for IUs.
func Login(ctx context.Context, dev verbs.Device, addr string, cfg Config) (*Session, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if [8]byte(cfg.InitiatorPortID[8:]) == ([8]byte{}) {
		gid := dev.Attr().GID
		copy(cfg.InitiatorPortID[8:], gid[8:])
	}
	pd, err := dev.AllocPD()
	if err != nil {
		return nil, fmt.Errorf("initiator: allocate PD: %w", err)
	}
	s := &Session{dev: dev, addr: addr, cfg: cfg, pd: pd}
	s.mrs.Store(&[]memRegion{})
	s.chans = make([]*Channel, cfg.Channels)
	for i := range s.chans {
		s.chans[i] = newChannel(s, i)
	}
	if err := s.connectAll(ctx); err != nil {
		_ = s.Logout()
		return nil, err
	}
	return s, nil
}

// connectAll logs every channel in, in order, and stops at the first
// failure (the channels already up stay up for the caller to tear down).
func (s *Session) connectAll(ctx context.Context) error {
	for _, c := range s.chans {
		cc, err := c.connect(ctx)
		if err != nil {
			c.mu.Lock()
			c.state, c.err = stateClosed, err
			c.mu.Unlock()
			return err
		}
		c.mu.Lock()
		c.install(cc)
		c.mu.Unlock()
	}
	return nil
}

// Channels returns the session's channels, in login order. The slice and
// the Channels stay the same across Reconnect.
func (s *Session) Channels() []*Channel { return s.chans }

// Config returns the session's configuration with the defaults filled in.
func (s *Session) Config() Config { return s.cfg }

// LoginRsp returns what the target answered for channel ch at its last
// successful login (kept after Logout).
func (s *Session) LoginRsp(ch int) srp.LoginRsp {
	c := s.chans[ch]
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastRsp
}

// RegMR registers data memory (from internal/hugemem) for local access and
// remote read and write by the target, once; every Command's data must lie
// inside a region registered here (Submit fails the command otherwise).
// The regions live until Logout, across Reconnect.
func (s *Session) RegMR(buf []byte) (verbs.MR, error) {
	if len(buf) == 0 {
		return nil, fmt.Errorf("initiator: register empty buffer: %w", verbs.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSessionClosed
	}
	mr, err := s.pd.RegMR(buf, verbs.AccessLocalWrite|verbs.AccessRemoteRead|verbs.AccessRemoteWrite)
	if err != nil {
		return nil, fmt.Errorf("initiator: register %d bytes: %w", len(buf), err)
	}
	s.mrList = append(s.mrList, mr)
	old := *s.mrs.Load()
	next := make([]memRegion, len(old), len(old)+1)
	copy(next, old)
	next = append(next, memRegion{start: mr.Addr(), end: mr.Addr() + uint64(len(buf)), rkey: mr.RKey()})
	s.mrs.Store(&next)
	return mr, nil
}

// Logout disconnects every channel, waits for them, fails what was in
// flight with ErrChannelClosed and releases everything: QPs, CQs, IU
// memory, registered data memory, the PD. It is idempotent; the channels'
// Submit and Poll keep working afterwards (they fail commands and return
// what is finished), so a reactor may still be running when it is called.
func (s *Session) Logout() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, c := range s.chans {
		errs = append(errs, c.shutdown(ErrChannelClosed, stateClosed, s.cfg.LoginTimeout))
	}
	for _, mr := range s.mrList {
		errs = append(errs, mr.Dereg())
	}
	s.mrList = nil
	s.mrs.Store(&[]memRegion{})
	errs = append(errs, s.pd.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("initiator: logout: %w", err)
	}
	return nil
}

// Reconnect logs out every channel and logs in again (channel 0 SINGLE,
// the others MULTI), as ib_srp's srp_reconnect_target, keeping the
// registered memory and the Channel values. Commands still in flight
// complete with ErrReset at the channel's next Poll; while it runs Submit
// takes nothing. On failure the channels that did not come back are
// closed with the error, and Reconnect may be tried again.
func (s *Session) Reconnect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSessionClosed
	}
	var errs []error
	for _, c := range s.chans {
		errs = append(errs, c.shutdown(ErrReset, stateDown, s.cfg.LoginTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("initiator: reconnect: %w", err)
	}
	if err := s.connectAll(ctx); err != nil {
		for _, c := range s.chans {
			_ = c.shutdown(err, stateClosed, s.cfg.LoginTimeout)
		}
		return fmt.Errorf("initiator: reconnect: %w", err)
	}
	return nil
}

// waitDone waits for a disconnected connection's end, at most d.
func waitDone(conn verbs.Conn, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-conn.Done():
		return nil
	case <-t.C:
		return fmt.Errorf("initiator: disconnect did not finish in %v", d)
	}
}
