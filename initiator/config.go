package initiator

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/usrpt/usrpt/srp"
)

// Config of a session. Zero fields take the Linux ib_srp defaults
// (drivers/infiniband/ulp/srp/ib_srp.c module parameters and add_target
// options, reference §A.4 and §A.8).
type Config struct {
	// InitiatorPortID is initiator_ext ‖ port GUID (SRP r16a order). When
	// its port GUID half is zero, Login fills it with the interface ID of
	// the device's GID, as ib_srp copies sgid.global.interface_id there.
	InitiatorPortID [16]byte
	TargetPortID    [16]byte // id_ext ‖ ioc_guid
	// ITIULen is REQUEST IT IU LENGTH; 0: as Linux computes it,
	// max(48+16+20+CmdSGEntries×16, 68+MaxImmData), capped by MaxITIUSize.
	ITIULen int
	// MaxITIUSize caps the computed REQUEST IT IU LENGTH, as ib_srp's
	// max_it_iu_size= option; 0: no cap.
	MaxITIUSize int
	Channels    int // 0: 1
	// QueueSize is the commands in flight per channel; 0: 62 (Linux's
	// default can_queue). Login caps it at the initial credits − 1: one
	// credit stays in reserve for task management.
	QueueSize  int
	NoImmData  bool // do not ask for immediate data (ib_srp use_imm_data=N)
	MaxImmData int  // 0: 8192
	// CmdSGEntries is the descriptors an SRP_CMD carries (1..255); 0: 12.
	CmdSGEntries int
	LoginTimeout time.Duration // 0: 10s
	// ResponderResources is the RDMA READs the target may have outstanding
	// at us (it reads data-out with them); 0: 4, what ib_srp asks for.
	ResponderResources int
	// InitiatorDepth is the RDMA READs we may have outstanding at the
	// target (SRP issues none); 0: 4.
	InitiatorDepth int
}

// Defaults (ib_srp.c and ib_srp.h).
const (
	DefaultQueueSize    = 62   // SRP_DEFAULT_CMD_SQ_SIZE: can_queue of SRP_DEFAULT_QUEUE_SIZE 64
	DefaultMaxImmData   = 8192 // max_imm_data module parameter
	DefaultCmdSGEntries = 12   // cmd_sg_entries module parameter (SRP_DEF_SG_TABLESIZE)
	MaxCmdSGEntries     = 255
	DefaultLoginTimeout = 10 * time.Second
	defaultRdAtomic     = 4 // responder_resources of ib_srp's CM REQ
)

// withDefaults returns c with every zero field at its default, or an error
// for a value out of range.
func (c Config) withDefaults() (Config, error) {
	if c.Channels == 0 {
		c.Channels = 1
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxImmData == 0 {
		c.MaxImmData = DefaultMaxImmData
	}
	if c.CmdSGEntries == 0 {
		c.CmdSGEntries = DefaultCmdSGEntries
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = DefaultLoginTimeout
	}
	if c.ResponderResources == 0 {
		c.ResponderResources = defaultRdAtomic
	}
	if c.InitiatorDepth == 0 {
		c.InitiatorDepth = defaultRdAtomic
	}
	switch {
	case c.Channels < 0 || c.Channels > 1024:
		return c, fmt.Errorf("initiator: %d channels: want 1 to 1024", c.Channels)
	case c.QueueSize < 0 || c.QueueSize > 1<<14:
		return c, fmt.Errorf("initiator: queue size %d: want 1 to 16384", c.QueueSize)
	case c.MaxImmData < 0 || c.MaxImmData > 1<<20:
		return c, fmt.Errorf("initiator: max immediate data %d: want 1 to 1 MiB", c.MaxImmData)
	case c.CmdSGEntries < 0 || c.CmdSGEntries > MaxCmdSGEntries:
		return c, fmt.Errorf("initiator: cmd_sg_entries %d: want 1 to 255", c.CmdSGEntries)
	case c.ITIULen != 0 && (c.ITIULen < srp.MinITIULen || c.ITIULen > 1<<20):
		return c, fmt.Errorf("initiator: IT IU length %d: want %d to 1 MiB", c.ITIULen, srp.MinITIULen)
	case c.MaxITIUSize < 0, c.LoginTimeout < 0:
		return c, fmt.Errorf("initiator: negative max_it_iu_size or login timeout")
	case c.ResponderResources < 0 || c.ResponderResources > 255 || c.InitiatorDepth < 0 || c.InitiatorDepth > 255:
		return c, fmt.Errorf("initiator: responder resources and initiator depth: want 0 to 255")
	}
	return c, nil
}

// itIULen is REQUEST IT IU LENGTH as ib_srp's srp_max_it_iu_len computes
// it: room for an SRP_CMD with a 16-byte additional CDB and an indirect
// table of CmdSGEntries descriptors, or for immediate data at offset 68,
// whichever is longer, capped by max_it_iu_size.
func (c *Config) itIULen(imm bool) int {
	if c.ITIULen != 0 {
		return c.ITIULen
	}
	n := srp.CmdLen + 16 + srp.IndirectHdrLen + c.CmdSGEntries*srp.DirectDescLen
	if imm {
		n = max(n, srp.LinuxImmDataOffset+c.MaxImmData)
	}
	if c.MaxITIUSize > 0 {
		n = min(n, c.MaxITIUSize)
	}
	return max(n, srp.MinITIULen)
}

// ParseTarget reads ib_srp's add_target form
// "id_ext=…,ioc_guid=…,dest=IP:PORT[,…]" (Documentation/ABI/stable/
// sysfs-driver-ib_srp) and returns the target port ID, the address to
// connect to (dest's value, or service_id's for IB/CM) and the Config
// fields the string sets: TargetPortID, InitiatorPortID's initiator_ext
// half, QueueSize (queue_size), Channels (ch_count), MaxITIUSize
// (max_it_iu_size) and CmdSGEntries (cmd_sg_entries). The other documented
// keys are checked for syntax and ignored. As ib_srp, the string must name
// id_ext and ioc_guid, and either dest or all of dgid, pkey and
// service_id; unknown keys are an error. Separators are commas and
// newlines (echo adds one); a later key overrides an earlier one.
func ParseTarget(s string) (cfg Config, addr string, err error) {
	var have struct{ idExt, iocGUID, dest, dgid, pkey, serviceID bool }
	var serviceID string
	for tok := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		key, val, ok := strings.Cut(tok, "=")
		if !ok {
			return Config{}, "", fmt.Errorf("initiator: target %q: %q is not key=value", s, tok)
		}
		var e error
		switch key {
		case "id_ext":
			e = putHex64(cfg.TargetPortID[0:8], val)
			have.idExt = true
		case "ioc_guid":
			e = putHex64(cfg.TargetPortID[8:16], val)
			have.iocGUID = true
		case "initiator_ext":
			e = putHex64(cfg.InitiatorPortID[0:8], val)
		case "service_id":
			var b [8]byte
			e = putHex64(b[:], val)
			serviceID, have.serviceID = val, true
		case "dgid":
			if len(val) != 32 {
				e = fmt.Errorf("want 32 hex digits")
			} else {
				_, e = hex.DecodeString(val)
			}
			have.dgid = true
		case "pkey":
			_, e = parseHex(val, 16)
			have.pkey = true
		case "io_class":
			var v uint64
			if v, e = parseHex(val, 16); e == nil && v != 0x0100 && v != 0xff00 {
				e = fmt.Errorf("want 0x100 or 0xff00")
			}
		case "dest":
			if _, e = netip.ParseAddrPort(val); e == nil {
				addr, have.dest = val, true
			}
		case "src":
			if _, e = netip.ParseAddr(strings.Trim(val, "[]")); e != nil {
				_, e = netip.ParseAddrPort(val)
			}
		case "queue_size":
			cfg.QueueSize, e = parseInt(val, 1, 1<<14)
		case "ch_count":
			cfg.Channels, e = parseInt(val, 1, 1024)
		case "max_it_iu_size":
			cfg.MaxITIUSize, e = parseInt(val, 0, 1<<20)
		case "cmd_sg_entries":
			cfg.CmdSGEntries, e = parseInt(val, 1, MaxCmdSGEntries)
		case "tl_retry_count":
			_, e = parseInt(val, 2, 7)
		case "max_sect", "max_cmd_per_lun", "target_can_queue", "sg_tablesize", "comp_vector":
			_, e = parseInt(val, 0, 1<<30)
		case "allow_ext_sg":
			_, e = parseInt(val, 0, 1)
		default:
			return Config{}, "", fmt.Errorf("initiator: target %q: unknown key %q", s, key)
		}
		if e != nil {
			return Config{}, "", fmt.Errorf("initiator: target %q: %s=%q: %w", s, key, val, e)
		}
	}
	switch {
	case !have.idExt || !have.iocGUID:
		return Config{}, "", fmt.Errorf("initiator: target %q: id_ext and ioc_guid are required", s)
	case !have.dest && !(have.dgid && have.pkey && have.serviceID):
		return Config{}, "", fmt.Errorf("initiator: target %q: want dest, or dgid, pkey and service_id", s)
	case !have.dest:
		addr = serviceID
	}
	return cfg, addr, nil
}

// parseHex reads a hexadecimal number of at most bits bits, with or
// without 0x, as the kernel's kstrtoull(s, 16) and match_hex do.
func parseHex(s string, bits int) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if t == "" || t[0] == '+' || t[0] == '-' {
		return 0, fmt.Errorf("not a hexadecimal number")
	}
	return strconv.ParseUint(t, 16, bits)
}

// putHex64 stores the 64-bit hexadecimal s big-endian into b, as ib_srp
// stores cpu_to_be64 of the number it parsed.
func putHex64(b []byte, s string) error {
	v, err := parseHex(s, 64)
	if err == nil {
		binary.BigEndian.PutUint64(b, v)
	}
	return err
}

func parseInt(s string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("out of range %d to %d", lo, hi)
	}
	return v, nil
}
