//go:build js && wasm

// Command sockets is a test program for the wazero host's WebSockets (CONTRACT.md §7), written on Go's own side
// of the contract (worker/jsbind, internal/hostcall) as app.wasm is: the Worker hands an upgrade to a subs
// object, the object accepts it with the tag and attachment the client asked for, and each frame is a command
// the object answers through the socket operation. Every answer names the instance that gave it, so that a test
// sees an eviction.
//
// Worker paths: GET /ws/{name}?tag=&att= (an upgrade; tag "refuse" makes the object refuse it), GET
// /worker-socket (a socket operation from a Worker call: refused), GET /obj/{name}/{list|send|close|events}?…
// (an object call that lists, sends (tags=a,b or *; text=), closes (tag=, code=, reason=) or reads the close
// calls the object saw).
//
// Frames: "echo:X", "attach:V", "fan:T1,T2:X", "all:X", "close:CODE:REASON", "list", "flood:N:SIZE" (N frames
// of SIZE bytes to the socket itself); a binary frame is closed
// with 1003, a frame over maxBodyBytes with 1009.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/hostcall"
	"github.com/evmlb/evmlb/worker/jsbind"
	"github.com/syumai/workers"
)

func main() {
	jsbind.Serve(jsbind.Handlers{Fetch: http.HandlerFunc(fetch), Socket: socket, MaxBodyBytes: 4096,
		Alarm: func(context.Context, string, string, int) error { return nil }})
	workers.Ready()
	select {}
}

func fetch(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get(hostcall.CanonRole) {
	case contract.RoleWorker:
		worker(w, r)
	case contract.RoleSubs:
		subs(w, r)
	default:
		http.Error(w, "no such role", http.StatusNotFound)
	}
}

func worker(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case parts[0] == "ws" && len(parts) == 2:
		status, err := hostcall.Upgrade(ctx, contract.BindingSubs, parts[1], "/accept?"+r.URL.RawQuery,
			http.Header{"Upgrade": {r.Header.Get("Upgrade")}})
		if err != nil {
			http.Error(w, "upgrade: "+err.Error(), http.StatusBadGateway)
			return
		}
		println("sockets: upgrade answered", status)
	case parts[0] == "worker-socket":
		_, err := hostcall.SendAll(ctx, []byte("from the worker"))
		fmt.Fprintf(w, "error=%v", err)
	case parts[0] == "obj" && len(parts) == 3:
		// An object call carries a path, not a query: the query goes as the body.
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://object/"+parts[2], strings.NewReader(r.URL.RawQuery))
		resp, err := hostcall.Namespace(contract.BindingSubs).Fetch(ctx, parts[1], req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

func subs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		q, _ = url.ParseQuery(string(b))
	}
	switch strings.TrimPrefix(r.URL.Path, "/") {
	case "accept":
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not an upgrade", http.StatusUpgradeRequired)
			return
		}
		if q.Get("tag") == "refuse" {
			w.Header().Set("content-type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"refused"}}`)
			return
		}
		if err := hostcall.Accept(ctx, q.Get("tag"), q.Get("att")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusSwitchingProtocols)
	case "list":
		socks, err := hostcall.ListSockets(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var out []string
		for _, s := range socks {
			out = append(out, s.Tag+"="+s.Attachment)
		}
		io.WriteString(w, strings.Join(out, ","))
	case "send":
		var n int
		var err error
		if q.Get("tags") == "*" {
			n, err = hostcall.SendAll(ctx, []byte(q.Get("text")))
		} else {
			n, err = hostcall.Send(ctx, []byte(q.Get("text")), strings.Split(q.Get("tags"), ",")...)
		}
		fmt.Fprintf(w, "sent=%d error=%v", n, err)
	case "close":
		code, _ := strconv.Atoi(q.Get("code"))
		n, err := hostcall.CloseSocket(ctx, q.Get("tag"), code, q.Get("reason"))
		fmt.Fprintf(w, "closed=%d error=%v", n, err)
	case "events":
		kv, err := hostcall.Storage{Object: r.Header.Get(hostcall.CanonObject)}.List(ctx, "close:")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var lines []string
		for _, v := range kv {
			lines = append(lines, v)
		}
		sort.Strings(lines)
		io.WriteString(w, strings.Join(lines, "\n"))
	default:
		http.NotFound(w, r)
	}
}

// socket runs a frame or a close of one of the object's sockets.
func socket(ctx context.Context, ev hostcall.SocketEvent) error {
	if ev.Kind == contract.CallClose { // a key per socket: close calls may run at once
		line := fmt.Sprintf("%s %d %q clean=%v att=%s", ev.Tag, ev.Code, ev.Reason, ev.Clean, ev.Attachment)
		return hostcall.Storage{Object: ev.Object}.Put(ctx, map[string]string{"close:" + ev.Tag: line})
	}
	reply := func(text string) error {
		_, err := hostcall.Send(ctx, []byte(text+" instance="+ev.Instance), ev.Tag)
		return err
	}
	switch {
	case ev.TooLarge:
		_, err := hostcall.CloseSocket(ctx, ev.Tag, 1009, "too large")
		return err
	case ev.Binary:
		_, err := hostcall.CloseSocket(ctx, ev.Tag, 1003, "binary frames are not spoken here")
		return err
	}
	cmd, arg, _ := strings.Cut(string(ev.Data), ":")
	switch cmd {
	case "echo":
		return reply("echo:" + arg + " att=" + ev.Attachment)
	case "attach":
		n, err := hostcall.Attach(ctx, ev.Tag, arg)
		if err != nil {
			return err
		}
		return reply(fmt.Sprintf("attached=%d", n))
	case "fan":
		tags, text, _ := strings.Cut(arg, ":")
		n, err := hostcall.Send(ctx, []byte(text), strings.Split(tags, ",")...)
		if err != nil {
			return err
		}
		return reply(fmt.Sprintf("sent=%d", n))
	case "all":
		_, err := hostcall.SendAll(ctx, []byte(arg))
		return err
	case "close":
		c, reason, _ := strings.Cut(arg, ":")
		code, _ := strconv.Atoi(c)
		_, err := hostcall.CloseSocket(ctx, ev.Tag, code, reason)
		return err
	case "list":
		socks, err := hostcall.ListSockets(ctx)
		if err != nil {
			return err
		}
		var out []string
		for _, s := range socks {
			out = append(out, s.Tag+"="+s.Attachment)
		}
		return reply("list:" + strings.Join(out, ","))
	case "slow": // slow:MS answers after MS milliseconds
		ms, _ := strconv.Atoi(arg)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return reply("slow:done")
	case "flood": // flood:N:SIZE sends N frames of SIZE bytes to this socket
		ns, size, _ := strings.Cut(arg, ":")
		n, _ := strconv.Atoi(ns)
		k, _ := strconv.Atoi(size)
		frame := []byte(strings.Repeat("f", k))
		for range n {
			if _, err := hostcall.Send(ctx, frame, ev.Tag); err != nil {
				return err
			}
		}
		return nil
	}
	return reply("unknown:" + cmd)
}
