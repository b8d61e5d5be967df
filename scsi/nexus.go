package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

// UA is a set of unit attention conditions (SAM-5 5.14) pending for one
// I_T nexus on one logical unit, one bit per condition. The lowest set bit
// is reported first, so the order of the constants is the priority: a
// reset outranks what it implies.
type UA uint32

const (
	UAPowerOnReset           UA = 1 << iota // 29/00: a new I_T nexus (login), a new LUN
	UABusDeviceReset                        // 29/03: LUN RESET
	UANexusLoss                             // 29/07: I_T NEXUS RESET
	UACommandsCleared                       // 2F/00: another initiator's CLEAR TASK SET or LUN RESET aborted our tasks
	UAReservationsPreempted                 // 2A/03
	UAReservationsReleased                  // 2A/04
	UARegistrationsPreempted                // 2A/05
	UAModeChanged                           // 2A/01: MODE SELECT through another I_T nexus
	UACapacityChanged                       // 2A/09: LU resized
	UALUNsChanged                           // 3F/0E: the nexus's LUN map changed
	numUA                    = iota
)

// Reason is the sense reported for the lowest condition in u.
func (u UA) Reason() Reason {
	if u == 0 {
		return ReasonNone
	}
	return uaReasons[bits.TrailingZeros32(uint32(u))]
}

var uaReasons = [numUA]Reason{
	ReasonPowerOnReset, ReasonBusDeviceReset, ReasonNexusLoss, ReasonCommandsCleared,
	ReasonReservationsPreempted, ReasonReservationsReleased, ReasonRegistrationsPreempted,
	ReasonModeChanged, ReasonCapacityChanged, ReasonLUNsChanged,
}

// Mapping puts a logical unit at a LUN of an I_T nexus.
type Mapping struct {
	LUN uint16
	LU  *LU
}

// NexusConfig describes an I_T nexus: an initiator port logged in to a
// target port, and the LUs it may see (its ACL's LUN map).
type NexusConfig struct {
	// TransportID is the initiator port's TransportID (SPC-4 7.6.4) as
	// PERSISTENT RESERVE IN READ FULL STATUS reports it; for SRP it is 24
	// bytes, PROTOCOL IDENTIFIER 4 and the 16-byte initiator port
	// identifier at byte 8 (SRPTransportID). Together with RelPort it
	// names the nexus for reservations, so a re-login is the same nexus.
	TransportID []byte
	// RelPort is the relative target port identifier (1-65535) of the
	// port the initiator logged in to.
	RelPort uint16
	// Ports are the relative identifiers of every port of the target, all
	// in the one active/optimized target port group (REPORT TARGET PORT
	// GROUPS); nil is just RelPort.
	Ports []uint16
	// LUNs is the LUN map.
	LUNs []Mapping
}

// SRPTransportID is the SCSI RDMA Protocol TransportID (SPC-4 7.6.4.5) of
// an initiator port identifier.
func SRPTransportID(initiatorPortID [16]byte) []byte {
	b := make([]byte, 24)
	b[0] = 0x04 // FORMAT CODE 00b, PROTOCOL IDENTIFIER 4h (SRP)
	copy(b[8:], initiatorPortID[:])
	return b
}

// TargetPortGroup is the identifier of the one target port group.
const TargetPortGroup = 1

// Nexus is an I_T nexus as the SCSI layer sees it: who is asking, through
// which port, and which LUs it sees at which LUNs. The transport makes one
// at login (NewNexus) and closes it at logout; every Task names its Nexus.
// A nexus may be used by several reactors at once (SRP multichannel).
type Nexus struct {
	key     string // TransportID ‖ RelPort: the I_T nexus identifier
	tid     []byte
	relPort uint16
	ports   []uint16
	luns    atomic.Pointer[lunTable]

	mu     sync.Mutex // serializes SetLUNs and Close (control plane)
	closed bool
}

// binding is one LU as seen through one nexus: the LUN it is at, and the
// unit attentions pending for the nexus on it. Set from any goroutine,
// consumed by the reactor that runs the nexus's next command.
type binding struct {
	lun uint16
	lu  *LU
	n   *Nexus
	ua  atomic.Uint32
}

// lunTable is a nexus's LUN map, sorted by LUN; replaced whole on change.
type lunTable struct{ bs []*binding }

func (t *lunTable) find(lun uint16) *binding {
	i, ok := slices.BinarySearchFunc(t.bs, lun, func(b *binding, l uint16) int { return int(b.lun) - int(l) })
	if !ok {
		return nil
	}
	return t.bs[i]
}

// ErrNexus is wrapped by the errors of NewNexus and SetLUNs.
var ErrNexus = errors.New("scsi: invalid I_T nexus")

func checkMappings(m []Mapping) ([]Mapping, error) {
	m = slices.Clone(m)
	slices.SortFunc(m, func(a, b Mapping) int { return int(a.LUN) - int(b.LUN) })
	for i, x := range m {
		if x.LU == nil {
			return nil, fmt.Errorf("%w: LUN %d has no LU", ErrNexus, x.LUN)
		}
		if _, ok := EncodeLUN(x.LUN); !ok {
			return nil, fmt.Errorf("%w: LUN %d is above 16383", ErrNexus, x.LUN)
		}
		if i > 0 && m[i-1].LUN == x.LUN {
			return nil, fmt.Errorf("%w: LUN %d mapped twice", ErrNexus, x.LUN)
		}
	}
	return m, nil
}

// NewNexus makes an I_T nexus. Every LU of its map gets POWER ON, RESET,
// OR BUS DEVICE RESET OCCURRED pending for it, as a new nexus should.
func NewNexus(cfg NexusConfig) (*Nexus, error) {
	if len(cfg.TransportID) == 0 || len(cfg.TransportID) > 256 {
		return nil, fmt.Errorf("%w: TransportID of %d bytes", ErrNexus, len(cfg.TransportID))
	}
	if cfg.RelPort == 0 {
		return nil, fmt.Errorf("%w: relative target port 0 is reserved", ErrNexus)
	}
	m, err := checkMappings(cfg.LUNs)
	if err != nil {
		return nil, err
	}
	ports := slices.Clone(cfg.Ports)
	if !slices.Contains(ports, cfg.RelPort) {
		ports = append(ports, cfg.RelPort)
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	var k [2]byte
	binary.BigEndian.PutUint16(k[:], cfg.RelPort)
	n := &Nexus{
		key:     string(cfg.TransportID) + string(k[:]),
		tid:     slices.Clone(cfg.TransportID),
		relPort: cfg.RelPort,
		ports:   ports,
	}
	t := &lunTable{bs: make([]*binding, len(m))}
	for i, x := range m {
		b := &binding{lun: x.LUN, lu: x.LU, n: n}
		b.ua.Store(uint32(UAPowerOnReset))
		t.bs[i] = b
		x.LU.attach(b)
	}
	n.luns.Store(t)
	return n, nil
}

// TransportID is the initiator's TransportID.
func (n *Nexus) TransportID() []byte { return n.tid }

// RelPort is the relative target port identifier.
func (n *Nexus) RelPort() uint16 { return n.relPort }

// LUNs is the current LUN map.
func (n *Nexus) LUNs() []Mapping {
	t := n.luns.Load()
	m := make([]Mapping, len(t.bs))
	for i, b := range t.bs {
		m[i] = Mapping{b.lun, b.lu}
	}
	return m
}

// SetLUNs replaces the LUN map: LUs that stay at the same LUN keep their
// state and get REPORTED LUNS DATA HAS CHANGED, new ones get POWER ON,
// RESET, removed ones are let go. Tasks already started on a removed LU
// finish normally.
func (n *Nexus) SetLUNs(m []Mapping) error {
	m, err := checkMappings(m)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("%w: closed", ErrNexus)
	}
	old := n.luns.Load()
	t := &lunTable{bs: make([]*binding, len(m))}
	kept := make(map[*binding]bool, len(old.bs))
	for i, x := range m {
		if b := old.find(x.LUN); b != nil && b.lu == x.LU {
			t.bs[i] = b
			kept[b] = true
			continue
		}
		b := &binding{lun: x.LUN, lu: x.LU, n: n}
		b.ua.Store(uint32(UAPowerOnReset))
		t.bs[i] = b
		x.LU.attach(b)
	}
	n.luns.Store(t)
	for _, b := range old.bs {
		if !kept[b] {
			b.lu.detach(b)
		}
	}
	for b := range kept {
		b.ua.Or(uint32(UALUNsChanged))
	}
	return nil
}

// Close ends the nexus (logout, I_T nexus loss): its LUs let it go and
// release any RESERVE(6/10) reservation it held. Persistent reservation
// registrations stay, as SPC-4 requires. Tasks of the nexus still in an
// Executor finish normally; the transport aborts them first if it wants.
func (n *Nexus) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	t := n.luns.Swap(&lunTable{})
	for _, b := range t.bs {
		b.lu.prNexusGone(n)
		b.lu.detach(b)
	}
}

// Pending reports the unit attentions pending for the nexus at lun.
func (n *Nexus) Pending(lun uint16) UA {
	if b := n.luns.Load().find(lun); b != nil {
		return UA(b.ua.Load())
	}
	return 0
}

// BufferAlign is the address alignment the engine of the LU at lun needs
// of a command's data buffer: its logical block size when it does direct
// I/O (O_DIRECT refuses other buffers), 1 otherwise or when no LU is there.
// A transport that hands the SCSI core data in place (SRP immediate data,
// at an offset of its IU) copies it to an aligned buffer when this says
// so. Any goroutine; it allocates nothing.
func (n *Nexus) BufferAlign(lun uint64) int {
	k, ok := DecodeLUN(lun)
	if !ok {
		return 1
	}
	if b := n.luns.Load().find(k); b != nil {
		return b.lu.bufAlign
	}
	return 1
}

// Establish makes ua pending for the nexus on every LU it sees.
func (n *Nexus) Establish(ua UA) {
	for _, b := range n.luns.Load().bs {
		b.ua.Or(uint32(ua))
	}
}

// takeUA clears and returns the highest-priority pending condition of b;
// 0 when none. Any reactor may race another to take it: exactly one wins.
func (b *binding) takeUA() UA {
	for {
		v := b.ua.Load()
		if v == 0 {
			return 0
		}
		low := v & -v
		if b.ua.CompareAndSwap(v, v&^low) {
			return UA(low)
		}
	}
}

// clearUA clears the conditions of ua.
func (b *binding) clearUA(ua UA) { b.ua.And(^uint32(ua)) }

// cowList is a slice that readers load without a lock and writers replace
// whole, one at a time (copy on write): the LU's nexuses, the LU's units.
type cowList[T comparable] struct {
	mu sync.Mutex
	p  atomic.Pointer[[]T]
}

func (l *cowList[T]) load() []T {
	if p := l.p.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *cowList[T]) add(x T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := append(slices.Clone(l.load()), x)
	l.p.Store(&next)
}

func (l *cowList[T]) remove(x T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(l.load()), func(y T) bool { return y == x })
	l.p.Store(&next)
}

// attach and detach add and remove a nexus's view of the LU (control plane).
func (lu *LU) attach(b *binding) { lu.bindings.add(b) }
func (lu *LU) detach(b *binding) { lu.bindings.remove(b) }

// eachBinding calls f for every nexus that sees the LU, without a lock.
func (lu *LU) eachBinding(f func(*binding)) {
	for _, b := range lu.bindings.load() {
		f(b)
	}
}

// Establish makes ua pending on the LU for every nexus that sees it but
// skip (nil: every nexus). The control plane uses it for CAPACITY DATA HAS
// CHANGED; the command paths for reservations and mode changes.
func (lu *LU) Establish(ua UA, skip *Nexus) {
	lu.eachBinding(func(b *binding) {
		if b.n != skip {
			b.ua.Or(uint32(ua))
		}
	})
}

// Nexuses is the number of I_T nexuses that see the LU.
func (lu *LU) Nexuses() int { return len(lu.bindings.load()) }
