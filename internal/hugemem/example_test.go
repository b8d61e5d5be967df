package hugemem_test

import (
	"fmt"

	"github.com/usrpt/usrpt/internal/hugemem"
)

// One region for the whole target, one pool per reactor.
func Example() {
	const bufSize, perCore, cores = 128 << 10, 256, 4
	size, err := hugemem.SplitLen(bufSize, perCore, cores, hugemem.HugePageSize)
	if err != nil {
		panic(err)
	}
	r, err := hugemem.Map(hugemem.RegionConfig{Size: size, Pages: hugemem.PagesAuto, Node: -1})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	// Register r.Bytes() once with io_uring and the RDMA PD here.
	pools, err := r.Split(bufSize, perCore, cores)
	if err != nil {
		panic(err)
	}
	p := pools[0] // owned by reactor 0 from here on
	b, ok := p.Get()
	if !ok {
		return // exhausted: back-pressure, retry when a buffer comes back
	}
	fmt.Println(len(b.Data), p.Offset(b.Index))
	p.Put(b)
}
