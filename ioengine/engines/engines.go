// Package engines opens an ioengine.Device by engine name, and resolves
// "auto" to the engine that is fastest and usable for the target at hand:
// io_uring where the kernel allows it and the device completes requests
// without kernel worker threads, psync otherwise. Callers (the bench
// harness, the target daemon) name engines only through this package.
package engines

import (
	"fmt"
	"time"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/ioengine/null"
	"github.com/usrpt/usrpt/ioengine/psync"
	"github.com/usrpt/usrpt/ioengine/uring"
)

// Names lists the engines Open accepts.
var Names = []string{"auto", "null", "mem", "uring", "psync"}

// Config selects and configures an engine. Fields an engine does not use
// are ignored.
type Config struct {
	Engine    string // one of Names; "" means auto when Path is set, null otherwise
	Path      string // file or block device (uring, psync, auto)
	SizeBytes int64  // null and mem capacity; for files, the size to create or extend to with Create
	BlockSize int    // null and mem logical block size (default 512)
	Direct    bool   // O_DIRECT for files and devices
	ReadOnly  bool
	Create    bool // create or extend a regular file to SizeBytes

	Workers int // psync worker threads (0: engine default)

	SQPoll     bool          // uring: kernel submission thread (see docs/tuning.md before using)
	SQPollCPU  int           // uring: CPU for the SQPOLL thread, -1 for none
	SQPollIdle time.Duration // uring: SQPOLL idle time before the thread sleeps
	IOPoll     bool          // uring: polled completions (NVMe with poll queues only)
}

// Choice says which engine Open used and why.
type Choice struct {
	Engine string `json:"engine"`
	Reason string `json:"reason"`
}

// Open opens the device cfg describes.
func Open(cfg Config) (ioengine.Device, Choice, error) {
	name := cfg.Engine
	if name == "" {
		name = "null"
		if cfg.Path != "" {
			name = "auto"
		}
	}
	if name != "null" && name != "mem" && cfg.Path == "" {
		return nil, Choice{}, fmt.Errorf("engine %s needs a file or block device (--filename)", name)
	}
	if (name == "null" || name == "mem") && cfg.Path != "" {
		return nil, Choice{}, fmt.Errorf("engine %s serves memory, not %s: choose uring, psync or auto for a file or device", name, cfg.Path)
	}
	choice := Choice{Engine: name, Reason: "asked for"}
	if name == "auto" {
		var err error
		if choice, err = pick(cfg); err != nil {
			return nil, Choice{}, err
		}
	}
	var (
		d   ioengine.Device
		err error
	)
	switch choice.Engine {
	case "null":
		d, err = null.Open(cfg.SizeBytes, blockSize(cfg))
	case "mem":
		d, err = mem.Open(cfg.SizeBytes, blockSize(cfg))
	case "uring":
		d, err = uring.Open(uring.Config{
			Path: cfg.Path, Direct: cfg.Direct, ReadOnly: cfg.ReadOnly, Create: cfg.Create, SizeBytes: cfg.SizeBytes,
			SQPoll: cfg.SQPoll, SQPollCPU: cfg.SQPollCPU, SQPollIdle: cfg.SQPollIdle, IOPoll: cfg.IOPoll,
		})
	case "psync":
		d, err = psync.Open(psync.Config{
			Config:  blockfile.Config{Path: cfg.Path, Direct: cfg.Direct, ReadOnly: cfg.ReadOnly, Create: cfg.Create, SizeBytes: cfg.SizeBytes},
			Workers: cfg.Workers,
		})
	default:
		return nil, Choice{}, fmt.Errorf("unknown engine %q: want one of %v", name, Names)
	}
	if err != nil {
		return nil, Choice{}, err
	}
	return d, choice, nil
}

func blockSize(cfg Config) int {
	if cfg.BlockSize == 0 {
		return 512
	}
	return cfg.BlockSize
}

// pick resolves auto: uring when io_uring works and the target completes
// I/O without punting it to kernel workers; psync otherwise.
func pick(cfg Config) (Choice, error) {
	if err := uring.Probe(); err != nil {
		return Choice{Engine: "psync", Reason: "io_uring is not usable here: " + err.Error()}, nil
	}
	// Open the target once to learn what it is (this also creates the file
	// when asked, as the chosen engine would).
	f, err := blockfile.Open(blockfile.Config{Path: cfg.Path, Direct: cfg.Direct, ReadOnly: cfg.ReadOnly, Create: cfg.Create, SizeBytes: cfg.SizeBytes})
	if err != nil {
		return Choice{}, err
	}
	defer f.Close()
	if punts, why := f.WorkerPunts(); punts {
		return Choice{Engine: "psync", Reason: why + "; pread/pwrite worker threads are faster there"}, nil
	}
	return Choice{Engine: "uring", Reason: fmt.Sprintf("io_uring is usable and %s completes requests without kernel workers", f.Path)}, nil
}
