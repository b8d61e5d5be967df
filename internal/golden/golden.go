// Package golden compares bytes a test produced with a hex dump kept in the
// package's testdata directory: the bytes an initiator sees (INQUIRY data,
// sense, SRP IUs), checked by hand against the spec once and then held
// still. `go test ./PKG -update` rewrites the files; review the diff
// against the spec before committing it. Only tests import it.
package golden

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with what the tests produce")

// Check compares got with testdata/name.golden, a hex dump.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	dump := []byte(hex.Dump(got))
	if *update {
		if err := os.WriteFile(path, dump, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update, then review the file)", err)
	}
	if !bytes.Equal(dump, want) {
		t.Errorf("%s differs from %s:\ngot:\n%swant:\n%s", name, path, dump, want)
	}
}
