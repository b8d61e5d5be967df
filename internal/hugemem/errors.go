package hugemem

import "errors"

var (
	// ErrNotSupported is returned by Map on operating systems other than
	// Linux.
	ErrNotSupported = errors.New("not supported on this operating system")

	// ErrNoHugepages is wrapped by Map's error when PagesHuge was asked for
	// and the kernel had not enough free 2 MiB hugepages.
	ErrNoHugepages = errors.New("not enough free 2 MiB hugepages")

	// ErrInUse is wrapped by Region.Close's error while buffers are still out.
	ErrInUse = errors.New("buffers still in use")

	// ErrClosed is wrapped by NewPool's and Split's error once the Region is
	// closed.
	ErrClosed = errors.New("region closed")
)
