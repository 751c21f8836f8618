// go-bare-service is the example service of the papers l7px comes from, written the same way:
// it does not speak any registration protocol. It dials the proxy's register port --slots
// times, and each connection is a slot as soon as it is connected: it reads HTTP/1.1 requests
// and writes raw responses on it, and dials again when the connection ends. l7px serves it
// through a listener with `register.handshake = "none"`.
//
//	go run . --proxy 127.0.0.1:9999 --slots 4
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	proxy := flag.String("proxy", "127.0.0.1:9999", "l7px registration address (handshake = \"none\")")
	slots := flag.Int("slots", 4, "connections kept open to the proxy")
	flag.Parse()
	host, _ := os.Hostname()
	for i := 0; i < *slots; i++ {
		go slot(*proxy, i, host)
	}
	select {}
}

// slot keeps one connection to the proxy and answers requests on it, forever.
func slot(proxy string, index int, host string) {
	for {
		conn, err := net.Dial("tcp", proxy)
		if err != nil {
			log.Printf("slot %d: %v", index, err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		serve(conn, index, host)
		conn.Close()
	}
}

func serve(conn net.Conn, index int, host string) {
	r := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		body := fmt.Sprintf("hello from go-bare-service on %s (slot %d): %s %s\n", host, index, req.Method, req.URL.Path)
		keepAlive := !req.Close
		head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n", len(body))
		if !keepAlive {
			head += "Connection: close\r\n"
		}
		if req.Method == http.MethodHead {
			body = ""
		}
		if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil || !keepAlive {
			return
		}
	}
}
