package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usrpt/usrpt/server"
)

func TestServeCheckBadConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	doc := `[target]
idle = "lazy"
[[lun]]
number = 0
backend = "mem"
size = "1000"
[[lun]]
number = 0
backend = "uring"
path = "/nonexistent/usrpt-disk"
[[listener]]
transport = "roce"
`
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, "serve", "--check", "--config", bad)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitConfig {
		t.Fatalf("serve --check: %v, want exit status 2\n%s", err, stderr)
	}
	for _, want := range []string{
		bad + ":2: target.idle:",
		bad + ":6: lun[0].size:",
		bad + ":8: lun[1].number: LUN 0 is defined twice",
		bad + ":10: lun[1].path: /nonexistent/usrpt-disk does not exist",
		bad + ":12: listener[0].transport: transport roce is not available in this build yet (issue 8)",
		"    fix: ",
		"nothing was started",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestServeCheckFlags(t *testing.T) {
	out, stderr, err := run(t, "serve", "--check", "--lun", "mem:64MiB", "--lun", "null:1GiB,bs=4096")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "configuration OK: 2 LUN(s), 0 ACL group(s)") || !strings.Contains(stderr, "--acl '*'") {
		t.Errorf("stdout %q stderr %q", out, stderr)
	}
	_, stderr, err = run(t, "serve", "--check", "--lun", "disk:/x", "--transport", "ibv", "--acl", "10.0.0.0/40")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitConfig || !strings.Contains(stderr, "flags: --lun:") {
		t.Errorf("bad flags: %v\n%s", err, stderr)
	}
}

func TestBuildConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "u.toml")
	if err := os.WriteFile(file, []byte("[target]\nidle = \"busy\"\n[[lun]]\nnumber = 4\nbackend = \"mem\"\nsize = \"1MiB\"\n[[acl]]\nname = \"cli\"\ninitiators = [\"10.0.0.1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &serveFlags{config: file, luns: []string{"mem:2MiB", "null:4MiB"}, idle: "adaptive", acls: []string{"*", "10.0.0.0/8,192.168.0.1"},
		guid: "0x1234", control: "-", shutdownTimeout: 5 * time.Second}
	cfg, err := buildConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.LUNs) != 3 || cfg.LUNs[1].Number != 5 || cfg.LUNs[2].Number != 6 || cfg.LUNs[2].Backend != "null" {
		t.Errorf("LUNs: %+v", cfg.LUNs)
	}
	if cfg.Target.Idle != "adaptive" || cfg.Target.GUID != "0x1234" || cfg.Control.Socket != "-" || cfg.Target.ShutdownTimeout != server.Duration(5*time.Second) {
		t.Errorf("target %+v control %+v", cfg.Target, cfg.Control)
	}
	if len(cfg.ACLs) != 1 || strings.Join(cfg.ACLs[0].Initiators, " ") != "* 10.0.0.0/8 192.168.0.1" {
		t.Errorf("ACLs: %+v (the --acl group replaces the file's group of the same name)", cfg.ACLs)
	}
	f = &serveFlags{transport: "loop", listen: "10.1.1.1:7000"}
	if cfg, err = buildConfig(f); err != nil || len(cfg.Listeners) != 1 || cfg.Listeners[0].Address != "10.1.1.1:7000" {
		t.Errorf("listener: %+v, %v", cfg.Listeners, err)
	}
}

// syncBuffer is a bytes.Buffer the serving goroutine writes while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveUntil runs usrpt serve on the loop transport until stop, and
// returns its error and output.
func serveUntil(t *testing.T, stop func(cancel context.CancelFunc)) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb syncBuffer
	root := newRoot(&out, &errb)
	root.SetArgs([]string{"serve", "--lun", "mem:16MiB", "--acl", "*", "--idle", "adaptive", "--guid", "0x0002c90300a1b2c3", "--control", "-", "--log-level", "warn"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "add_target") {
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s\n%s", err, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no add_target string:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop(cancel)
	select {
	case err = <-done:
		return out.String(), errb.String(), err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit")
	}
	return "", "", nil
}

func TestServeExitsOnCancel(t *testing.T) {
	out, stderr, err := serveUntil(t, func(cancel context.CancelFunc) { cancel() })
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	for _, want := range []string{"usrpt serving, target GUID 0002c90300a1b2c3", "LUN 0: mem (mem) -, 16MiB, 512-byte blocks, write-through", "id_ext=0002c90300a1b2c3,ioc_guid=0002c90300a1b2c3,dest=127.0.0.1:5555"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestServeExitsOnSIGTERM(t *testing.T) {
	_, stderr, err := serveUntil(t, func(context.CancelFunc) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr)
	}
}
