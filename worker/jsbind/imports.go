//go:build js && wasm

package jsbind

import (
	"unsafe"

	"github.com/evmlb/evmlb/internal/contract"
)

// The import module evmlb (CONTRACT.md §1): bytes cross through linear memory as addresses and lengths, so that
// no JS value, and no finalizer, is made per message. None of them calls back into Go.

//go:wasmimport evmlb deliver
func importDeliver(call uint32, msg unsafe.Pointer, msgLen int32, body unsafe.Pointer, bodyLen int32)

//go:wasmimport evmlb take
func importTake(text unsafe.Pointer, body unsafe.Pointer)

//go:wasmimport evmlb body
func importBody(call uint32, dst unsafe.Pointer)

// deliver hands the host a message of call num: its JSON text and its body (nil: none).
func deliver(num uint32, text, body []byte) {
	n := int32(contract.NoBody)
	var p unsafe.Pointer
	if body != nil {
		n = int32(len(body))
		p = unsafe.Pointer(unsafe.SliceData(body))
	}
	importDeliver(num, unsafe.Pointer(unsafe.SliceData(text)), int32(len(text)), p, n)
}

// take copies the text of the event being handled (begin or complete) and, when wantBody and bodyLen is not
// NoBody, its body (nil when none). Only inside that event's callback.
func take(textLen, bodyLen int, wantBody bool) (string, []byte) {
	text := make([]byte, textLen)
	var body []byte
	var bp unsafe.Pointer
	if wantBody && bodyLen != contract.NoBody {
		body = make([]byte, bodyLen)
		if bodyLen > 0 {
			bp = unsafe.Pointer(unsafe.SliceData(body))
		}
	}
	if textLen > 0 || bp != nil {
		importTake(unsafe.Pointer(unsafe.SliceData(text)), bp)
	}
	return unsafe.String(unsafe.SliceData(text), textLen), body
}

// requestBody copies the request body of call num (n bytes) out of the host.
func requestBody(num uint32, n int) []byte {
	b := make([]byte, n)
	if n > 0 {
		importBody(num, unsafe.Pointer(unsafe.SliceData(b)))
	}
	return b
}
