package ring

import "fmt"

// checkSize panics unless size is a power of two >= 2. A bad size is a
// programmer error in the caller (sizes come from code or from validated
// configuration), so it is reported as a broken invariant, not an error value.
func checkSize(ctor string, size int) {
	if size < 2 || size&(size-1) != 0 {
		panic(fmt.Sprintf("ring: %s: size %d is not a power of two >= 2", ctor, size))
	}
}
