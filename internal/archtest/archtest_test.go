package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func goList(t *testing.T) []Package {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", Module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []Package
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p Package
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestModuleFollowsLayering(t *testing.T) {
	pkgs := goList(t)
	n := 0
	for _, p := range pkgs {
		if _, ok := rel(p.ImportPath); ok {
			n++
		}
	}
	if n < 5 {
		t.Fatalf("go list found only %d module packages", n)
	}
	for _, msg := range Check(pkgs, Rules) {
		t.Error(msg)
	}
}

// The checker itself must catch each kind of violation.
func TestCheckCatchesViolations(t *testing.T) {
	m := func(s string) string { return Module + "/" + s }
	pkgs := []Package{
		{ImportPath: "fmt", Standard: true},
		{ImportPath: "encoding/binary", Standard: true},
		{ImportPath: "golang.org/x/sys/unix"},
		{ImportPath: "example.com/helper"},
		{ImportPath: m("srp"), Imports: []string{"encoding/binary", "golang.org/x/sys/unix"}},
		{ImportPath: m("scsi"), Imports: []string{"fmt", m("ioengine")}, Deps: []string{"fmt", m("ioengine"), "example.com/helper"}},
		{ImportPath: m("poller"), Imports: []string{m("ioengine"), m("internal/ring")}},
		{ImportPath: m("verbs/loop"), Imports: []string{m("target"), m("verbs")}},
		{ImportPath: m("target"), Imports: []string{m("bench")}},
		{ImportPath: m("ioengine"), Imports: []string{m("server")}},
		{ImportPath: m("mystery")},
		{ImportPath: m("cmd/usrpt"), Imports: []string{m("server"), m("bench")}},
	}
	got := Check(pkgs, Rules)
	want := []string{
		"ioengine imports server",
		"mystery: not placed",
		"poller imports ioengine",
		"scsi depends on example.com/helper indirectly",
		"srp imports golang.org/x/sys/unix",
		"target imports bench",
		"verbs/loop imports target",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("violation %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}
