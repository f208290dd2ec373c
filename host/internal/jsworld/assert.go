package jsworld

import "github.com/evmlb/evmlb/host/internal/jsrt"

// Every host object must be a jsrt.Object, or Go could not see its properties.
var (
	_ jsrt.Object = (*Headers)(nil)
	_ jsrt.Object = (*Request)(nil)
	_ jsrt.Object = (*Response)(nil)
	_ jsrt.Object = (*ReadableStream)(nil)
	_ jsrt.Object = (*Reader)(nil)
	_ jsrt.Object = (*Controller)(nil)
	_ jsrt.Object = (*AbortSignal)(nil)
	_ jsrt.Object = (*Namespace)(nil)
	_ jsrt.Object = (*ObjectID)(nil)
	_ jsrt.Object = (*Stub)(nil)
	_ jsrt.Object = (*Storage)(nil)
	_ jsrt.Object = (*fsObject)(nil)
)
