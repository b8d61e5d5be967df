package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usrpt/usrpt/server/control/controltest"
)

var quiet = WithLogger(slog.New(slog.DiscardHandler))

func serve(t *testing.T, opt ...Option) (*Listener, *controltest.Fake) {
	t.Helper()
	fake := controltest.New()
	path := filepath.Join(t.TempDir(), "run", "usrpt.sock")
	l, err := Serve(t.Context(), path, fake, append([]Option{quiet}, opt...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, fake
}

// exchange sends in on a fresh connection, shuts the write side and
// returns the response lines.
func exchange(t *testing.T, path, in string) []string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.UnixConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(out)) {
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	return lines
}

type testResp struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
}

func TestProtocol(t *testing.T) {
	l, _ := serve(t)
	for _, tc := range []struct {
		name, in string
		// want: per response line, "id code" for an error or "id result" for a success
		// (result compared as compact JSON, or "*" for any).
		want []string
	}{
		{"newline delimited", `{"jsonrpc":"2.0","method":"get_acls","id":1}` + "\n", []string{`1 [{"name":"lab","initiators":["0x*","10.0.0.0/24"],"luns":[0,1]}]`}},
		{"no newline then EOF", `{"jsonrpc":"2.0","method":"lun_remove","params":{"number":1},"id":"a"}`, []string{`"a" true`}},
		{"two on one line", `{"jsonrpc":"2.0","method":"get_sessions","id":1}{"jsonrpc":"2.0","method":"get_luns","id":2}`, []string{"1 *", "2 *"}},
		{"pretty printed", "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"get_stats\",\n  \"id\": 3\n}\n", []string{"3 *"}},
		{"null id", `{"jsonrpc":"2.0","method":"acl_remove","params":{"name":"lab"},"id":null}`, []string{"null true"}},
		{"notification", `{"jsonrpc":"2.0","method":"get_luns"}` + "\n" + `{"jsonrpc":"2.0","method":"get_acls","id":9}`, []string{"9 *"}},
		{"parse error", `{"jsonrpc":"2.0",,}`, []string{"null -32700"}},
		{"truncated", `{"jsonrpc":"2.0","method":"get_luns","id":1`, []string{"null -32700"}},
		{"garbage", "\x00\xff\xfe garbage", []string{"null -32700"}},
		{"scalar", `42`, []string{"null -32600"}},
		{"no version", `{"method":"get_luns","id":1}`, []string{"1 -32600"}},
		{"version 1.0", `{"jsonrpc":"1.0","method":"get_luns","id":1}`, []string{"1 -32600"}},
		{"method not a string", `{"jsonrpc":"2.0","method":5,"id":1}`, []string{"1 -32600"}},
		{"object id", `{"jsonrpc":"2.0","method":"get_luns","id":{}}`, []string{"null -32600"}},
		{"invalid notification", `{"jsonrpc":"2.0"}`, []string{"null -32600"}},
		{"method not found", `{"jsonrpc":"2.0","method":"bdev_malloc_create","id":1}`, []string{"1 -32601"}},
		{"positional params", `{"jsonrpc":"2.0","method":"lun_remove","params":[1],"id":1}`, []string{"1 -32602"}},
		{"unknown param", `{"jsonrpc":"2.0","method":"lun_remove","params":{"number":1,"force":true},"id":1}`, []string{"1 -32602"}},
		{"params on get", `{"jsonrpc":"2.0","method":"get_luns","params":{"x":1},"id":1}`, []string{"1 -32602"}},
		{"missing param", `{"jsonrpc":"2.0","method":"lun_remove","params":{},"id":1}`, []string{"1 -32602"}},
		{"number too big", `{"jsonrpc":"2.0","method":"lun_remove","params":{"number":70000},"id":1}`, []string{"1 -32602"}},
		{"negative number", `{"jsonrpc":"2.0","method":"lun_remove","params":{"number":-1},"id":1}`, []string{"1 -32602"}},
		{"application error", `{"jsonrpc":"2.0","method":"lun_remove","params":{"number":5},"id":1}`, []string{"1 -32000"}},
		{"batch", `[{"jsonrpc":"2.0","method":"get_acls","id":1},{"jsonrpc":"2.0","method":"nope","id":2},{"jsonrpc":"2.0","method":"get_luns"},5]`, []string{"[1 * | 2 -32601 | null -32600]"}},
		{"empty batch", `[]`, []string{"null -32600"}},
		{"batch of notifications", `[{"jsonrpc":"2.0","method":"get_luns"}]` + "\n" + `{"jsonrpc":"2.0","method":"get_luns","id":4}`, []string{"4 *"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case gets the fake's initial contents.
			l2, err := Serve(t.Context(), filepath.Join(t.TempDir(), "s"), controltest.New(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			lines := exchange(t, l2.Path(), tc.in)
			if len(lines) != len(tc.want) {
				t.Fatalf("responses:\n%s\nwant %d", strings.Join(lines, "\n"), len(tc.want))
			}
			for i, line := range lines {
				if got := summarize(t, line, tc.want[i]); got != tc.want[i] {
					t.Errorf("response %d = %s (%s), want %s", i, got, line, tc.want[i])
				}
			}
		})
	}
	_ = l
}

// summarize reduces a response line to "id code" or "id result", a
// batch to "[a | b]"; a result is shown as "*" when want has "*" there.
func summarize(t *testing.T, line, want string) string {
	t.Helper()
	if strings.HasPrefix(line, "[") {
		var rs []json.RawMessage
		if err := json.Unmarshal([]byte(line), &rs); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		wants := strings.Split(strings.Trim(want, "[]"), " | ")
		var parts []string
		for i, r := range rs {
			w := ""
			if i < len(wants) {
				w = wants[i]
			}
			parts = append(parts, summarize(t, string(r), w))
		}
		return "[" + strings.Join(parts, " | ") + "]"
	}
	var r testResp
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if r.JSONRPC != "2.0" {
		t.Errorf("jsonrpc %q in %s", r.JSONRPC, line)
	}
	if r.Error != nil {
		if r.Result != nil {
			t.Errorf("both result and error: %s", line)
		}
		return fmt.Sprintf("%s %d", r.ID, r.Error.Code)
	}
	if strings.HasSuffix(want, " *") {
		return string(r.ID) + " *"
	}
	return fmt.Sprintf("%s %s", r.ID, r.Result)
}

func rpc(t *testing.T, path, method string, params, result any) error {
	t.Helper()
	c, err := Dial(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Call(t.Context(), method, params, result)
}

func TestMethods(t *testing.T) {
	l, fake := serve(t)
	p := l.Path()
	var luns []LUN
	if err := rpc(t, p, "get_luns", nil, &luns); err != nil || len(luns) != 2 {
		t.Fatalf("get_luns: %v, %+v", err, luns)
	}
	if l1 := luns[1]; l1.Number != 1 || l1.Backend != "uring" || l1.Path != "/dev/nvme0n1" || l1.SizeBytes != 1<<30 || l1.BlockSize != 4096 || !l1.WriteCache || l1.NAA == "" {
		t.Errorf("LUN 1 = %+v", l1)
	}
	var added LUN
	if err := rpc(t, p, "lun_add", LUNAddParams{Spec: "mem:64MiB"}, &added); err != nil || added.Number != 2 || added.SizeBytes != 64<<20 || added.Backend != "mem" {
		t.Fatalf("lun_add spec: %v, %+v", err, added)
	}
	n := uint16(10)
	if err := rpc(t, p, "lun_add", LUNAddParams{Number: &n, Backend: "psync", Path: "/var/tmp/x", BlockSize: 4096, ReadOnly: true}, &added); err != nil || added.Number != 10 || !added.ReadOnly || added.BlockSize != 4096 {
		t.Fatalf("lun_add fields: %v, %+v", err, added)
	}
	var e *Error
	if err := rpc(t, p, "lun_add", LUNAddParams{Number: &n, Spec: "null:1g"}, nil); !errors.As(err, &e) || e.Code != CodeServerError || e.Message != "LUN 10 exists" {
		t.Errorf("lun_add on a used number: %v", err)
	}
	for _, bad := range []LUNAddParams{{}, {Spec: "mem:1g", Backend: "mem"}, {Spec: "disk:/dev/sda"}, {Spec: "mem:lots"}} {
		if err := rpc(t, p, "lun_add", bad, nil); !errors.As(err, &e) || e.Code != CodeInvalidParams {
			t.Errorf("lun_add %+v: %v, want invalid params", bad, err)
		}
	}
	var ok bool
	if err := rpc(t, p, "lun_resize", LUNResizeParams{Number: &n, Size: "2GiB"}, &ok); err != nil || !ok {
		t.Fatalf("lun_resize: %v", err)
	}
	if err := rpc(t, p, "lun_resize", map[string]any{"number": 10, "size": 8192}, nil); err != nil {
		t.Fatalf("lun_resize by bytes: %v", err)
	}
	if l := fake.LUNs(); l[len(l)-1].SizeBytes != 8192 {
		t.Errorf("size after resize %d", l[len(l)-1].SizeBytes)
	}
	if err := rpc(t, p, "lun_resize", LUNResizeParams{Number: &n, Size: "2 parsecs"}, nil); !errors.As(err, &e) || e.Code != CodeInvalidParams {
		t.Errorf("lun_resize bad size: %v", err)
	}
	if err := rpc(t, p, "lun_remove", LUNParams{Number: &n}, &ok); err != nil || !ok {
		t.Fatalf("lun_remove: %v", err)
	}
	if err := rpc(t, p, "acl_add", ACL{Name: "ops", Initiators: []string{"*"}}, nil); err != nil {
		t.Fatal(err)
	}
	var acls []ACL
	if err := rpc(t, p, "get_acls", nil, &acls); err != nil || len(acls) != 2 || acls[1].Name != "ops" || acls[1].LUNs != nil {
		t.Fatalf("get_acls: %v, %+v", err, acls)
	}
	if err := rpc(t, p, "acl_add", ACL{Name: "x"}, nil); !errors.As(err, &e) || e.Code != CodeInvalidParams {
		t.Errorf("acl_add without initiators: %v", err)
	}
	if err := rpc(t, p, "acl_remove", NameParams{Name: "ops"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := rpc(t, p, "acl_remove", NameParams{Name: "ops"}, nil); !errors.As(err, &e) || e.Code != CodeServerError {
		t.Errorf("acl_remove twice: %v", err)
	}
	var sessions []json.RawMessage
	if err := rpc(t, p, "get_sessions", nil, &sessions); err != nil || len(sessions) != 1 || !strings.Contains(string(sessions[0]), `"initiator_port_id":"0xfe80`) {
		t.Fatalf("get_sessions: %v, %s", err, sessions)
	}
	id := uint64(7)
	if err := rpc(t, p, "session_logout", SessionParams{ID: &id}, nil); err != nil {
		t.Fatal(err)
	}
	if err := rpc(t, p, "get_sessions", nil, &sessions); err != nil || len(sessions) != 0 {
		t.Fatalf("get_sessions after logout: %v, %s", err, sessions)
	}
	var stats map[string]any
	if err := rpc(t, p, "get_stats", nil, &stats); err != nil || stats["logins"] != float64(3) || stats["uptime_ns"] != float64(time.Hour) {
		t.Fatalf("get_stats: %v, %v", err, stats)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	l, fake := serve(t)
	for _, n := range []uint16{0, 1} {
		if err := fake.RemoveLUN(n); err != nil {
			t.Fatal(err)
		}
	}
	_ = fake.Logout(7)
	for _, m := range []string{"get_luns", "get_sessions"} {
		var raw json.RawMessage
		if err := rpc(t, l.Path(), m, nil, &raw); err != nil || string(raw) != "[]" {
			t.Errorf("%s = %s, %v; want []", m, raw, err)
		}
	}
}

func TestPanicIsInternalError(t *testing.T) {
	l, fake := serve(t)
	fake.SetPanic(true)
	var e *Error
	if err := rpc(t, l.Path(), "get_luns", nil, nil); !errors.As(err, &e) || e.Code != CodeInternalError {
		t.Fatalf("%v, want internal error", err)
	}
	fake.SetPanic(false)
	if err := rpc(t, l.Path(), "get_luns", nil, nil); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestOversizeRequest(t *testing.T) {
	l, _ := serve(t, WithMaxRequestBytes(1024))
	small := `{"jsonrpc":"2.0","method":"get_acls","id":1}`
	big := `{"jsonrpc":"2.0","method":"get_acls","params":{"pad":"` + strings.Repeat("x", 2000) + `"},"id":2}`
	lines := exchange(t, l.Path(), small+"\n"+big+"\n"+small)
	if len(lines) != 2 || summarize(t, lines[0], "1 *") != "1 *" || summarize(t, lines[1], "") != "null -32600" {
		t.Fatalf("responses %q: want the first answered, then the refusal, then the connection closed", lines)
	}
	// A request just under the cap, after others, is served: the cap is per request.
	pad := strings.Repeat(" ", 1024-len(small)-1)
	lines = exchange(t, l.Path(), small+"\n"+small+pad+"\n"+small)
	if len(lines) != 3 {
		t.Fatalf("responses %q, want 3", lines)
	}
}

func TestDefaultCapIsOneMiB(t *testing.T) {
	l, _ := serve(t)
	big := `{"jsonrpc":"2.0","method":"get_acls","params":{"pad":"` + strings.Repeat("x", 1<<20) + `"},"id":2}`
	if lines := exchange(t, l.Path(), big); len(lines) != 1 || !strings.Contains(lines[0], "larger than 1048576 bytes") {
		t.Fatalf("responses %q", lines)
	}
}

func TestReadTimeout(t *testing.T) {
	l, _ := serve(t, WithReadTimeout(100*time.Millisecond))
	c, err := net.Dial("unix", l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, `{"jsonrpc":"2.0",`) // and stall
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v: want the server to close without a response", b, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

func TestConcurrentClients(t *testing.T) {
	l, _ := serve(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			c, err := Dial(t.Context(), l.Path())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			n := uint16(100 + i)
			for range 20 {
				var luns []LUN
				if err := c.Call(t.Context(), "get_luns", nil, &luns); err != nil {
					errs <- err
					return
				}
			}
			if err := c.Call(t.Context(), "lun_add", LUNAddParams{Number: &n, Spec: "null:1m"}, nil); err != nil {
				errs <- err
			}
			// Adds without a number must each get their own.
			if err := c.Call(t.Context(), "lun_add", LUNAddParams{Spec: "null:1m"}, nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var luns []LUN
	if err := rpc(t, l.Path(), "get_luns", nil, &luns); err != nil || len(luns) != 2+64 {
		t.Fatalf("%v: %d LUNs, want 66", err, len(luns))
	}
}

func TestSocketFile(t *testing.T) {
	l, _ := serve(t)
	fi, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(l.Path())); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want the socket alone", len(ents))
	}
	// Another server on the same path is refused while this one answers.
	if _, err := Serve(t.Context(), l.Path(), controltest.New(), quiet); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Fatalf("second Serve: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usrpt.sock")
	// A socket whose server is gone: bound, then closed without unlinking.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	l, err := Serve(t.Context(), path, controltest.New(), quiet)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l.Close()
	if err := rpc(t, path, "get_luns", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestNotASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usrpt.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(t.Context(), path, controltest.New(), quiet); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Serve over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("the file was touched")
	}
}

func TestContextEndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	path := filepath.Join(t.TempDir(), "usrpt.sock")
	l, err := Serve(ctx, path, controltest.New(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	// An idle client must not hold up the stop.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	<-l.done
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after the context ended: %v", err)
	}
	if _, err := bufio.NewReader(c).ReadByte(); err == nil {
		t.Error("the idle connection stayed open")
	}
}

func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Dial(t.Context(), filepath.Join(dir, "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "is usrpt serve running?") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing socket: %v", err)
	}
	path := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	if _, err := Dial(t.Context(), path); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("stale socket: %v", err)
	}
}

func TestClientContext(t *testing.T) {
	// A server that never answers: the call ends with its context.
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := Dial(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Call(ctx, "get_luns", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the deadline", err)
	}
}
