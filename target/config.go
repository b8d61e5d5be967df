package target

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path"
	"strings"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/srp"
)

// Defaults of Config, after ib_srpt's where it has one (ib_srpt.h).
const (
	// DefaultMaxITIULen is the longest SRP_CMD accepted: room for 8 KiB of
	// immediate data at offset 80, as ib_srpt's srp_max_req_size.
	DefaultMaxITIULen = 8276
	// DefaultMaxTIIULen is the longest IU sent: SRP_RSP with 4 bytes of
	// response data and full sense data fits in 256 (ib_srpt's
	// srp_max_rsp_size).
	DefaultMaxTIIULen = 256
	// DefaultCredits is the initial REQUEST LIMIT DELTA, the channel's
	// queue depth (ib_srpt's MAX_SRPT_RQ_SIZE).
	DefaultCredits = 128
	// DefaultMaxRDMASize is the largest single RDMA READ or WRITE
	// (ib_srpt's srp_max_rdma_size).
	DefaultMaxRDMASize = 64 << 10
	// DefaultMaxChannels is the most channels one I_T nexus may have.
	DefaultMaxChannels = 32
	// DefaultRDMAReads bounds the RDMA READs a channel has outstanding,
	// before the initiator's RESPONDER RESOURCES lower it further.
	DefaultRDMAReads = 16
	// DefaultMaxDataLen is the largest data transfer of one command.
	DefaultMaxDataLen = 1 << 20
	// DefaultSmallBuf and DefaultSmallBufs size each reactor's pool of
	// small data buffers; DefaultLargeBufs counts its MaxDataLen buffers.
	DefaultSmallBuf  = 64 << 10
	DefaultSmallBufs = 256
	DefaultLargeBufs = 16
	// DefaultReactorDepth is the most commands one reactor has in its
	// engines at once (beyond it: TASK SET FULL).
	DefaultReactorDepth = 1024
	// DefaultRelPort is the relative target port identifier.
	DefaultRelPort = 1
)

// LoginForm says which form of SRP_LOGIN_REQ the connection manager
// carries as private data.
type LoginForm uint8

const (
	// LoginRDMACM: the 56-byte form of RDMA/CM (RoCE, iWARP, the loop
	// fabric): ib_srp's struct srp_login_req_rdma.
	LoginRDMACM LoginForm = iota
	// LoginIBCM: the 64-byte SRP_LOGIN_REQ itself, as IB CM carries it.
	LoginIBCM
)

// Config describes an SRP target port.
type Config struct {
	// GUID is the target's 64-bit identifier: the IOC GUID and, unless
	// IDExt is set, also the identifier extension, as ib_srpt uses its
	// service GUID for both. The target port identifier an initiator
	// must name is IDExt ‖ GUID (SRP r16a 4.7). It must not be 0.
	GUID  uint64
	IDExt uint64

	// CPUs are the reactor cores (poller.ParseCoreMask); Idle their policy.
	CPUs []int
	Idle poller.IdlePolicy

	// ACLs decide who may log in and which LUNs each sees. Nothing
	// matches by default: an initiator no ACL names is rejected.
	ACLs []ACL

	MaxITIULen  int // longest I→T IU accepted; 0: DefaultMaxITIULen
	MaxTIIULen  int // longest T→I IU sent; 0: DefaultMaxTIIULen
	Credits     int // initial credits per channel; 0: DefaultCredits
	MaxRDMASize int // largest RDMA operation; 0: DefaultMaxRDMASize
	MaxChannels int // channels per I_T nexus; 0: DefaultMaxChannels
	RDMAReads   int // outstanding RDMA READs per channel; 0: DefaultRDMAReads
	// NoImmData refuses immediate data even when it is asked for.
	NoImmData bool

	MaxDataLen   int // largest transfer of one command; 0: DefaultMaxDataLen
	SmallBuf     int // bytes per small data buffer; 0: DefaultSmallBuf
	SmallBufs    int // small data buffers per reactor; 0: DefaultSmallBufs
	LargeBufs    int // MaxDataLen buffers per reactor; 0: DefaultLargeBufs
	ReactorDepth int // commands per reactor in engines; 0: DefaultReactorDepth
	Pages        hugemem.PagePolicy

	// RelPort is the relative target port identifier; 0: DefaultRelPort.
	RelPort uint16
	// Form is the login request form the transport carries.
	Form LoginForm

	Logger *slog.Logger
}

// ErrConfig is wrapped by every validation error of New.
var ErrConfig = errors.New("target: invalid configuration")

func (c *Config) withDefaults() (Config, error) {
	d := *c
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&d.MaxITIULen, DefaultMaxITIULen)
	def(&d.MaxTIIULen, DefaultMaxTIIULen)
	def(&d.Credits, DefaultCredits)
	def(&d.MaxRDMASize, DefaultMaxRDMASize)
	def(&d.MaxChannels, DefaultMaxChannels)
	def(&d.RDMAReads, DefaultRDMAReads)
	def(&d.MaxDataLen, DefaultMaxDataLen)
	def(&d.SmallBuf, DefaultSmallBuf)
	def(&d.SmallBufs, DefaultSmallBufs)
	def(&d.LargeBufs, DefaultLargeBufs)
	def(&d.ReactorDepth, DefaultReactorDepth)
	if d.RelPort == 0 {
		d.RelPort = DefaultRelPort
	}
	if d.IDExt == 0 {
		d.IDExt = d.GUID
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("component", "target")
	bad := func(f string, a ...any) (Config, error) {
		return d, fmt.Errorf("%w: "+f, append([]any{ErrConfig}, a...)...)
	}
	switch {
	case d.GUID == 0:
		return bad("GUID 0: the target port needs a 64-bit identifier")
	case len(d.CPUs) == 0:
		return bad("no reactor CPUs")
	case d.MaxITIULen < srp.CmdLen+srp.DirectDescLen || d.MaxITIULen > 1<<20:
		return bad("max IT IU length %d: want %d to 1 MiB", d.MaxITIULen, srp.CmdLen+srp.DirectDescLen)
	case d.MaxTIIULen < srp.RspLen+srp.TMRespLen+18 || d.MaxTIIULen > 1<<16:
		return bad("max TI IU length %d: want %d to 64 KiB", d.MaxTIIULen, srp.RspLen+srp.TMRespLen+18)
	case d.Credits < 2 || d.Credits > 4096:
		return bad("credits %d: want 2 to 4096", d.Credits)
	case d.MaxRDMASize < 4096 || d.MaxRDMASize > 1<<24:
		return bad("max RDMA size %d: want 4 KiB to 16 MiB", d.MaxRDMASize)
	case d.MaxChannels < 1:
		return bad("max channels %d: want at least 1", d.MaxChannels)
	case d.RDMAReads < 1 || d.RDMAReads > 255:
		return bad("RDMA reads %d: want 1 to 255", d.RDMAReads)
	case d.MaxDataLen < 4096 || d.MaxDataLen > 64<<20:
		return bad("max data length %d: want 4 KiB to 64 MiB", d.MaxDataLen)
	case d.SmallBuf < 4096 || d.SmallBuf > d.MaxDataLen:
		return bad("small buffer %d: want 4 KiB to the max data length %d", d.SmallBuf, d.MaxDataLen)
	case d.SmallBufs < 1 || d.LargeBufs < 1:
		return bad("buffer counts %d small, %d large: want at least one of each", d.SmallBufs, d.LargeBufs)
	case d.ReactorDepth < 1:
		return bad("reactor depth %d: want at least 1", d.ReactorDepth)
	case d.Form > LoginIBCM:
		return bad("login form %d", d.Form)
	}
	for i := range d.ACLs {
		if err := d.ACLs[i].compile(); err != nil {
			return bad("ACL %q: %v", d.ACLs[i].Name, err)
		}
	}
	return d, nil
}

// TargetPortID is the 16-byte target port identifier: IDExt ‖ GUID.
func (c *Config) TargetPortID() [16]byte {
	var id [16]byte
	putBE64(id[0:], c.IDExt)
	putBE64(id[8:], c.GUID)
	return id
}

func putBE64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// ACL is one access control group: the initiators it names and the LUNs
// they see.
type ACL struct {
	Name string
	// Initiators: "*" for everyone; an initiator port identifier as 32
	// hexadecimal digits (initiator_ext then port GUID, optional "0x"),
	// where '*' and '?' match as in path.Match; or a source IP address or
	// CIDR prefix, for transports that have addresses.
	Initiators []string
	// LUNs are the target's LUN numbers the group sees, at the same
	// numbers; nil is every LUN.
	LUNs []uint16

	ids      []string
	prefixes []netip.Prefix
	all      bool
}

// Validate checks the group's initiator patterns as New and SetACLs will,
// so that a configuration can be checked (usrpt serve --check) before
// anything is started. It leaves a untouched.
func (a *ACL) Validate() error {
	c := ACL{Name: a.Name, Initiators: a.Initiators, LUNs: a.LUNs}
	return c.compile()
}

func (a *ACL) compile() error {
	a.ids, a.prefixes, a.all = nil, nil, false
	if len(a.Initiators) == 0 {
		return errors.New("names no initiator")
	}
	for _, s := range a.Initiators {
		s = strings.TrimSpace(s)
		switch {
		case s == "*":
			a.all = true
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("initiator %q: %v", s, err)
			}
			a.prefixes = append(a.prefixes, p.Masked())
		default:
			if ip, err := netip.ParseAddr(s); err == nil {
				a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
				continue
			}
			id := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
			if len(id) != 32 && !strings.ContainsAny(id, "*?") {
				return fmt.Errorf("initiator %q: want *, an IP address or prefix, or a 32-digit port identifier", s)
			}
			for _, r := range id {
				if !strings.ContainsRune("0123456789abcdef*?", r) {
					return fmt.Errorf("initiator %q: %q is not a hexadecimal digit or wildcard", s, r)
				}
			}
			if _, err := path.Match(id, ""); err != nil {
				return fmt.Errorf("initiator %q: %v", s, err)
			}
			a.ids = append(a.ids, id)
		}
	}
	return nil
}

// Match reports whether the initiator port id, connecting from addr (may
// be invalid), belongs to the group.
func (a *ACL) Match(id [16]byte, addr netip.Addr) bool {
	if a.all {
		return true
	}
	if addr.IsValid() {
		ip := addr.Unmap()
		for _, p := range a.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
	}
	if len(a.ids) > 0 {
		hex := fmt.Sprintf("%032x", id[:])
		for _, pat := range a.ids {
			if ok, _ := path.Match(pat, hex); ok {
				return true
			}
		}
	}
	return false
}
