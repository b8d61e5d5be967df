package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usrpt/usrpt/initiator"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/scsi"
)

const testGUID = "0x0002c90300a1b2c3"

// testConfig is a loop target on one core that sleeps when idle, with a
// 16 MiB mem LUN 0 and ACLs as given.
func testConfig(acls ...ACLConfig) Config {
	return Config{
		Target: TargetConfig{GUID: testGUID, Idle: "adaptive", Hugepages: "small"},
		LUNs:   []LUNConfig{{Number: 0, Backend: "mem", Size: "16MiB"}},
		ACLs:   acls,
	}
}

var everyone = ACLConfig{Name: "all", Initiators: []string{"*"}}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// host is an initiator logged in to a Server through its first loop
// listener, using the add_target string the server printed.
type host struct {
	t    testing.TB
	sess *initiator.Session
	ch   *initiator.Channel
	data []byte
}

var hostN int

func login(t testing.TB, s *Server, iid byte) (*host, error) {
	t.Helper()
	cfg, addr, err := initiator.ParseTarget(s.LoginStrings()[0])
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", s.LoginStrings()[0], err)
	}
	cfg.InitiatorPortID[15] = iid
	cfg.InitiatorPortID[7] = 1
	cfg.Channels = 1
	hostN++
	dev, err := s.Fabric().NewDevice(fmt.Sprintf("host%d", hostN))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := initiator.Login(ctx, dev, addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = sess.Logout() })
	reg, err := hugemem.Map(hugemem.RegionConfig{Size: 1 << 20, Pages: hugemem.PagesSmall, Node: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.RegMR(reg.Bytes()); err != nil {
		t.Fatal(err)
	}
	return &host{t: t, sess: sess, ch: sess.Channels()[0], data: reg.Bytes()}, nil
}

func mustLogin(t testing.TB, s *Server, iid byte) *host {
	t.Helper()
	h, err := login(t, s, iid)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return h
}

// do runs one command to completion.
func (h *host) do(c *initiator.Command) *initiator.Command {
	h.t.Helper()
	if h.ch.Submit([]*initiator.Command{c}) != 1 {
		h.t.Fatal("the channel took no command")
	}
	out := make([]*initiator.Command, 1)
	deadline := time.Now().Add(10 * time.Second)
	for h.ch.Poll(out) == 0 {
		if time.Now().After(deadline) {
			h.t.Fatalf("command %x timed out", c.CDB)
		}
		runtime.Gosched()
	}
	return c
}

func lunOf(n uint16) uint64 { l, _ := scsi.EncodeLUN(n); return l }

func tur(n uint16) *initiator.Command {
	return &initiator.Command{LUN: lunOf(n), CDB: make([]byte, 6)}
}

func rw(n uint16, op byte, lba uint32, blocks uint16, buf []byte) *initiator.Command {
	cdb := make([]byte, 10)
	cdb[0] = op
	binary.BigEndian.PutUint32(cdb[2:], lba)
	binary.BigEndian.PutUint16(cdb[7:], blocks)
	c := &initiator.Command{LUN: lunOf(n), CDB: cdb}
	if op == 0x2A {
		c.DataOut = [][]byte{buf}
	} else {
		c.DataIn = [][]byte{buf}
	}
	return c
}

// sense is a command's status and, for CHECK CONDITION, its sense.
func sense(c *initiator.Command) (status uint8, key scsi.Key, asc, ascq uint8) {
	if c.Status == uint8(scsi.StatusCheckCondition) {
		key, asc, ascq, _ = scsi.ParseSense(c.Sense[:c.SenseLen])
	}
	return c.Status, key, asc, ascq
}

// clearUA sends TEST UNIT READY until GOOD: a new nexus first sees
// POWER ON, RESET OCCURRED.
func (h *host) clearUA(n uint16) {
	h.t.Helper()
	for range 8 {
		c := h.do(tur(n))
		if c.Err != nil {
			h.t.Fatalf("TEST UNIT READY: %v", c.Err)
		}
		if c.Status == uint8(scsi.StatusGood) {
			return
		}
	}
	h.t.Fatal("unit attentions do not clear")
}

// expectUA checks that the next TEST UNIT READY on LUN n reports the unit
// attention asc/ascq (SPC-4: sense key 6).
func (h *host) expectUA(n uint16, asc, ascq uint8) {
	h.t.Helper()
	c := h.do(tur(n))
	st, key, a, q := sense(c)
	if c.Err != nil || st != uint8(scsi.StatusCheckCondition) || key != scsi.KeyUnitAttention || a != asc || q != ascq {
		h.t.Fatalf("TEST UNIT READY on LUN %d: err %v status %#x sense %v %#x/%#x; want UNIT ATTENTION %#x/%#x", n, c.Err, st, key, a, q, asc, ascq)
	}
}

func TestServeWriteRead(t *testing.T) {
	s := startServer(t, testConfig(everyone))
	if got := s.LoginStrings(); len(got) != 1 || !strings.Contains(got[0], "ioc_guid=0002c90300a1b2c3") || !strings.Contains(got[0], "dest=127.0.0.1:5555") {
		t.Fatalf("LoginStrings = %q", got)
	}
	h := mustLogin(t, s, 1)
	h.clearUA(0)
	want := h.data[:4096]
	for i := range want {
		want[i] = byte(i * 7)
	}
	if c := h.do(rw(0, 0x2A, 8, 8, want)); c.Err != nil || c.Status != 0 {
		t.Fatalf("WRITE: %v status %#x", c.Err, c.Status)
	}
	got := h.data[4096:8192]
	if c := h.do(rw(0, 0x28, 8, 8, got)); c.Err != nil || c.Status != 0 {
		t.Fatalf("READ: %v status %#x", c.Err, c.Status)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("read back differs from what was written")
	}
	if ss := s.Sessions(); len(ss) != 1 || ss[0].ACL != "all" {
		t.Errorf("Sessions = %+v", ss)
	}
	if l := s.LUNs(); len(l) != 1 || l[0].SizeBytes != 16<<20 || l[0].Serial != "usrpt-0002c90300a1b2c3-0" || l[0].Sessions != 1 || l[0].Engine != "mem" {
		t.Errorf("LUNs = %+v", l)
	}
	if st := s.Stats(); st.Logins != 1 || st.Total.WriteBytes != 4096 {
		t.Errorf("Stats: %d logins, %d bytes written", st.Logins, st.Total.WriteBytes)
	}
}

func TestLiveLUNChanges(t *testing.T) {
	s := startServer(t, testConfig(everyone))
	h := mustLogin(t, s, 1)
	h.clearUA(0)

	if _, err := s.AddLUN(LUNConfig{Number: 1, Backend: "mem", Size: "8MiB"}); err != nil {
		t.Fatal(err)
	}
	h.expectUA(0, 0x3F, 0x0E) // REPORTED LUNS DATA HAS CHANGED
	h.clearUA(1)
	if _, err := s.AddLUN(LUNConfig{Number: 1, Backend: "mem", Size: "8MiB"}); err == nil {
		t.Error("AddLUN of an existing LUN: no error")
	}
	if _, err := s.AddLUN(LUNConfig{Number: 2, Backend: "mem", Size: "1000"}); err == nil {
		t.Error("AddLUN with a size off the block: no error")
	}

	if err := s.ResizeLUN(0, 8<<20); err != nil {
		t.Fatal(err)
	}
	h.expectUA(0, 0x2A, 0x09) // CAPACITY DATA HAS CHANGED
	if err := s.ResizeLUN(0, 32<<20); err == nil {
		t.Error("ResizeLUN beyond the engine: no error")
	}
	if l := s.LUNs(); l[0].SizeBytes != 8<<20 || l[0].Size != "8MiB" {
		t.Errorf("after resize: %+v", l[0])
	}

	if err := s.RemoveLUN(1); err != nil {
		t.Fatal(err)
	}
	h.expectUA(0, 0x3F, 0x0E)
	if c := h.do(tur(1)); c.Status != uint8(scsi.StatusCheckCondition) {
		t.Errorf("TEST UNIT READY on a removed LUN: status %#x", c.Status)
	}
	if err := s.RemoveLUN(1); err == nil {
		t.Error("RemoveLUN twice: no error")
	}
	if got := len(s.Config().LUNs); got != 1 {
		t.Errorf("Config has %d LUNs, want 1", got)
	}
}

func TestACLDenyByDefault(t *testing.T) {
	s := startServer(t, testConfig())
	_, err := login(t, s, 1)
	var le *initiator.LoginError
	if !errors.As(err, &le) {
		t.Fatalf("login without an ACL: %v, want a LOGIN_REJ", err)
	}
	if err := s.AddACL(ACLConfig{Name: "bad", Initiators: []string{"nonsense"}}); err == nil {
		t.Error("AddACL with a bad pattern: no error")
	}
	if err := s.AddACL(ACLConfig{Name: "one", Initiators: []string{"*01"}, LUNs: []uint16{0}}); err != nil {
		t.Fatal(err)
	}
	mustLogin(t, s, 1).clearUA(0)
	if _, err := login(t, s, 2); !errors.As(err, &le) {
		t.Errorf("login of an initiator the ACL does not name: %v", err)
	}
	if err := s.RemoveACL("one"); err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, s, 3); !errors.As(err, &le) {
		t.Errorf("login after RemoveACL: %v", err)
	}
	if err := s.RemoveACL("one"); err == nil {
		t.Error("RemoveACL twice: no error")
	}
}

func TestNewRejectsWithoutOpening(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(everyone)
	cfg.Listeners = []ListenerConfig{{Transport: "roce", Address: "0.0.0.0:5555"}}
	_, err := New(cfg, testLogger(t))
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not available in this build yet (issue 8)") {
		t.Fatalf("New with roce: %v", err)
	}
	// A LUN that fails to open after another opened: the first is closed
	// again (its file can be opened exclusively by the next test run).
	img := filepath.Join(dir, "a.img")
	cfg = testConfig(everyone)
	cfg.LUNs = append(cfg.LUNs, LUNConfig{Number: 1, Backend: "psync", Path: img, Size: "1MiB", Create: true, Buffered: true},
		LUNConfig{Number: 2, Backend: "mem", Size: "64PiB"})
	if _, err := New(cfg, testLogger(t)); err == nil {
		t.Fatal("New with a mem LUN larger than the address space: no error")
	}
	s := startServer(t, Config{Target: cfg.Target, LUNs: cfg.LUNs[1:2], ACLs: cfg.ACLs})
	if len(s.LUNs()) != 1 {
		t.Fatal("the LUN left by the failed New did not open again")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "usrpt.toml")
	write := func(doc string) Config {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	base := `
[target]
guid = "` + testGUID + `"
idle = "adaptive"
hugepages = "small"
[[lun]]
number = 0
backend = "mem"
size = "16MiB"
[[lun]]
number = 1
backend = "mem"
size = "4MiB"
[[lun]]
number = 2
backend = "null"
size = "4MiB"
[[acl]]
name = "all"
initiators = ["*"]
`
	s := startServer(t, write(base))
	h := mustLogin(t, s, 1)
	h.clearUA(0)

	next := strings.Replace(base, `size = "16MiB"`, `size = "8MiB"`, 1)            // LUN 0: resize
	next = strings.Replace(next, "number = 1\nbackend = \"mem\"\nsize = \"4MiB\"", // LUN 1: replace
		"number = 1\nbackend = \"mem\"\nsize = \"4MiB\"\nwrite_cache = true", 1)
	next = strings.Replace(next, "number = 2", "number = 3", 1) // LUN 2 gone, 3 new
	next = strings.Replace(next, `idle = "adaptive"`, `idle = "adaptive"`+"\ncores = \"0x1\"", 1)
	next += "[[acl]]\nname = \"lab\"\ninitiators = [\"10.0.0.0/8\"]\nluns = [0]\n"
	ch, err := s.Apply(write(next))
	if err != nil {
		t.Fatal(err)
	}
	want := Changes{AddedLUNs: []uint16{3}, RemovedLUNs: []uint16{2}, ReplacedLUNs: []uint16{1}, ResizedLUNs: []uint16{0}, AddedACLs: []string{"lab"}, NeedRestart: []string{"target"}}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Fatalf("Apply = %v\nwant     %v", ch, want)
	}
	// The resize and the LUN inventory change both reach the initiator.
	seen := map[[2]uint8]bool{}
	for range 4 {
		c := h.do(tur(0))
		if c.Status == 0 {
			break
		}
		_, _, a, q := sense(c)
		seen[[2]uint8{a, q}] = true
	}
	if !seen[[2]uint8{0x2A, 0x09}] || !seen[[2]uint8{0x3F, 0x0E}] {
		t.Errorf("unit attentions after reload: %v", seen)
	}
	var nums []uint16
	for _, l := range s.LUNs() {
		nums = append(nums, l.Number)
	}
	if !slices.Equal(nums, []uint16{0, 1, 3}) || !s.LUNs()[1].WriteCache {
		t.Errorf("LUNs after reload: %+v", s.LUNs())
	}
	if ch, err := s.Apply(write(next)); err != nil || len(ch.NeedRestart) != 1 || len(ch.AddedLUNs)+len(ch.ResizedLUNs)+len(ch.AddedACLs) != 0 {
		t.Errorf("reloading the same file again = %v, %v", ch, err)
	}
	// A LUN that cannot open leaves everything as it was.
	bad := next + "[[lun]]\nnumber = 9\nbackend = \"mem\"\nsize = \"64PiB\"\n"
	if _, err := s.Apply(write(bad)); err == nil || len(s.LUNs()) != 3 {
		t.Errorf("Apply with a LUN that cannot open: %v, %d LUNs", err, len(s.LUNs()))
	}
	if err := s.Reload(write(base)); err != nil {
		t.Fatal(err)
	}
	if len(s.LUNs()) != 3 || len(s.ACLs()) != 1 {
		t.Errorf("after reloading the first file: %d LUNs, %d ACLs", len(s.LUNs()), len(s.ACLs()))
	}
}

// TestDrainLosesNoAcknowledgedWrite writes without pause while the server
// shuts down, then reads every write that was acknowledged GOOD back
// through a new server on the same file.
func TestDrainLosesNoAcknowledgedWrite(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	cfg := testConfig(everyone)
	cfg.LUNs = []LUNConfig{{Number: 0, Backend: "psync", Path: img, Size: "64MiB", Create: true, WriteCache: true}}
	s, err := New(cfg, testLogger(t))
	if err != nil && strings.Contains(err.Error(), "O_DIRECT") {
		cfg.LUNs[0].Buffered = true
		s, err = New(cfg, testLogger(t))
	}
	if err != nil {
		t.Fatal(err)
	}
	h := mustLogin(t, s, 1)
	h.clearUA(0)

	const (
		depth = 16
		xfer  = 4096
		lbas  = xfer / 512
	)
	var (
		acked    []uint32
		firstErr string
		inflight int
		started  = make(chan struct{})
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		cmds := make([]*initiator.Command, depth)
		free := make([]int, 0, depth)
		for i := range depth {
			free = append(free, i)
		}
		out := make([]*initiator.Command, depth)
		next := uint32(0)
		once := sync.Once{}
		for {
			for len(free) > 0 && next < 16000 && h.ch.Err() == nil {
				slot := free[len(free)-1]
				buf := h.data[slot*xfer : (slot+1)*xfer]
				for i := range buf {
					buf[i] = byte(next) ^ byte(i)
				}
				binary.BigEndian.PutUint32(buf, next)
				c := rw(0, 0x2A, next*lbas, lbas, buf)
				c.User = uint64(slot)<<32 | uint64(next)
				cmds[slot] = c
				if h.ch.Submit([]*initiator.Command{c}) != 1 {
					break
				}
				free = free[:len(free)-1]
				inflight++
				next++
			}
			if next > 150 {
				once.Do(func() { close(started) })
			}
			n := h.ch.Poll(out)
			for _, c := range out[:n] {
				inflight--
				free = append(free, int(c.User>>32))
				if c.Err == nil && c.Status == uint8(scsi.StatusGood) {
					acked = append(acked, uint32(c.User))
				} else if firstErr == "" {
					st, key, asc, ascq := sense(c)
					firstErr = fmt.Sprintf("write %d: %v, status %#x, sense %v %#x/%#x", uint32(c.User), c.Err, st, key, asc, ascq)
				}
			}
			if h.ch.Err() != nil && inflight == 0 {
				once.Do(func() { close(started) })
				return
			}
			runtime.Gosched()
		}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged; first failure: %s", len(acked), firstErr)
	}
	t.Logf("%d writes acknowledged before the drain", len(acked))

	cfg.LUNs[0].Create = false
	s2 := startServer(t, cfg)
	h2 := mustLogin(t, s2, 1)
	h2.clearUA(0)
	buf := h2.data[:xfer]
	for _, w := range acked {
		if c := h2.do(rw(0, 0x28, w*lbas, lbas, buf)); c.Err != nil || c.Status != 0 {
			t.Fatalf("READ %d: %v status %#x", w, c.Err, c.Status)
		}
		if got := binary.BigEndian.Uint32(buf); got != w || buf[100] != byte(w)^100 {
			t.Fatalf("acknowledged write %d lost: block holds %d", w, got)
		}
	}
}
