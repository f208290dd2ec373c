// Package procutil runs the child processes of the end-to-end tests: it keeps
// their output in a bounded buffer, starts each in its own process group, and
// stops the whole group (a process and everything it spawned) when asked.
package procutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sync"
	"time"
)

// LogBuffer is an io.Writer that keeps the last Max bytes written to it. It is
// safe for concurrent use, so it can take a process's stdout and stderr at once.
type LogBuffer struct {
	// Max is how many bytes to keep; 0 means 4 MiB.
	Max int

	mu      sync.Mutex
	buf     []byte
	dropped int
	changed chan struct{}
}

// Write appends p, dropping the oldest bytes beyond Max.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	max := b.Max
	if max <= 0 {
		max = 4 << 20
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - max; over > 0 {
		b.buf = append(b.buf[:0:0], b.buf[over:]...)
		b.dropped += over
	}
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return len(p), nil
}

// String returns what is kept, prefixed by a note when older output was dropped.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[%d earlier bytes dropped]\n%s", b.dropped, b.buf)
	}
	return string(b.buf)
}

// Bytes returns a copy of what is kept.
func (b *LogBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf)
}

// wait returns a channel closed at the next Write.
func (b *LogBuffer) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}

// WaitMatch waits until re matches the kept output and returns the submatches of
// the first match. It gives up when ctx ends or when exited is closed (the
// process is gone), whichever comes first.
func (b *LogBuffer) WaitMatch(ctx context.Context, re *regexp.Regexp, exited <-chan struct{}) ([]string, error) {
	for {
		ch := b.wait()
		if m := re.FindStringSubmatch(string(b.Bytes())); m != nil {
			return m, nil
		}
		select {
		case <-ch:
		case <-exited:
			if m := re.FindStringSubmatch(string(b.Bytes())); m != nil {
				return m, nil
			}
			return nil, errors.New("process exited before printing " + re.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q: %w", re.String(), ctx.Err())
		}
	}
}

// Proc is a started child process in its own process group.
type Proc struct {
	Cmd  *exec.Cmd
	Logs *LogBuffer

	exited chan struct{}
	err    error
	once   sync.Once
}

// Start starts cmd in a new process group with stdout and stderr going to a new
// LogBuffer, plus any writers already set on cmd.Stdout and cmd.Stderr (a
// writer set on both gets both streams, from two goroutines: it must be safe
// for concurrent use).
func Start(cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Cmd: cmd, Logs: &LogBuffer{}, exited: make(chan struct{})}
	if cmd.Stdout != nil {
		cmd.Stdout = io.MultiWriter(cmd.Stdout, p.Logs)
	} else {
		cmd.Stdout = p.Logs
	}
	if cmd.Stderr != nil {
		cmd.Stderr = io.MultiWriter(cmd.Stderr, p.Logs)
	} else {
		cmd.Stderr = p.Logs
	}
	setGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error; valid once Exited is closed.
func (p *Proc) Err() error {
	<-p.exited
	return p.err
}

// Stop sends SIGTERM to the process group, waits up to grace for the leader to
// exit, then sends SIGKILL to the group and waits for the leader. It is safe to
// call more than once and returns once the leader is reaped.
func (p *Proc) Stop(grace time.Duration) {
	p.once.Do(func() {
		signalGroup(p.Cmd, false)
		select {
		case <-p.exited:
		case <-time.After(grace):
		}
		// Children may outlive the leader (wrangler spawns workerd): kill
		// the whole group even when the leader exited on SIGTERM.
		signalGroup(p.Cmd, true)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
		}
	})
}
