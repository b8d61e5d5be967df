package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestServeHooks: the hooks usrpt serve calls start and stop the control
// socket and the metrics endpoint.
func TestServeHooks(t *testing.T) {
	if startControl == nil || startMetrics == nil {
		t.Fatal("hooks not set")
	}
	path := filepath.Join(t.TempDir(), "c.sock")
	stop, err := startControl(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v, %v", fi, err)
	}
	stop()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after stop: %v", err)
	}
	stop, err = startMetrics(t.Context(), "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
