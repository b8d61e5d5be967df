package enginetest

// RaceEnabled lets the external tests know what the suite skips.
const RaceEnabled = raceEnabled
