package scsi

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sync/atomic"

	"github.com/usrpt/usrpt/ioengine"
)

// Config describes one logical unit (a direct-access block device, SBC-3)
// over an ioengine.Device.
type Config struct {
	// Engine is the backing store. Its capacity, rounded down to whole
	// blocks, is the LU's capacity.
	Engine ioengine.Device
	// BlockSize is the logical block length, 512 or 4096, a multiple of the
	// engine's block size; 0 takes the engine's Info().BlockSize.
	BlockSize int
	// Vendor (up to 8), Product (up to 16) and Revision (up to 4) are the
	// standard INQUIRY identification, printable ASCII, padded with spaces
	// on the wire. Empty takes DefaultVendor, DefaultProduct, DefaultRevision.
	Vendor, Product, Revision string
	// Serial is the unit serial number (VPD page 0x80), 1 to MaxSerialLen
	// printable ASCII characters. It is required: it names the LU to
	// multipath and udev, so it must be stable across restarts.
	Serial string
	// OUI is the 24-bit IEEE company ID in the NAA designator; 0 when the
	// operator has none registered (the designator stays unique per serial).
	OUI uint32
	// NAA is the 64-bit VENDOR SPECIFIC IDENTIFIER EXTENSION of the NAA IEEE
	// Registered Extended designator (VPD 0x83, designator type 3, NAA 6).
	// 0 derives it from Serial: the FNV-1a 64 hash of the serial, so the
	// same serial always gives the same identifier. The 36-bit VENDOR
	// SPECIFIC IDENTIFIER is the top 36 bits of that same hash.
	NAA uint64
	// WriteCache reports a volatile write cache (caching mode page WCE=1):
	// writes complete when the engine has them, and SYNCHRONIZE CACHE
	// flushes. false (the default) is write-through: every write is sent
	// with FUA, so GOOD means durable.
	WriteCache bool
	// ReadOnly refuses writes with DATA PROTECT, WRITE PROTECTED and sets
	// WP in the mode parameter header.
	ReadOnly bool
	// DescriptorSense reports D_SENSE=1 in the control mode page and makes
	// CHECK CONDITION carry descriptor-format sense (0x72); the default is
	// fixed format (0x70), which every initiator understands.
	DescriptorSense bool
	// MaxTransferBytes is the largest READ/WRITE/VERIFY in bytes (block
	// limits VPD MAXIMUM TRANSFER LENGTH); 0 takes DefaultMaxTransferBytes.
	MaxTransferBytes int
	// PRStateFile is where persistent reservations are kept when an
	// initiator registers with APTPL (activate persist through power
	// loss): written on every change, read back by NewLU. Empty refuses
	// APTPL (PTPL_C=0), as SPC-4 allows.
	PRStateFile string
	// Thin advertises thin provisioning (LBPME, LBPU, LBPWS) so that
	// initiators send UNMAP and WRITE SAME with UNMAP. It needs an engine
	// that can discard; NewLU refuses it otherwise. Off by default: on a
	// thick LU UNMAP is still accepted and carried out when the engine can
	// discard, but nothing invites it.
	Thin bool
}

// Defaults and limits of Config.
const (
	DefaultVendor           = "USRPT"
	DefaultProduct          = "usrpt disk"
	DefaultRevision         = "0001"
	DefaultMaxTransferBytes = 1 << 20
	MaxSerialLen            = 64
)

// ErrConfig is wrapped by every validation error of NewLU.
var ErrConfig = errors.New("scsi: invalid logical unit config")

// LU is a logical unit: its configuration, resolved, and the state every
// I_T nexus shares (unit attentions, reservations, mode parameters,
// COMPARE AND WRITE ranges). It is shared by every Executor that exports
// it; what can change after NewLU is read with atomics on the data path.
type LU struct {
	cfg         Config
	blockSize   int
	blocks      atomic.Uint64 // capacity in logical blocks (Resize)
	maxXferBlks uint32
	discard     bool   // the engine can deallocate: UNMAP works
	thin        bool   // thin provisioning is advertised
	zeroes      bool   // the engine can write zeroes without a buffer
	bufAlign    int    // the address alignment the engine needs of data buffers (O_DIRECT); 1 for none
	naaHi       uint64 // NAA 6 | OUI | vendor specific identifier
	naaLo       uint64 // vendor specific identifier extension

	// Mode parameters MODE SELECT can change.
	wce    atomic.Bool // caching page WCE
	dsense atomic.Bool // control page D_SENSE

	bindings cowList[*binding] // every nexus that sees the LU

	caw cawTable // COMPARE AND WRITE ranges in progress (sbc.go)
	pr  prState  // reservations (pr.go)
}

func checkASCII(field, s string, maxLen int, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s is empty", ErrConfig, field)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: %s %q is longer than %d bytes", ErrConfig, field, s, maxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return fmt.Errorf("%w: %s %q: byte %d is not printable ASCII", ErrConfig, field, s, i)
		}
	}
	return nil
}

// NewLU validates cfg and returns the logical unit.
func NewLU(cfg Config) (*LU, error) {
	if cfg.Engine == nil {
		return nil, fmt.Errorf("%w: no engine", ErrConfig)
	}
	info := cfg.Engine.Info()
	if cfg.BlockSize == 0 {
		cfg.BlockSize = info.BlockSize
	}
	if cfg.BlockSize != 512 && cfg.BlockSize != 4096 {
		return nil, fmt.Errorf("%w: block size %d: want 512 or 4096", ErrConfig, cfg.BlockSize)
	}
	if info.BlockSize <= 0 || cfg.BlockSize%info.BlockSize != 0 {
		return nil, fmt.Errorf("%w: block size %d is not a multiple of the engine's %d", ErrConfig, cfg.BlockSize, info.BlockSize)
	}
	if !cfg.Engine.Supports(ioengine.OpRead) || !cfg.Engine.Supports(ioengine.OpWrite) {
		return nil, fmt.Errorf("%w: engine %s cannot read and write", ErrConfig, info.Engine)
	}
	if cfg.WriteCache && !cfg.Engine.Supports(ioengine.OpFlush) {
		return nil, fmt.Errorf("%w: write cache on engine %s that cannot flush", ErrConfig, info.Engine)
	}
	blocks := uint64(info.SizeBytes) / uint64(cfg.BlockSize)
	if info.SizeBytes <= 0 || blocks == 0 {
		return nil, fmt.Errorf("%w: engine of %d bytes holds no %d-byte block", ErrConfig, info.SizeBytes, cfg.BlockSize)
	}
	if cfg.Vendor == "" {
		cfg.Vendor = DefaultVendor
	}
	if cfg.Product == "" {
		cfg.Product = DefaultProduct
	}
	if cfg.Revision == "" {
		cfg.Revision = DefaultRevision
	}
	for _, f := range []struct {
		name, s  string
		max      int
		required bool
	}{
		{"vendor", cfg.Vendor, 8, false},
		{"product", cfg.Product, 16, false},
		{"revision", cfg.Revision, 4, false},
		{"serial", cfg.Serial, MaxSerialLen, true},
	} {
		if err := checkASCII(f.name, f.s, f.max, f.required); err != nil {
			return nil, err
		}
	}
	if cfg.OUI > 0xFFFFFF {
		return nil, fmt.Errorf("%w: OUI %#x is wider than 24 bits", ErrConfig, cfg.OUI)
	}
	if cfg.MaxTransferBytes == 0 {
		cfg.MaxTransferBytes = DefaultMaxTransferBytes
	}
	if cfg.MaxTransferBytes < cfg.BlockSize || cfg.MaxTransferBytes%cfg.BlockSize != 0 || cfg.MaxTransferBytes/cfg.BlockSize > 0xFFFFFFFF {
		return nil, fmt.Errorf("%w: max transfer %d bytes: want a positive multiple of the block size %d", ErrConfig, cfg.MaxTransferBytes, cfg.BlockSize)
	}
	if cfg.Thin && !cfg.Engine.Supports(ioengine.OpDiscard) {
		return nil, fmt.Errorf("%w: thin provisioning on engine %s that cannot discard", ErrConfig, info.Engine)
	}
	h := fnv.New64a()
	h.Write([]byte(cfg.Serial))
	sum := h.Sum64()
	lo := cfg.NAA
	if lo == 0 {
		lo = sum
	}
	lu := &LU{
		cfg:         cfg,
		blockSize:   cfg.BlockSize,
		maxXferBlks: uint32(cfg.MaxTransferBytes / cfg.BlockSize),
		discard:     cfg.Engine.Supports(ioengine.OpDiscard),
		thin:        cfg.Thin,
		zeroes:      cfg.Engine.Supports(ioengine.OpWriteZeroes),
		bufAlign:    1,
		naaHi:       6<<60 | uint64(cfg.OUI)<<36 | sum>>28,
		naaLo:       lo,
	}
	if info.Direct {
		lu.bufAlign = max(info.BlockSize, 512)
	}
	lu.blocks.Store(blocks)
	lu.wce.Store(cfg.WriteCache)
	lu.dsense.Store(cfg.DescriptorSense)
	if err := lu.prLoad(cfg.PRStateFile); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return lu, nil
}

// Config is the configuration with defaults filled in (WriteCache and
// DescriptorSense as configured, not as MODE SELECT may have changed them).
func (lu *LU) Config() Config { return lu.cfg }

// Blocks is the capacity in logical blocks.
func (lu *LU) Blocks() uint64 { return lu.blocks.Load() }

// WriteCache reports whether the volatile write cache is on now (WCE).
func (lu *LU) WriteCache() bool { return lu.wce.Load() }

// Resize sets the capacity to blocks logical blocks, which the engine must
// hold, and makes CAPACITY DATA HAS CHANGED pending for every nexus. A
// command already past its range check finishes against the old size.
func (lu *LU) Resize(blocks uint64) error {
	max := uint64(lu.cfg.Engine.Info().SizeBytes) / uint64(lu.blockSize)
	if blocks == 0 || blocks > max {
		return fmt.Errorf("%w: resize to %d blocks: the engine holds 1 to %d", ErrConfig, blocks, max)
	}
	if lu.blocks.Swap(blocks) != blocks {
		lu.Establish(UACapacityChanged, nil)
	}
	return nil
}

// BlockSize is the logical block length in bytes.
func (lu *LU) BlockSize() int { return lu.blockSize }

// NAA is the 16-byte NAA IEEE Registered Extended designator of VPD 0x83.
func (lu *LU) NAA() [16]byte {
	var b [16]byte
	be64(b[0:], lu.naaHi)
	be64(b[8:], lu.naaLo)
	return b
}
