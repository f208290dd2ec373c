package server

import (
	"time"

	"github.com/evmlb/evmlb/internal/contract"
)

// The host side of CONTRACT.md version 3. internal/contract holds these names too once the Go program speaks
// version 3; until then this host keeps its own copy, so that a program of version 2 is refused with
// ErrContractVersion rather than misread.
const (
	contractVersion = 3

	bindingContractVersion = contract.BindingContractVersion
	bindingMaxBodyBytes    = "maxBodyBytes"
	bindingRequestHeaders  = "requestHeaders"
	bindingBegin           = "begin"
	bindingComplete        = "complete"
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
