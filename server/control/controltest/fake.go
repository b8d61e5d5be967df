// Package controltest is an in-memory stand-in for *server.Server's
// live-change and reporting methods, with known contents, for the tests of
// the control socket, usrpt ctl and the metrics.
package controltest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/server"
	"github.com/usrpt/usrpt/target"
)

// Fake holds LUNs, ACLs, sessions and stats in memory. Its methods are
// safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	luns     map[uint16]server.LUNInfo
	acls     []server.ACLConfig
	sessions []target.SessionInfo
	stats    server.Stats
	panicky  bool
}

// New returns a Fake with two LUNs (0: mem 256 MiB, 1: uring on
// /dev/nvme0n1, 1 GiB, write-back), the ACL "lab", one session (ID 7) of
// two channels, and Sample's stats.
func New() *Fake {
	f := &Fake{luns: map[uint16]server.LUNInfo{}}
	f.luns[0] = server.LUNInfo{
		LUNConfig: server.LUNConfig{Number: 0, Backend: "mem", Size: "256MiB"},
		SizeBytes: 256 << 20, BlockSize: 512, Engine: "mem", Sessions: 1,
		NAA: "6001405000000000000000000000000a",
	}
	f.luns[1] = server.LUNInfo{
		LUNConfig: server.LUNConfig{Number: 1, Backend: "uring", Path: "/dev/nvme0n1", WriteCache: true},
		SizeBytes: 1 << 30, BlockSize: 4096, Engine: "uring", WriteCache: true, Sessions: 1,
		NAA: "6001405000000000000000000000000b",
	}
	f.acls = []server.ACLConfig{{Name: "lab", Initiators: []string{"0x*", "10.0.0.0/24"}, LUNs: []uint16{0, 1}}}
	f.sessions = []target.SessionInfo{{
		ID: 7, InitiatorID: "0xfe800000000000000002c90300a1b2c3", Peer: "10.0.0.2", ACL: "lab",
		LUNs: []uint16{0, 1},
		Channels: []target.ChannelInfo{
			{ID: 1, Reactor: 0, CPU: 2, State: "live", Credits: 31, ImmData: true,
				Stats: target.ChannelStats{Commands: 1000, ReadBytes: 4 << 20, WriteBytes: 1 << 20, CheckCond: 2, BufferWaits: 3, SendWaits: 4, CreditOverrun: 1, CredReqs: 5}},
			{ID: 2, Reactor: 1, CPU: 3, State: "live", Credits: 32,
				Stats: target.ChannelStats{Commands: 500, ReadBytes: 2 << 20, Aborted: 1, ProtocolErrs: 1, TransportErrs: 1}},
		},
	}}
	f.stats = Sample()
	return f
}

// Sample is the Fake's stats: 3 logins, 2 rejects (1 "acl", 1
// "channel_limit"), LUN 0 with 1000 commands of which 600 took at most
// 1.024 µs and 400 at most 2.048 µs (sum 1.5 ms), LUN 1 with 500 commands
// in the last bucket, and two reactors 75 % and 50 % busy.
func Sample() server.Stats {
	var lat0, lat1 [target.LatencyBuckets]uint64
	lat0[0], lat0[1] = 600, 400
	lat1[target.LatencyBuckets-1] = 500
	return server.Stats{
		Stats: target.Stats{
			Logins:   3,
			Rejects:  map[string]uint64{"acl": 1, "channel_limit": 1},
			Sessions: 1,
			Channels: 2,
			Total:    target.ChannelStats{Commands: 1500, ReadBytes: 6 << 20, WriteBytes: 1 << 20, CheckCond: 2, Aborted: 1, CreditOverrun: 1},
			LUNs: map[uint16]target.LUNStats{
				0: {Commands: 1000, ReadBytes: 4 << 20, WriteBytes: 1 << 20, Errors: 2, Latency: lat0, LatencyNs: 1_500_000},
				1: {Commands: 500, ReadBytes: 2 << 20, Latency: lat1, LatencyNs: 10_000_000_000},
			},
			Reactors: []poller.ReactorStats{
				{ID: 0, CPU: 2, Iterations: 100, BusyIterations: 75, Busy: 3 * time.Second, Idle: time.Second},
				{ID: 1, CPU: 3, Iterations: 100, BusyIterations: 50, Busy: time.Second, Idle: time.Second},
			},
		},
		Uptime: time.Hour,
	}
}

// SetPanic makes every method panic, to test that callers survive it.
func (f *Fake) SetPanic(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panicky = on
}

func (f *Fake) lock() {
	f.mu.Lock()
	if f.panicky {
		f.mu.Unlock()
		panic("controltest: panic as asked")
	}
}

// Sessions lists the sessions.
func (f *Fake) Sessions() []target.SessionInfo {
	f.lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

// LUNs lists the LUNs by number.
func (f *Fake) LUNs() []server.LUNInfo {
	f.lock()
	defer f.mu.Unlock()
	var out []server.LUNInfo
	for _, n := range slices.Sorted(maps.Keys(f.luns)) {
		out = append(out, f.luns[n])
	}
	return out
}

// AddLUN adds a LUN: null and mem need a size (humanize.ParseBytes),
// the others a path; the number must be free.
func (f *Fake) AddLUN(c server.LUNConfig) (server.LUNInfo, error) {
	f.lock()
	defer f.mu.Unlock()
	if _, ok := f.luns[c.Number]; ok {
		return server.LUNInfo{}, fmt.Errorf("LUN %d exists", c.Number)
	}
	info := server.LUNInfo{LUNConfig: c, Engine: c.Backend, BlockSize: c.BlockSize, WriteCache: c.WriteCache}
	if info.BlockSize == 0 {
		info.BlockSize = 512
	}
	switch c.Backend {
	case "null", "mem":
		n, err := humanize.ParseBytes(c.Size)
		if err != nil {
			return server.LUNInfo{}, fmt.Errorf("LUN %d: size %q: %v", c.Number, c.Size, err)
		}
		info.SizeBytes = int64(n)
	case "uring", "psync", "file":
		if c.Path == "" {
			return server.LUNInfo{}, fmt.Errorf("LUN %d: %s needs a path", c.Number, c.Backend)
		}
		info.SizeBytes = 1 << 30
		if c.Backend == "file" {
			info.Engine = "uring"
		}
	default:
		return server.LUNInfo{}, fmt.Errorf("LUN %d: unknown backend %q", c.Number, c.Backend)
	}
	f.luns[c.Number] = info
	return info, nil
}

// RemoveLUN removes LUN n.
func (f *Fake) RemoveLUN(n uint16) error {
	f.lock()
	defer f.mu.Unlock()
	if _, ok := f.luns[n]; !ok {
		return fmt.Errorf("LUN %d does not exist", n)
	}
	delete(f.luns, n)
	return nil
}

// ResizeLUN sets LUN n's size; it may not shrink below one block.
func (f *Fake) ResizeLUN(n uint16, sizeBytes int64) error {
	f.lock()
	defer f.mu.Unlock()
	l, ok := f.luns[n]
	if !ok {
		return fmt.Errorf("LUN %d does not exist", n)
	}
	if sizeBytes < int64(l.BlockSize) {
		return fmt.Errorf("LUN %d: size %d is less than a block", n, sizeBytes)
	}
	l.SizeBytes = sizeBytes
	f.luns[n] = l
	return nil
}

// ACLs lists the ACL groups.
func (f *Fake) ACLs() []server.ACLConfig {
	f.lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acls)
}

// AddACL adds or replaces (by name) an ACL group.
func (f *Fake) AddACL(a server.ACLConfig) error {
	f.lock()
	defer f.mu.Unlock()
	for _, n := range a.LUNs {
		if _, ok := f.luns[n]; !ok {
			return fmt.Errorf("ACL %s: LUN %d does not exist", a.Name, n)
		}
	}
	for i := range f.acls {
		if f.acls[i].Name == a.Name {
			f.acls[i] = a
			return nil
		}
	}
	f.acls = append(f.acls, a)
	return nil
}

// RemoveACL removes the ACL group name.
func (f *Fake) RemoveACL(name string) error {
	f.lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.acls, func(a server.ACLConfig) bool { return a.Name == name })
	if i < 0 {
		return fmt.Errorf("no ACL %q", name)
	}
	f.acls = slices.Delete(f.acls, i, i+1)
	return nil
}

// ErrNoSession is Logout's error for an unknown session.
var ErrNoSession = errors.New("no such session")

// Logout removes a session.
func (f *Fake) Logout(id uint64) error {
	f.lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.sessions, func(s target.SessionInfo) bool { return s.ID == id })
	if i < 0 {
		return fmt.Errorf("session %d: %w", id, ErrNoSession)
	}
	f.sessions = slices.Delete(f.sessions, i, i+1)
	return nil
}

// Stats returns the stats.
func (f *Fake) Stats() server.Stats {
	f.lock()
	defer f.mu.Unlock()
	return f.stats
}
