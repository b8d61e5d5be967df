package control

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/usrpt/usrpt/server/control/controltest"
)

// FuzzRequest: any bytes on a connection decode into values whose
// responses are valid JSON-RPC — or nothing for notifications — never a
// panic, whatever the methods are asked.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"get_luns","id":1}`,
		`{"jsonrpc":"2.0","method":"lun_add","params":{"spec":"mem:1g"},"id":"x"}`,
		`{"jsonrpc":"2.0","method":"lun_resize","params":{"number":0,"size":"2g"},"id":null}`,
		`{"jsonrpc":"2.0","method":"acl_add","params":{"name":"a","initiators":["*"],"luns":[0]},"id":2}`,
		`[{"jsonrpc":"2.0","method":"get_stats","id":1},{"jsonrpc":"2.0","method":"session_logout","params":{"id":7}}]`,
		`[]`, `[1,2]`, `{}`, `null`, `"x"`, `{"jsonrpc":"2.0","method":"x","id":[]}`,
		`{"jsonrpc":"2.0","method":"lun_remove","params":{"number":1e3},"id":1}`,
		"{\"jsonrpc\":\"2.0\",\"method\":\"get_acls\",\"id\":1}\n{\"jsonrpc\":",
	} {
		f.Add([]byte(s))
	}
	l := &Listener{svc: &service{api: controltest.New()}, opts: options{maxRequest: 1 << 16, log: slog.New(slog.DiscardHandler)}}
	f.Fuzz(func(t *testing.T, in []byte) {
		cr := &capReader{r: bytes.NewReader(in), limit: 1 << 16}
		dec := json.NewDecoder(cr)
		for range 64 {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			cr.end = dec.InputOffset()
			if err != nil {
				return
			}
			out := l.handle(raw)
			if out == nil {
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("response is not JSON: %q", out)
			}
			if bytes.HasPrefix(out, []byte("[")) {
				var rs []testResp
				if err := json.Unmarshal(out, &rs); err != nil || len(rs) == 0 {
					t.Fatalf("batch response %q: %v", out, err)
				}
				continue
			}
			var r testResp
			if err := json.Unmarshal(out, &r); err != nil || r.JSONRPC != "2.0" || (r.Error == nil) == (r.Result == nil) {
				t.Fatalf("response %q: %v", out, err)
			}
		}
	})
}

// FuzzParseSpec: any spec is a LUNConfig with a backend or an error that
// quotes it; any size is non-negative or an error.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"mem:256MiB", "null:1.5g", "uring:/dev/nvme0n1", "file:/a:b", "mem:", ":x", "mem:99999999999p", "mem:4ib"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseSpec(s)
		if err != nil {
			if !strings.Contains(err.Error(), "LUN spec") {
				t.Fatalf("error %v does not name the spec", err)
			}
			return
		}
		if c.Backend == "" || (c.Path == "") == (c.Size == "") {
			t.Fatalf("ParseSpec(%q) = %+v", s, c)
		}
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "4k": 4096, "4KB": 4096, "4KiB": 4096, "1g": 1 << 30, "1.5g": 3 << 29, "512b": 512, " 2m ": 2 << 20, "256MiB": 256 << 20, "8p": 8 << 50,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5", "k", "4q", "-4k", "4kk", ".", "4ib", "1e9", "8192p", "99999999999999999999", "1.2.3k"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestParseSpec(t *testing.T) {
	for in, want := range map[string][3]string{
		"mem:256MiB":         {"mem", "", "256MiB"},
		"NULL:1t":            {"null", "", "1t"},
		"uring:/dev/nvme0n1": {"uring", "/dev/nvme0n1", ""},
		"psync:/var/tmp/a":   {"psync", "/var/tmp/a", ""},
		"file:/mnt/a:b":      {"file", "/mnt/a:b", ""},
	} {
		c, err := ParseSpec(in)
		if err != nil || [3]string{c.Backend, c.Path, c.Size} != want {
			t.Errorf("ParseSpec(%q) = %+v, %v", in, c, err)
		}
	}
	for _, in := range []string{"", "mem", "mem:", "mem:big", "disk:/dev/sda", "uring"} {
		if _, err := ParseSpec(in); err == nil {
			t.Errorf("ParseSpec(%q) accepted", in)
		}
	}
}
