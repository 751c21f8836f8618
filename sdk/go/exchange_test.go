package l7px

import (
	"strings"
	"testing"
)

// feedSplit runs one exchange through a fresh tracker with the response cut at `cut`, and
// returns the tracker's idleness after each step plus the responses counted.
func exchange(t *testing.T, request, response string, cut int) (idleBefore, idleMid, idleAfter bool, served uint64) {
	t.Helper()
	var tr exchangeTracker
	idleBefore = tr.idle()
	tr.onRead([]byte(request))
	tr.onWrite([]byte(response[:cut]))
	idleMid = tr.idle()
	tr.onWrite([]byte(response[cut:]))
	return idleBefore, idleMid, tr.idle(), tr.served
}

func TestTrackerSeesEveryResponseEnd(t *testing.T) {
	get := "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name, request, response string
	}{
		{"content-length", get, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
		{"empty body", get, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"chunked", get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1a;ext=1\r\n" +
			strings.Repeat("z", 26) + "\r\n0\r\n\r\n"},
		{"chunked trailers", get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"},
		{"head", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"},
		{"204", get, "HTTP/1.1 204 No Content\r\n\r\n"},
		{"304", get, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"},
		{"100 continue first", "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"},
		{"bare LF", get, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{"spacing and leading zeros", get, "HTTP/1.1  200 OK\r\ncontent-LENGTH:  002 \r\nX: y\r\n\r\nok"},
		{"upper-case chunk size", get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1A\r\n" +
			strings.Repeat("z", 26) + "\r\n0\r\n\r\n"},
	}
	for _, c := range cases {
		for cut := 0; cut < len(c.response); cut++ {
			before, mid, after, served := exchange(t, c.request, c.response, cut)
			if !before || mid || !after || served != 1 {
				t.Fatalf("%s cut %d: idle before %v, mid %v, after %v, served %d", c.name, cut, before, mid, after, served)
			}
		}
	}
}

func TestTrackerBusyUntilCloseWhenUndelimited(t *testing.T) {
	get := "GET / HTTP/1.1\r\n\r\n"
	for _, response := range []string{
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
		"garbage\r\n\r\n",
	} {
		var tr exchangeTracker
		tr.onRead([]byte(get))
		tr.onWrite([]byte(response))
		tr.onWrite([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		if tr.idle() || tr.served != 0 {
			t.Errorf("%q: idle %v served %d", response, tr.idle(), tr.served)
		}
	}
}

func TestTrackerMarksATunnelOnlyOnA101Head(t *testing.T) {
	get := "GET /ws HTTP/1.1\r\n\r\n"
	for response, want := range map[string]bool{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n":          true,
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n":   true,
		"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\nHTTP/1.1 101 in the body..": false,
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHTTP/1.1 101 x\r\n\r\n":      false,
	} {
		var tr exchangeTracker
		tr.onRead([]byte(get))
		// Byte by byte: a head split across writes still counts.
		for i := 0; i < len(response); i++ {
			tr.onWrite([]byte(response[i : i+1]))
		}
		if tr.tunnel != want {
			t.Errorf("%q: tunnel %v, want %v", response, tr.tunnel, want)
		}
	}
}

func TestTrackerKeepAliveSequence(t *testing.T) {
	var tr exchangeTracker
	for i := 0; i < 3; i++ {
		tr.onRead([]byte("GET / HTTP/1.1\r\n"))
		if tr.idle() {
			t.Fatal("idle with a request half read")
		}
		tr.onRead([]byte("Host: a\r\n\r\n"))
		tr.onWrite([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh"))
		if tr.idle() {
			t.Fatal("idle mid-body")
		}
		tr.onWrite([]byte("i"))
		if !tr.idle() {
			t.Fatalf("exchange %d: not idle after the response", i)
		}
	}
	if tr.served != 3 {
		t.Fatalf("served %d, want 3", tr.served)
	}
	// A HEAD request must not make the next GET's body count as its own.
	tr.onRead([]byte("HEAD / HTTP/1.1\r\n\r\n"))
	tr.onWrite([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"))
	tr.onRead([]byte("GET / HTTP/1.1\r\n\r\n"))
	tr.onWrite([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"))
	if tr.idle() {
		t.Fatal("GET after HEAD: idle before its body")
	}
	tr.onWrite([]byte("ok"))
	if !tr.idle() || tr.served != 5 {
		t.Fatalf("GET after HEAD: idle %v served %d", tr.idle(), tr.served)
	}
}

func TestTrackerByteByByte(t *testing.T) {
	var tr exchangeTracker
	response := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
	tr.onRead([]byte("GET / HTTP/1.1\r\n\r\n"))
	completed := 0
	for i := 0; i < len(response); i++ {
		completed += tr.onWrite([]byte{response[i]})
	}
	if completed != 2 || !tr.idle() {
		t.Fatalf("completed %d, idle %v", completed, tr.idle())
	}
}

func TestTrackerLosesTrackOfWhatItCannotRead(t *testing.T) {
	get := "GET / HTTP/1.1\r\n\r\n"
	for _, response := range []string{
		"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",                    // status not a number
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", // does not fit
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",     // bad chunk size
	} {
		var tr exchangeTracker
		tr.onRead([]byte(get))
		tr.onWrite([]byte(response))
		if tr.idle() || tr.served != 0 {
			t.Errorf("%q: idle %v served %d", response, tr.idle(), tr.served)
		}
	}
}
