package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/usrpt/usrpt/server"
	"github.com/usrpt/usrpt/target"
)

// API is what the control socket drives: *server.Server's live-change
// methods. Tests use a fake.
type API interface {
	Sessions() []target.SessionInfo
	LUNs() []server.LUNInfo
	AddLUN(server.LUNConfig) (server.LUNInfo, error)
	RemoveLUN(n uint16) error
	ResizeLUN(n uint16, sizeBytes int64) error
	ACLs() []server.ACLConfig
	AddACL(server.ACLConfig) error
	RemoveACL(name string) error
	Logout(session uint64) error
	Stats() server.Stats
}

var _ API = (*server.Server)(nil)

// LUN is one LUN as get_luns and lun_add return it.
type LUN struct {
	Number     uint16 `json:"number"`
	Backend    string `json:"backend"`        // as configured: null, mem, uring, psync, file
	Engine     string `json:"engine"`         // the engine in use
	Path       string `json:"path,omitempty"` // file or block device
	SizeBytes  int64  `json:"size_bytes"`
	BlockSize  int    `json:"block_size"`
	WriteCache bool   `json:"write_cache"` // WCE now (MODE SELECT may have changed it)
	ReadOnly   bool   `json:"read_only"`
	Thin       bool   `json:"thin"`
	Serial     string `json:"serial,omitempty"`
	NAA        string `json:"naa_id,omitempty"` // the VPD 0x83 designator, hexadecimal
	Sessions   int    `json:"sessions"`         // I_T nexuses that see it
}

// lunFromInfo takes the live values where LUNInfo has both the configured
// and the live one (BlockSize, WriteCache, NAA shadow LUNConfig's).
func lunFromInfo(i server.LUNInfo) LUN {
	return LUN{
		Number:     i.Number,
		Backend:    i.Backend,
		Engine:     i.Engine,
		Path:       i.Path,
		SizeBytes:  i.SizeBytes,
		BlockSize:  i.BlockSize,
		WriteCache: i.WriteCache,
		ReadOnly:   i.ReadOnly,
		Thin:       i.Thin,
		Serial:     i.Serial,
		NAA:        i.NAA,
		Sessions:   i.Sessions,
	}
}

// ACL is an access group, as acl_add takes it and get_acls returns it.
type ACL struct {
	Name       string   `json:"name"`
	Initiators []string `json:"initiators"`     // "*", port ID patterns, IPs, CIDR prefixes
	LUNs       []uint16 `json:"luns,omitempty"` // empty: every LUN
}

// LUNAddParams are lun_add's params: either Spec ("mem:256MiB") or
// Backend with Path or Size. Number absent takes the lowest free number.
type LUNAddParams struct {
	Spec       string  `json:"spec,omitempty"`
	Number     *uint16 `json:"number,omitempty"`
	Backend    string  `json:"backend,omitempty"`
	Path       string  `json:"path,omitempty"`
	Size       Size    `json:"size,omitempty"`
	BlockSize  int     `json:"block_size,omitempty"`
	WriteCache bool    `json:"write_cache,omitempty"`
	ReadOnly   bool    `json:"read_only,omitempty"`
	Thin       bool    `json:"thin,omitempty"`
	Serial     string  `json:"serial,omitempty"`
	NAA        string  `json:"naa,omitempty"`
}

// LUNParams name a LUN (lun_remove).
type LUNParams struct {
	Number *uint16 `json:"number"`
}

// LUNResizeParams are lun_resize's params.
type LUNResizeParams struct {
	Number *uint16 `json:"number"`
	Size   Size    `json:"size"`
}

// NameParams name an ACL group (acl_remove).
type NameParams struct {
	Name string `json:"name"`
}

// SessionParams name a session (session_logout): SessionInfo.ID.
type SessionParams struct {
	ID *uint64 `json:"id"`
}

// Size is a size on the wire: a JSON number of bytes, or a string that
// ParseSize reads ("256MiB", "4k"). It keeps the text as sent, so that a
// size passed through to the server (lun_add) is the one the user wrote.
type Size string

// UnmarshalJSON takes a JSON string or a non-negative integer.
func (s *Size) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var t string
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		*s = Size(t)
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 63)
	if err != nil {
		return fmt.Errorf("size %s: want a byte count or a string such as \"256MiB\"", b)
	}
	*s = Size(strconv.FormatUint(n, 10))
	return nil
}

// Bytes parses the size with ParseSize.
func (s Size) Bytes() (int64, error) { return ParseSize(string(s)) }

// ParseSize reads a size as usrpt's other commands do (server.ParseSize:
// fio's units, powers of 1024) and refuses what does not fit an int64.
func ParseSize(s string) (int64, error) {
	n, err := server.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(n), nil
}

// ParseSpec reads a LUN spec, "backend:argument": null:SIZE and mem:SIZE
// (a RAM or null LU of that size), uring:PATH, psync:PATH and file:PATH (a
// file or block device; file picks the best engine). The size is checked
// here and passed on as written; the server checks everything else.
func ParseSpec(spec string) (server.LUNConfig, error) {
	backend, arg, ok := strings.Cut(spec, ":")
	backend = strings.ToLower(strings.TrimSpace(backend))
	if !ok || arg == "" {
		return server.LUNConfig{}, fmt.Errorf("LUN spec %q: want BACKEND:ARG (null:SIZE, mem:SIZE, uring:PATH, psync:PATH, file:PATH)", spec)
	}
	switch backend {
	case "null", "mem":
		if _, err := ParseSize(arg); err != nil {
			return server.LUNConfig{}, fmt.Errorf("LUN spec %q: %w", spec, err)
		}
		return server.LUNConfig{Backend: backend, Size: arg}, nil
	case "uring", "psync", "file":
		return server.LUNConfig{Backend: backend, Path: arg}, nil
	}
	return server.LUNConfig{}, fmt.Errorf("LUN spec %q: unknown backend %q; want null, mem, uring, psync or file", spec, backend)
}

// config builds the server's LUNConfig from lun_add's params; the number
// is left for the caller.
func (p *LUNAddParams) config() (server.LUNConfig, error) {
	var c server.LUNConfig
	switch {
	case p.Spec != "" && (p.Backend != "" || p.Path != "" || p.Size != ""):
		return c, errors.New("spec and backend, path or size: give one or the other")
	case p.Spec != "":
		var err error
		if c, err = ParseSpec(p.Spec); err != nil {
			return c, err
		}
	case p.Backend == "":
		return c, errors.New("want spec, or backend with path or size")
	default:
		c = server.LUNConfig{Backend: p.Backend, Path: p.Path, Size: string(p.Size)}
	}
	c.BlockSize = p.BlockSize
	c.WriteCache = p.WriteCache
	c.ReadOnly = p.ReadOnly
	c.Thin = p.Thin
	c.Serial = p.Serial
	c.NAA = p.NAA
	return c, nil
}
