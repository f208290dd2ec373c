package hostcall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/platform"
)

// WebSockets (CONTRACT.md §7): a subs Durable Object accepts them through the host, which keeps each socket, its
// tag and its attachment; Go never holds a socket. These are the operations and calls of that surface, each an Op
// of ctx's call like every other I/O.

// Socket is an accepted WebSocket as the host keeps it: the tag Go gave it and its attachment.
type Socket = platform.Socket

// Sockets is platform.Sockets over these operations.
type Sockets struct{}

var _ platform.Sockets = Sockets{}

// Upgrade is Upgrade to the SUBS namespace.
func (Sockets) Upgrade(ctx context.Context, name, path string, header http.Header) (int, error) {
	return Upgrade(ctx, contract.BindingSubs, name, path, header)
}

// Accept is Accept.
func (Sockets) Accept(ctx context.Context, tag, attachment string) error {
	return Accept(ctx, tag, attachment)
}

// Send is Send.
func (Sockets) Send(ctx context.Context, text []byte, tags ...string) (int, error) {
	return Send(ctx, text, tags...)
}

// Close is CloseSocket.
func (Sockets) Close(ctx context.Context, tag string, code int, reason string) (int, error) {
	return CloseSocket(ctx, tag, code, reason)
}

// Attach is Attach.
func (Sockets) Attach(ctx context.Context, tag, attachment string) (int, error) {
	return Attach(ctx, tag, attachment)
}

// List is ListSockets.
func (Sockets) List(ctx context.Context) ([]Socket, error) { return ListSockets(ctx) }

// socketKind is the waiter kind of a socket operation (a storage list and a socket list differ).
func socketKind(call string) string { return contract.OpSocket + "." + call }

// Upgrade hands the WebSocket upgrade request of ctx's call (a Worker fetch call: a GET with Upgrade: websocket)
// to the Durable Object name of namespace (contract.BindingSubs), a GET of path with header (which must carry
// Upgrade: websocket). On success the client has been answered with the object's answer as is (a 101 and its
// socket, or the object's refusal), whose status Upgrade returns; the call's own answer then goes nowhere. On
// failure nothing was answered.
func Upgrade(ctx context.Context, namespace, name, path string, header http.Header) (int, error) {
	c := From(ctx)
	if c == nil {
		return 0, errNoCall
	}
	r, err := c.Do(ctx, Op{Kind: contract.OpUpgrade, Namespace: namespace, Name: name, Path: path, Header: header,
		Timeout: timeout(ctx)})
	if err != nil {
		return 0, err
	}
	return r.Status, nil
}

// ErrSocketLimit is returned for a tag, attachment, code or reason outside the contract's limits.
var ErrSocketLimit = errors.New("hostcall: outside the WebSocket limits of the contract")

func checkTag(tag string) error {
	if tag == "" || len(tag) > contract.MaxTagBytes {
		return fmt.Errorf("%w: a tag is 1 to %d bytes", ErrSocketLimit, contract.MaxTagBytes)
	}
	return nil
}

func checkAttachment(a string) error {
	if len(a) > contract.MaxAttachmentBytes {
		return fmt.Errorf("%w: an attachment is at most %d bytes", ErrSocketLimit, contract.MaxAttachmentBytes)
	}
	return nil
}

// Accept makes the answer of ctx's call (a subs object's fetch call made by an Upgrade) accept a WebSocket tagged
// tag with attachment: its response goes as a 101 without a body, whatever the handler writes. tag must be
// unique among the object's open sockets.
func Accept(ctx context.Context, tag, attachment string) error {
	c := From(ctx)
	if c == nil {
		return errNoCall
	}
	if err := checkTag(tag); err != nil {
		return err
	}
	if err := checkAttachment(attachment); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.response || c.ended {
		return errors.New("hostcall: Accept after the call's answer")
	}
	c.accept = &Socket{Tag: tag, Attachment: attachment}
	return nil
}

func socketOp(ctx context.Context, op Op) (Result, error) {
	c := From(ctx)
	if c == nil {
		return Result{}, errNoCall
	}
	op.Kind = contract.OpSocket
	return c.Do(ctx, op)
}

// Send writes text as one text frame to each open socket of ctx's object tagged with one of tags; it returns
// how many it reached.
func Send(ctx context.Context, text []byte, tags ...string) (int, error) {
	if tags == nil {
		tags = []string{}
	}
	r, err := socketOp(ctx, Op{Call: contract.SocketSend, Tags: tags, Body: text})
	return r.Count, err
}

// SendAll writes text as one text frame to every open socket of ctx's object.
func SendAll(ctx context.Context, text []byte) (int, error) {
	r, err := socketOp(ctx, Op{Call: contract.SocketSend, All: true, Body: text})
	return r.Count, err
}

// CloseSocket closes the socket tag of ctx's object with code (contract.ValidCloseCode) and reason (at most
// contract.MaxCloseReasonBytes); it returns 1, or 0 when no open socket has the tag.
func CloseSocket(ctx context.Context, tag string, code int, reason string) (int, error) {
	if !contract.ValidCloseCode(code) || len(reason) > contract.MaxCloseReasonBytes {
		return 0, fmt.Errorf("%w: close code %d, a reason of %d bytes", ErrSocketLimit, code, len(reason))
	}
	r, err := socketOp(ctx, Op{Call: contract.SocketClose, Tag: tag, Code: code, Reason: reason})
	return r.Count, err
}

// Attach replaces the attachment of the socket tag of ctx's object (it survives hibernation and eviction); it
// returns 1, or 0 when no open socket has the tag.
func Attach(ctx context.Context, tag, attachment string) (int, error) {
	if err := checkAttachment(attachment); err != nil {
		return 0, err
	}
	r, err := socketOp(ctx, Op{Call: contract.SocketAttach, Tag: tag, Attachment: attachment})
	return r.Count, err
}

// ListSockets reads the open sockets of ctx's object, in the order they were accepted.
func ListSockets(ctx context.Context) ([]Socket, error) {
	r, err := socketOp(ctx, Op{Call: contract.SocketList})
	return r.Sockets, err
}

// SocketEvent is a message or close call of a subs object (CONTRACT.md §3): what happened to which socket.
type SocketEvent = platform.SocketEvent

// ParseSocketEvent reads a message or close call's fields: begin's text decoded (contract.DecodeStrings),
// [kind, role, object, instance, method, url, bodyTooLarge, retryCount, tag, attachment, …].
func ParseSocketEvent(f []string) (SocketEvent, error) {
	if len(f) < 10 {
		return SocketEvent{}, errors.New("hostcall: a socket call has fewer than 10 fields")
	}
	ev := SocketEvent{Kind: f[0], Role: f[1], Object: f[2], Instance: f[3], TooLarge: f[6] != "", Tag: f[8], Attachment: f[9]}
	switch ev.Kind {
	case contract.CallMessage:
		if len(f) < 11 || (f[10] != contract.FrameText && f[10] != contract.FrameBinary) {
			return SocketEvent{}, errors.New("hostcall: a message call without its frame kind")
		}
		ev.Binary = f[10] == contract.FrameBinary
	case contract.CallClose:
		if len(f) < 13 {
			return SocketEvent{}, errors.New("hostcall: a close call has fewer than 13 fields")
		}
		code, err := strconv.Atoi(f[10])
		if err != nil {
			return SocketEvent{}, errors.New("hostcall: a close call's code is not a number")
		}
		ev.Code, ev.Reason, ev.Clean = code, f[11], f[12] != ""
	default:
		return SocketEvent{}, fmt.Errorf("hostcall: %q is not a socket call", ev.Kind)
	}
	return ev, nil
}
