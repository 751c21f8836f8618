// go-hello is a plain net/http service. The only l7px-specific line is the l7px.Listen call,
// which stands where net.Listen("tcp", ":8080") would: instead of waiting for connections, the
// service dials in to l7px and registers --slots keep-alive connections that l7px sends
// requests on.
//
//	go run . --proxy 127.0.0.1:9999 --slots 8
//	curl http://127.0.0.1:8080/hello
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"

	"l7px.dev/l7px"
)

func main() {
	proxy := flag.String("proxy", "127.0.0.1:9999", "l7px registration address (host:port or unix:/path)")
	slots := flag.Int("slots", 8, "requests this service handles at once (slots registered)")
	flag.Parse()

	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from go-hello on %s: %s %s\n", host, r.Method, r.URL.Path)
	})

	ln, err := l7px.Listen(context.Background(), l7px.Options{Proxies: []string{*proxy}, Slots: *slots})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, mux))
}
