package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleConfig keeps docs/configuration.md's example, shipped as
// deploy/usrpt.toml, from rotting: it must parse without a problem.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../deploy/usrpt.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The example names a device that may be absent here, a directory
	// for its image file, and two CPUs: point them at a temp dir and CPU 0.
	dir := t.TempDir()
	doc := strings.ReplaceAll(string(b), "/var/lib/usrpt", dir)
	doc = strings.Replace(doc, `cores = "0x3"`, `cores = "0x1"`, 1)
	doc = strings.ReplaceAll(doc, "/dev/nvme0n1", filepath.Join(dir, "disk0.img"))
	if err := os.WriteFile(filepath.Join(dir, "disk0.img"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.LUNs) == 0 || len(cfg.ACLs) == 0 || len(cfg.Listeners) == 0 {
		t.Errorf("the example lost its tables: %+v", cfg)
	}
	md, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), strings.TrimSpace(string(b))) {
		t.Error("docs/configuration.md does not contain deploy/usrpt.toml verbatim")
	}
}
