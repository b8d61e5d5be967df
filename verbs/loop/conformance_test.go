package loop_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/usrpt/usrpt/verbs"
	"github.com/usrpt/usrpt/verbs/loop"
	"github.com/usrpt/usrpt/verbs/verbstest"
)

// fabric adapts a loop.Fabric to the conformance suite: devices named
// loopN, listen addresses verbstest-N, both unique in the fabric.
type fabric struct {
	f *loop.Fabric
	n atomic.Int64
}

func (f *fabric) NewDevice(t testing.TB) verbs.Device {
	t.Helper()
	d, err := f.f.NewDevice(fmt.Sprintf("loop%d", f.n.Add(1)))
	if err != nil {
		t.Fatalf("loop: NewDevice: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func (f *fabric) ListenAddr(testing.TB, verbs.Device) string {
	return fmt.Sprintf("verbstest-%d", f.n.Add(1))
}

func TestConformance(t *testing.T) {
	verbstest.Run(t, func(t *testing.T) verbstest.Fabric { return &fabric{f: loop.NewFabric()} })
}
