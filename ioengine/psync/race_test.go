//go:build race

package psync_test

const raceEnabled = true
