package server

import (
	"time"

	"github.com/evmlb/evmlb/internal/contract"
)

// The host side of CONTRACT.md, its names from internal/contract.
const (
	contractVersion = contract.Version

	bindingContractVersion = contract.BindingContractVersion
	bindingMaxBodyBytes    = contract.BindingMaxBodyBytes
	bindingRequestHeaders  = contract.BindingRequestHeaders
	bindingBegin           = contract.BindingBegin
	bindingComplete        = contract.BindingComplete
)

// objectURLBase prefixes the path of an object operation to make the url of the call the object receives.
const objectURLBase = "https://object"

// Operation errors (the `error` of a failed operation's result).
const (
	errTimeout  = "timeout"
	errAborted  = "aborted"
	errTooLarge = "too_large"
	errNetwork  = "network"
	errStorage  = "storage"
	errInvalid  = "invalid"
)

// maxKeys is Cloudflare's limit of keys per storage put or delete.
const maxKeys = 128

// alarmBackoff is the delay before retry n+1 (n = the retryCount that failed): 2 s, 4 s, 8 s, …
func alarmBackoff(n int) time.Duration {
	return time.Duration(contract.AlarmFirstBackoffMsec) * time.Millisecond << n
}
