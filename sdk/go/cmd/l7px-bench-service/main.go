// l7px-bench-service is the service the benchmarks put behind l7px, NGINX and HAProxy alike:
// every request is answered after --delay milliseconds with --size bytes. It either registers
// to one or more l7px proxies (--proxy, repeatable) or listens on a port like any server
// (--listen), so the same code is measured behind every proxy.
//
//	l7px-bench-service --proxy 127.0.0.1:9999 --slots 64 --size 1024 --delay 0
//	l7px-bench-service --listen 127.0.0.1:8081 --size 1024
//
// It prints "ready" on stdout once every slot is registered (or the port is listening), and
// shuts down gracefully on SIGINT or SIGTERM.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"l7px.dev/l7px"
)

type proxyList []string

func (p *proxyList) String() string     { return strings.Join(*p, ",") }
func (p *proxyList) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var proxies proxyList
	flag.Var(&proxies, "proxy", "l7px registration address, host:port or unix:/path (repeatable)")
	listen := flag.String("listen", "", "serve on this address instead of registering (for other proxies)")
	slots := flag.Int("slots", 16, "slots per proxy (declared concurrency)")
	pool := flag.String("pool", "", "l7px pool (default: the proxy's default pool)")
	token := flag.String("token", "", "l7px pool token")
	size := flag.Int("size", 128, "response body bytes")
	delay := flag.Int("delay", 0, "service time per request, in milliseconds")
	flag.IntVar(delay, "delay-ms", 0, "same as --delay")
	flag.Parse()
	if (len(proxies) == 0) == (*listen == "") {
		fmt.Fprintln(os.Stderr, "l7px-bench-service: give --proxy (one or more) or --listen")
		os.Exit(2)
	}
	if *size < 0 || *delay < 0 {
		fmt.Fprintln(os.Stderr, "l7px-bench-service: --size and --delay must be >= 0")
		os.Exit(2)
	}

	body := bytes.Repeat([]byte("x"), *size)
	length := strconv.Itoa(len(body))
	serviceTime := time.Duration(*delay) * time.Millisecond
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if serviceTime > 0 {
			time.Sleep(serviceTime)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})

	var ln net.Listener
	var err error
	if *listen != "" {
		ln, err = net.Listen("tcp", *listen)
	} else {
		var sl *l7px.Listener
		sl, err = l7px.Listen(context.Background(), l7px.Options{
			Proxies: proxies, Slots: *slots, Pool: *pool, Token: *token,
		})
		if err == nil {
			ln = sl
			go func() {
				// Readiness means every slot of every proxy is registered.
				if sl.WaitForSlots(context.Background(), *slots*len(proxies)) == nil {
					fmt.Println("ready")
				}
			}()
		}
	}
	if err != nil {
		log.Fatalf("l7px-bench-service: %v", err)
	}
	if *listen != "" {
		fmt.Println("ready")
	}

	srv := &http.Server{Handler: handler}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatalf("l7px-bench-service: %v", err)
	}
	<-done
}
