package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/engines"
	"github.com/usrpt/usrpt/scsi"
)

// lun is an exported LUN: its configuration, its engine and its LU.
type lun struct {
	cfg    LUNConfig // as given, defaults filled in (Serial)
	dev    ioengine.Device
	lu     *scsi.LU
	choice engines.Choice
}

// ParseLUNSpec reads a quick-start --lun value: "null:1GiB", "mem:256MiB",
// "uring:/dev/nvme0n1", "psync:/path" or "file:/path/img" (the best
// engine for the file), optionally followed by ",key=value" settings of
// the [[lun]] table (bs, size, wc, ro, serial, create, buffered).
func ParseLUNSpec(spec string, n uint16) (LUNConfig, error) {
	c := LUNConfig{Number: n}
	parts := strings.Split(spec, ",")
	backend, arg, ok := strings.Cut(parts[0], ":")
	if !ok || arg == "" {
		return c, fmt.Errorf("--lun %q: want BACKEND:SIZE (null, mem) or BACKEND:PATH (uring, psync, file)", spec)
	}
	c.Backend = backend
	needsPath, known := backends[backend]
	switch {
	case !known:
		return c, fmt.Errorf("--lun %q: backend %q is unknown: want null, mem, uring, psync or file", spec, backend)
	case needsPath:
		c.Path = arg
	default:
		c.Size = arg
	}
	for _, kv := range parts[1:] {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "bs", "block_size":
			_, err = fmt.Sscan(v, &c.BlockSize)
		case "size":
			c.Size = v
		case "wc", "write_cache":
			c.WriteCache = v == "" || v == "1" || v == "true"
		case "ro", "read_only":
			c.ReadOnly = v == "" || v == "1" || v == "true"
		case "create":
			c.Create = v == "" || v == "1" || v == "true"
		case "buffered":
			c.Buffered = v == "" || v == "1" || v == "true"
		case "serial":
			c.Serial = v
		default:
			err = errors.New("unknown setting: want bs, size, wc, ro, serial, create or buffered")
		}
		if err != nil {
			return c, fmt.Errorf("--lun %q: %s: %v", spec, kv, err)
		}
	}
	return c, nil
}

// defaultSerial names a LUN stably: the target GUID and the LUN number
// do not change across restarts, and multipath and udev key on the serial.
func defaultSerial(guid uint64, n uint16) string { return fmt.Sprintf("usrpt-%016x-%d", guid, n) }

// openLUN opens c's engine and LU, or nothing.
func openLUN(c LUNConfig, guid uint64) (*lun, error) {
	if ps := checkLUN(&c); len(ps) > 0 {
		for i := range ps {
			ps[i].Key = fmt.Sprintf("lun %d %s", c.Number, ps[i].Key)
		}
		return nil, &ConfigError{Problems: ps}
	}
	var size uint64
	if c.Size != "" {
		size, _ = ParseSize(c.Size)
	}
	ec := engines.Config{
		Engine: c.Backend, Path: c.Path, SizeBytes: int64(size), BlockSize: c.BlockSize,
		Direct: !c.Buffered, ReadOnly: c.ReadOnly, Create: c.Create,
	}
	if c.Backend == "file" {
		ec.Engine = "auto"
	}
	if ec.BlockSize == 0 {
		ec.BlockSize = 512
	}
	dev, choice, err := engines.Open(ec)
	if err != nil {
		return nil, fmt.Errorf("LUN %d: open %s: %w", c.Number, c.Backend, err)
	}
	if c.Serial == "" {
		c.Serial = defaultSerial(guid, c.Number)
	}
	var naa uint64
	if c.NAA != "" {
		naa, _ = parseHex64(c.NAA)
	}
	lu, err := scsi.NewLU(scsi.Config{
		Engine: dev, BlockSize: c.BlockSize, Serial: c.Serial, NAA: naa,
		WriteCache: c.WriteCache, ReadOnly: c.ReadOnly, Thin: c.Thin,
	})
	if err != nil {
		_ = dev.Close()
		return nil, fmt.Errorf("LUN %d: %w", c.Number, err)
	}
	return &lun{cfg: c, dev: dev, lu: lu, choice: choice}, nil
}

func (l *lun) info() LUNInfo {
	naa := l.lu.NAA()
	return LUNInfo{
		LUNConfig:  l.cfg,
		SizeBytes:  int64(l.lu.Blocks()) * int64(l.lu.BlockSize()),
		BlockSize:  l.lu.BlockSize(),
		Engine:     l.choice.Engine,
		WriteCache: l.lu.WriteCache(),
		Sessions:   l.lu.Nexuses(),
		NAA:        fmt.Sprintf("%x", naa[:]),
	}
}

// flush makes what a write-back LU acknowledged durable: one OpFlush on a
// queue of its own, polled until it completes or ctx ends. The target's
// queues are closed by then, so this is the only I/O on the device.
func (l *lun) flush(ctx context.Context) error {
	if !l.dev.Supports(ioengine.OpFlush) {
		return nil
	}
	q, err := l.dev.NewQueue(ioengine.QueueConfig{Depth: 1})
	if err != nil {
		return fmt.Errorf("LUN %d: flush: %w", l.cfg.Number, err)
	}
	req := &ioengine.Request{Op: ioengine.OpFlush}
	out := make([]*ioengine.Request, 1)
	submitted := false
	for {
		if !submitted {
			submitted = q.Submit([]*ioengine.Request{req}) == 1
		}
		if submitted && q.Poll(out) == 1 {
			break
		}
		if ctx.Err() != nil {
			// Close waits for the flush in flight: the engine never
			// loses an accepted request.
			_ = q.Close()
			return fmt.Errorf("LUN %d: flush: %w", l.cfg.Number, ctx.Err())
		}
		runtime.Gosched()
		time.Sleep(50 * time.Microsecond)
	}
	if err := q.Close(); err != nil {
		return fmt.Errorf("LUN %d: flush: %w", l.cfg.Number, err)
	}
	if !req.OK() {
		return fmt.Errorf("LUN %d: flush: %w", l.cfg.Number, req.Err())
	}
	return nil
}

// close flushes a write-back LU and closes the engine, once the target
// has let go of it.
func (l *lun) close() error {
	var err error
	if l.lu.WriteCache() || l.cfg.WriteCache {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = l.flush(ctx)
		cancel()
	}
	return errors.Join(err, l.dev.Close())
}
