package poller_test

import (
	"testing"

	"github.com/usrpt/usrpt/poller"
)

// BenchmarkRunOnce is the fixed cost of one loop iteration with one idle
// poller and an empty inbox: the floor every poller pays.
func BenchmarkRunOnce(b *testing.B) {
	r, err := poller.NewReactor(poller.ReactorConfig{CPU: -1})
	if err != nil {
		b.Fatal(err)
	}
	r.Register("idle", func() poller.Status { return poller.Idle })
	b.ReportAllocs()
	for b.Loop() {
		r.RunOnce()
	}
}
