package psync

import (
	"bytes"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
	"github.com/usrpt/usrpt/ioengine/blockfile/blockfiletest"
	"github.com/usrpt/usrpt/ioengine/enginetest"
)

// On a kernel without pwritev2(RWF_DSYNC), FUA writes use pwrite and
// fdatasync; force that path and check the data lands.
func TestFUAFallback(t *testing.T) {
	p := blockfiletest.File(t, "", "fua.img", 8<<20)
	dev, err := Open(Config{Config: blockfile.Config{Path: p, Direct: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	d := dev.(*Device)
	d.noDsync.Store(true)
	bufs := enginetest.NewBuffers(t, 2, 4096)
	q := enginetest.NewQueue(t, d, 2, bufs)
	enginetest.Fill(bufs.Bufs[0], 7)
	w := &ioengine.Request{Op: ioengine.OpWrite, Flags: ioengine.FlagFUA, Offset: 8192, Buf: bufs.Bufs[0]}
	r := &ioengine.Request{Op: ioengine.OpRead, Offset: 8192, Buf: bufs.Bufs[1]}
	enginetest.Exec(t, q, w)
	enginetest.Exec(t, q, r)
	if !w.OK() || !r.OK() || !bytes.Equal(bufs.Bufs[0], bufs.Bufs[1]) {
		t.Fatalf("write %v read %v, equal %v", w.Err(), r.Err(), bytes.Equal(bufs.Bufs[0], bufs.Bufs[1]))
	}
}
