package loop

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/usrpt/usrpt/verbs"
)

// Device limits. MaxSGE and MaxInline size fixed arrays in every queue slot.
const (
	maxSGE      = 16
	maxInline   = 512
	maxQPWR     = 1 << 14
	maxCQE      = 1 << 20
	maxMRs      = 1 << 14 // per device; key = index<<8 | generation
	maxQP       = 1 << 16
	maxRdAtomic = 16
	maxMRSize   = 1 << 40
	maxMsgSize  = 1 << 31

	maxPrivReq = 196 // IB CM REQ private data
	maxPrivRep = 196 // IB CM REP private data
	maxPrivRej = 148 // IB CM REJ private data
)

// ErrAddrInUse is returned by Listen for an address that already has a
// listener in the fabric.
var ErrAddrInUse = errors.New("loop: address already in use")

// Fabric is one in-process RDMA network: its devices reach each other's
// listeners and QPs and nothing outside it.
type Fabric struct {
	mu        sync.Mutex
	listeners map[string]*listener
	qps       map[uint32]*qp
	nextQPN   uint32
	nextGUID  uint64
}

// NewFabric returns an empty fabric.
func NewFabric() *Fabric {
	return &Fabric{
		listeners: map[string]*listener{},
		qps:       map[uint32]*qp{},
		nextQPN:   0x100,
	}
}

// NewDevice adds a device named name to the fabric, with its own node GUID
// and GID (link-local, fe80::/64 with the GUID as interface identifier).
func (f *Fabric) NewDevice(name string) (verbs.Device, error) {
	if name == "" {
		return nil, fmt.Errorf("loop: device name empty: %w", verbs.ErrInvalid)
	}
	f.mu.Lock()
	f.nextGUID++
	guid := 0x0002_c903_0000_0000 | f.nextGUID
	f.mu.Unlock()
	d := &device{fab: f, mrs: make([]atomic.Pointer[mr], maxMRs), gens: make([]uint8, maxMRs), next: 1}
	d.attr = verbs.DeviceAttr{
		Name:            name,
		NodeGUID:        guid,
		MaxQP:           maxQP,
		MaxQPWR:         maxQPWR,
		MaxSGE:          maxSGE,
		MaxInline:       maxInline,
		MaxCQE:          maxCQE,
		MaxMRSize:       maxMRSize,
		MaxQPRdAtom:     maxRdAtomic,
		MaxQPInitRdAtom: maxRdAtomic,
		MaxSRQWR:        maxQPWR,
		PathMTU:         4096,
	}
	d.attr.GID[0], d.attr.GID[1] = 0xfe, 0x80
	for i := range 8 {
		d.attr.GID[8+i] = byte(guid >> (56 - 8*i))
	}
	return d, nil
}

type device struct {
	fab  *Fabric
	attr verbs.DeviceAttr

	// Region table: the data path looks keys up without a lock. Each slot
	// publishes its region to every QP's sender (Store in RegMR, Load in
	// region) and withdraws it in Dereg.
	mrs []atomic.Pointer[mr]

	mu        sync.Mutex // the rest
	gens      []uint8
	free      []uint32
	next      uint32
	listeners map[*listener]struct{}
	closed    bool
}

func (d *device) Attr() verbs.DeviceAttr { return d.attr }

func (d *device) AllocPD() (verbs.PD, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, verbs.ErrClosed
	}
	return &pd{dev: d}, nil
}

func (d *device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	ls := d.listeners
	d.listeners = nil
	d.mu.Unlock()
	for l := range ls {
		l.Close()
	}
	return nil
}

// Errors of a region look-up, mapped to a WC status by the caller.
type regionErr uint8

const (
	regionOK regionErr = iota
	regionKey
	regionAccess
	regionRange
)

// region returns the n bytes at addr in the region whose key is key, if it
// belongs to pd and allows need.
func (d *device) region(key uint32, p *pd, addr uint64, n uint64, need verbs.Access) ([]byte, regionErr) {
	i := key >> 8
	if int(i) >= len(d.mrs) {
		return nil, regionKey
	}
	// Acquire the registration's Store: the region's fields are complete.
	m := d.mrs[i].Load()
	if m == nil || m.key != key || m.pd != p {
		return nil, regionKey
	}
	if m.access&need != need {
		return nil, regionAccess
	}
	size := uint64(len(m.buf))
	if addr < m.addr || addr-m.addr > size || n > size-(addr-m.addr) {
		return nil, regionRange
	}
	off := addr - m.addr
	return m.buf[off : off+n : off+n], regionOK
}

type pd struct {
	dev    *device
	mu     sync.Mutex
	closed bool
}

func (p *pd) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

func (p *pd) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

const accessAll = verbs.AccessLocalWrite | verbs.AccessRemoteWrite | verbs.AccessRemoteRead

func (p *pd) RegMR(buf []byte, access verbs.Access) (verbs.MR, error) {
	if len(buf) == 0 || uint64(len(buf)) > maxMRSize {
		return nil, fmt.Errorf("loop: RegMR of %d bytes: %w", len(buf), verbs.ErrInvalid)
	}
	if access&^accessAll != 0 {
		return nil, fmt.Errorf("loop: RegMR access %#x: %w", access, verbs.ErrInvalid)
	}
	if access&verbs.AccessRemoteWrite != 0 && access&verbs.AccessLocalWrite == 0 {
		// As ibv_reg_mr: remote write needs local write (IB spec 10.6.3.1).
		return nil, fmt.Errorf("loop: RegMR remote write without local write: %w", verbs.ErrInvalid)
	}
	if p.isClosed() {
		return nil, verbs.ErrClosed
	}
	d := p.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	var i uint32
	switch {
	case len(d.free) > 0:
		i = d.free[0]
		d.free = d.free[1:] // FIFO: a stale key meets a new generation late
	case int(d.next) < len(d.mrs):
		i = d.next
		d.next++
	default:
		return nil, fmt.Errorf("loop: %d memory regions registered: %w", maxMRs-1, verbs.ErrQueueFull)
	}
	d.gens[i]++
	m := &mr{pd: p, key: i<<8 | uint32(d.gens[i]), buf: buf, addr: addrOf(buf), access: access}
	// Release: publishes the complete region to the senders' Load.
	d.mrs[i].Store(m)
	return m, nil
}

type mr struct {
	pd     *pd
	key    uint32
	buf    []byte
	addr   uint64
	access verbs.Access
}

func (m *mr) LKey() uint32         { return m.key }
func (m *mr) RKey() uint32         { return m.key }
func (m *mr) Addr() uint64         { return m.addr }
func (m *mr) Buf() []byte          { return m.buf }
func (m *mr) Access() verbs.Access { return m.access }

func (m *mr) Dereg() error {
	d := m.pd.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	i := m.key >> 8
	// Own-side check under d.mu; atomic because senders Load concurrently.
	if d.mrs[i].Load() != m {
		return verbs.ErrClosed
	}
	// Withdraws the region: later look-ups of the key fail.
	d.mrs[i].Store(nil)
	d.free = append(d.free, i)
	return nil
}
