// Package strscan finds where the plain run inside a JSON string ends, eight bytes at a time: the string
// scanners of a client's request (internal/jsonrpc) and of an upstream's answer (internal/retry) spend most of a
// large body's time in strings (calldata, logs), and a loop over bytes costs several wasm instructions per byte.
package strscan

import "encoding/binary"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// zero has the high bit of each byte of x that is 0 set, and maybe of bytes above the first such (a borrow): it
// is not 0 exactly when some byte of x is 0.
func zero(x uint64) uint64 { return (x - ones) &^ x & highs }

// stops is not 0 exactly when the word x holds a '"', a '\\' or a control character (a byte below 0x20).
func stops(x uint64) uint64 {
	return zero(x^(ones*'"')) | zero(x^(ones*'\\')) | (x-ones*0x20)&^x&highs
}

// Skip returns the index of the first byte of b at or after i that ends a plain run of a JSON string ('"', '\\'
// or a control character), or len(b). Bytes from 0x80 are plain.
func Skip(b []byte, i int) int {
	for i+8 <= len(b) && stops(binary.LittleEndian.Uint64(b[i:])) == 0 {
		i += 8
	}
	for i < len(b) {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
		i++
	}
	return i
}

// SkipASCII is Skip for a scanner that checks UTF-8 itself: a byte from 0x80 ends the run too.
func SkipASCII(b []byte, i int) int {
	// Four words a round while they last: one bounds check and one branch per 32 bytes (a large eth_call's calldata
	// is megabytes of this; Go's wasm pays for every round of a loop).
	for i+32 <= len(b) {
		w := b[i : i+32 : i+32]
		x0, x1 := binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[8:])
		x2, x3 := binary.LittleEndian.Uint64(w[16:]), binary.LittleEndian.Uint64(w[24:])
		if stops(x0)|stops(x1)|stops(x2)|stops(x3)|(x0|x1|x2|x3)&highs != 0 {
			break
		}
		i += 32
	}
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		if stops(x)|x&highs != 0 {
			break
		}
		i += 8
	}
	for i < len(b) {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
			return i
		}
		i++
	}
	return i
}
