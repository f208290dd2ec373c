//go:build race

package server

// raceOn: the race detector is on (goroutine stacks grow larger under it).
const raceOn = true
