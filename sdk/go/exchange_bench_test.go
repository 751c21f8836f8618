package l7px

import (
	"strings"
	"testing"
)

// One keep-alive exchange as the benchmark service sees it behind l7px: a GET with l7px's
// forwarding headers read in one piece, a 128-byte response written in one piece.
func BenchmarkTrackerExchange(b *testing.B) {
	request := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:18100\r\nX-Forwarded-For: 127.0.0.1\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:18100\r\n" +
		"X-Request-Id: 0000000000000001\r\nVia: 1.1 l7px\r\n\r\n")
	response := []byte("HTTP/1.1 200 OK\r\nContent-Length: 128\r\nContent-Type: application/octet-stream\r\n" +
		"Date: Sun, 22 Nov 2026 11:40:00 GMT\r\n\r\n" + strings.Repeat("x", 128))
	var tr exchangeTracker
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.onRead(request)
		if tr.onWrite(response) != 1 {
			b.Fatal("response not counted")
		}
	}
}
