// Package layers holds no code: its test states which packages of the module may import which, and fails when an
// import runs back up a layer (see layers_test.go). It lives where `go test ./...` runs it.
package layers
