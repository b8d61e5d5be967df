package control_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/usrpt/usrpt/initiator"
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/server"
	"github.com/usrpt/usrpt/server/control"
	"github.com/usrpt/usrpt/target"
)

// The control socket in front of a real server on the loop transport, with
// a real initiator logged in: what usrpt ctl does, end to end.
func TestRealServer(t *testing.T) {
	cfg := server.Config{
		Target: server.TargetConfig{GUID: "0x0002c90300a1b2c3", Idle: "adaptive", Hugepages: "small"},
		LUNs:   []server.LUNConfig{{Number: 0, Backend: "mem", Size: "8MiB"}},
		ACLs:   []server.ACLConfig{{Name: "all", Initiators: []string{"*"}}},
	}
	s, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "usrpt.sock")
	ln, err := control.Serve(ctx, path, s, control.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := control.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// An initiator logs in through the printed add_target string.
	icfg, addr, err := initiator.ParseTarget(s.LoginStrings()[0])
	if err != nil {
		t.Fatal(err)
	}
	icfg.InitiatorPortID[15] = 7
	dev, err := s.Fabric().NewDevice("host")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := initiator.Login(ctx, dev, addr, icfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Logout()
	reg, err := hugemem.Map(hugemem.RegionConfig{Size: 1 << 20, Pages: hugemem.PagesSmall, Node: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := sess.RegMR(reg.Bytes()); err != nil {
		t.Fatal(err)
	}
	ch := sess.Channels()[0]
	do := func(cdb []byte, lun uint16) *initiator.Command {
		l, _ := scsi.EncodeLUN(lun)
		cmd := &initiator.Command{LUN: l, CDB: cdb}
		if cdb[0] == 0x88 {
			cmd.DataIn = [][]byte{reg.Bytes()[:4096]}
		}
		if ch.Submit([]*initiator.Command{cmd}) != 1 {
			t.Fatal("Submit refused")
		}
		out := make([]*initiator.Command, 1)
		deadline := time.Now().Add(5 * time.Second)
		for ch.Poll(out) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no response")
			}
		}
		return cmd
	}
	for do(make([]byte, 6), 0).Status != 0 { // POWER ON
	}

	var sessions []target.SessionInfo
	if err := c.Call(ctx, "get_sessions", nil, &sessions); err != nil || len(sessions) != 1 || len(sessions[0].Channels) != 1 {
		t.Fatalf("get_sessions: %v %+v", err, sessions)
	}
	// A LUN added live: the initiator hears REPORTED LUNS DATA HAS CHANGED.
	var added control.LUN
	if err := c.Call(ctx, "lun_add", map[string]any{"spec": "mem:4MiB"}, &added); err != nil || added.Number != 1 {
		t.Fatalf("lun_add: %v %+v", err, added)
	}
	uaOf := func(cmd *initiator.Command) (scsi.Key, uint8, uint8) {
		k, asc, ascq, _ := scsi.ParseSense(cmd.Sense[:cmd.SenseLen])
		return k, asc, ascq
	}
	if k, asc, ascq := uaOf(do(make([]byte, 6), 0)); k != scsi.KeyUnitAttention || asc != 0x3F || ascq != 0x0E {
		t.Fatalf("after lun_add: %v %02x/%02x, want REPORTED LUNS DATA HAS CHANGED", k, asc, ascq)
	}
	for do(make([]byte, 6), 1).Status != 0 { // the new LUN's POWER ON
	}
	// Resized live: CAPACITY DATA HAS CHANGED on that LUN.
	if err := c.Call(ctx, "lun_resize", map[string]any{"number": 1, "size": "2MiB"}, nil); err != nil {
		t.Fatalf("lun_resize: %v", err)
	}
	if k, asc, ascq := uaOf(do(make([]byte, 6), 1)); k != scsi.KeyUnitAttention || asc != 0x2A || ascq != 0x09 {
		t.Fatalf("after lun_resize: %v %02x/%02x, want CAPACITY DATA HAS CHANGED", k, asc, ascq)
	}
	var luns []control.LUN
	if err := c.Call(ctx, "get_luns", nil, &luns); err != nil || len(luns) != 2 || luns[1].SizeBytes != 2<<20 {
		t.Fatalf("get_luns: %v %+v", err, luns)
	}
	var st server.Stats
	if err := c.Call(ctx, "get_stats", nil, &st); err != nil || st.Logins != 1 || st.Total.Commands == 0 {
		t.Fatalf("get_stats: %v %+v", err, st.Stats)
	}
	// Logged out from the control socket: the channel ends.
	if err := c.Call(ctx, "session_logout", map[string]any{"id": sessions[0].ID}, nil); err != nil {
		t.Fatalf("session_logout: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ch.Err() == nil && time.Now().Before(deadline) {
		ch.Poll(make([]*initiator.Command, 1))
	}
	if ch.Err() == nil {
		t.Fatal("the channel did not end after session_logout")
	}
	if err := c.Call(ctx, "get_sessions", nil, &sessions); err != nil {
		t.Fatal(err)
	}
	for i := 0; len(sessions) != 0 && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		_ = c.Call(ctx, "get_sessions", nil, &sessions)
	}
	if len(sessions) != 0 {
		t.Fatalf("sessions after logout: %+v", sessions)
	}
}
