//go:build js && wasm

// Command workers is a test program for the wazero host built like the balancer: github.com/syumai/workers
// for the fetch handler, net/http's fetch transport for outbound calls, cloudflare Durable Object stubs.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"syscall/js"

	"github.com/syumai/workers"
	"github.com/syumai/workers/cloudflare"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s role=%s", r.Method, r.Header.Get("x-evmlb-role"))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/upstream", func(w http.ResponseWriter, r *http.Request) {
		res, err := http.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.WriteHeader(res.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/do", func(w http.ResponseWriter, r *http.Request) {
		if role := r.Header.Get("x-evmlb-role"); role != "worker" {
			fmt.Fprintf(w, "role=%s object=%s instance=%d", role, r.Header.Get("x-evmlb-object"), len(r.Header.Get("x-evmlb-instance")))
			return
		}
		ns, err := cloudflare.NewDurableObjectNamespace("CHAIN")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		stub, err := ns.Get(ns.IdFromName(r.URL.Query().Get("name")))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		req, _ := http.NewRequest("GET", "https://do/do", nil)
		res, err := stub.Fetch(req)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer res.Body.Close()
		io.Copy(w, res.Body)
	})
	mux.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "heap=%d", m.HeapAlloc)
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "log line from go")
		w.Write([]byte("logged"))
	})
	workers.ServeNonBlock(mux)
	js.Global().Get("context").Get("binding").Set("contractVersion", 2)
	workers.Ready()
	select {}
}
