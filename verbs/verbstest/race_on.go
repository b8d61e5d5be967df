//go:build race

package verbstest

// raceEnabled: the race detector allocates on its own, so the zero
// allocation checks skip under it.
const raceEnabled = true
