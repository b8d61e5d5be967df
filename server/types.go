package server

import (
	"time"

	"github.com/usrpt/usrpt/target"
)

// Config is a whole usrpt serve configuration: what the TOML file holds
// (docs/configuration.md), or what the quick-start flags build.
type Config struct {
	Target    TargetConfig     `toml:"target"`
	Listeners []ListenerConfig `toml:"listener"`
	LUNs      []LUNConfig      `toml:"lun"`
	ACLs      []ACLConfig      `toml:"acl"`
	Control   ControlConfig    `toml:"control"`
	Metrics   MetricsConfig    `toml:"metrics"`
}

// TargetConfig is the target port and its reactors.
type TargetConfig struct {
	// GUID is the target's 64-bit identifier (id_ext and ioc_guid of the
	// login string), as hexadecimal; empty derives it from the first
	// listener's interface MAC as EUI-64, as the kernel derives a port
	// GUID, so it is stable across restarts.
	GUID  string `toml:"guid"`
	Cores string `toml:"cores"` // core mask (poller.ParseCoreMask); empty: the first online CPU
	Idle  string `toml:"idle"`  // busy | adaptive; empty: busy

	// Limits; zero takes the target package's defaults.
	ChannelsPerNexus int    `toml:"channels_per_nexus"`
	QueueSize        int    `toml:"queue_size"`    // credits per channel
	MaxIUSize        int    `toml:"max_iu_size"`   // max_it_iu_len
	MaxRDMASize      string `toml:"max_rdma_size"` // a size ("64KiB")
	NoImmediateData  bool   `toml:"no_immediate_data"`
	Hugepages        string `toml:"hugepages"` // auto | huge | small; empty: auto

	// ShutdownTimeout bounds the drain on SIGTERM; zero: 30 s.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// ListenerConfig is one transport endpoint.
type ListenerConfig struct {
	Transport string `toml:"transport"` // loop | roce | ibv
	Address   string `toml:"address"`   // IP:port for roce and ibv (default port 5555); a name for loop
}

// LUNConfig is one logical unit.
type LUNConfig struct {
	Number    uint16 `toml:"number"`
	Backend   string `toml:"backend"`    // null | mem | uring | psync | file (the best engine for a file or device)
	Path      string `toml:"path"`       // file or block device, for uring, psync and file
	Size      string `toml:"size"`       // for null and mem, or to create a file; a size ("1GiB")
	BlockSize int    `toml:"block_size"` // 512 or 4096; zero: the engine's
	// WriteCache makes the LU write-back (WCE=1): writes complete when the
	// engine has them; SYNCHRONIZE CACHE and FUA flush. Default
	// write-through.
	WriteCache bool   `toml:"write_cache"`
	ReadOnly   bool   `toml:"read_only"`
	Serial     string `toml:"serial"` // VPD 0x80; empty: derived from the target GUID and LUN number
	NAA        string `toml:"naa"`    // VPD 0x83 vendor-specific extension, hexadecimal; empty: derived from the serial
	Thin       bool   `toml:"thin"`   // advertise thin provisioning (UNMAP)
	// Create makes Path as a regular file of Size when it does not exist,
	// and extends a shorter one; it never shrinks a file. Off by default,
	// so that a mistyped device path is an error, not a new file in /dev.
	Create bool `toml:"create"`
	// Buffered opens Path through the page cache instead of O_DIRECT
	// (file systems that refuse O_DIRECT, such as tmpfs). With it, a
	// write-through LUN is only as durable as the file system's FUA.
	Buffered bool `toml:"buffered"`
}

// ACLConfig is one access group: who, and which LUNs they see.
type ACLConfig struct {
	Name       string   `toml:"name"`
	Initiators []string `toml:"initiators"` // "*", port IDs (32 hex digits, * and ? wildcards), IPs or CIDR prefixes
	LUNs       []uint16 `toml:"luns"`       // empty: every LUN
}

// ControlConfig is the control socket.
type ControlConfig struct {
	Socket string `toml:"socket"` // unix socket path; empty: DefaultControlSocket; "-": none
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `toml:"listen"` // HTTP address (":9456"); empty: off
}

// DefaultControlSocket is where usrpt serve listens for usrpt ctl.
const DefaultControlSocket = "/run/usrpt/usrpt.sock"

// DefaultPort is the RDMA/CM port of a roce or ibv listener without one.
const DefaultPort = 5555

// Duration is a time.Duration that TOML writes as a string ("30s").
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// MarshalText writes a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// LUNInfo describes an exported LUN for the control socket and metrics.
type LUNInfo struct {
	LUNConfig
	SizeBytes  int64  `json:"size_bytes"`
	BlockSize  int    `json:"block_size"`
	Engine     string `json:"engine"`          // the engine in use ("uring", ...)
	WriteCache bool   `json:"write_cache_now"` // WCE as MODE SELECT may have changed it
	Sessions   int    `json:"sessions"`        // I_T nexuses that see it
	NAA        string `json:"naa_id"`          // the 16-byte designator, hexadecimal
}

// Stats is what the control socket's stats method and the metrics read.
type Stats struct {
	target.Stats
	Uptime time.Duration `json:"uptime_ns"`
}
