package l7px

import (
	"strings"
	"testing"
)

func TestRegistrationHead(t *testing.T) {
	got := string(registrationHead("api", "secret", "billing-7f9c"))
	want := "GET /.l7px/register HTTP/1.1\r\n" +
		"Host: l7px\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: l7px-slot/1\r\n" +
		"L7px-Pool: api\r\n" +
		"L7px-Token: secret\r\n" +
		"L7px-Service: billing-7f9c\r\n" +
		"\r\n"
	if got != want {
		t.Fatalf("head = %q, want %q", got, want)
	}
	got = string(registrationHead("", "", ""))
	want = "GET /.l7px/register HTTP/1.1\r\nHost: l7px\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n\r\n"
	if got != want {
		t.Fatalf("minimal head = %q, want %q", got, want)
	}
}

func TestValidHeaderValue(t *testing.T) {
	for v, ok := range map[string]bool{"api": true, "a b\tc": true, "x\r\nEvil: 1": false, "x\x00": false, "x\x7f": false} {
		if validHeaderValue(v) != ok {
			t.Errorf("validHeaderValue(%q) = %v", v, !ok)
		}
	}
}

func TestParseHandshakeReply(t *testing.T) {
	reply := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: l7px-slot/1\r\nConnection: Upgrade\r\n\r\n"
	extra := "GET / HTTP/1.1\r\n\r\n"
	all := reply + extra
	// Every prefix shorter than the head is incomplete; from the head on it is complete.
	for i := 0; i <= len(all); i++ {
		status, headLen, complete, err := parseHandshakeReply([]byte(all[:i]))
		if err != nil {
			t.Fatalf("prefix %d: %v", i, err)
		}
		if complete != (i >= len(reply)) {
			t.Fatalf("prefix %d: complete = %v", i, complete)
		}
		if complete && (status != 101 || headLen != len(reply)) {
			t.Fatalf("prefix %d: status %d headLen %d", i, status, headLen)
		}
	}
	for raw, want := range map[string]int{
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n": 403,
		"HTTP/1.0 404\r\n\r\n":                                404,
		"HTTP/1.1 503 Service Unavailable\r\n\r\n":            503,
	} {
		status, _, complete, err := parseHandshakeReply([]byte(raw))
		if err != nil || !complete || status != want {
			t.Errorf("%q: status %d complete %v err %v", raw, status, complete, err)
		}
	}
	for _, raw := range []string{"SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 1x1 Hm\r\n\r\n", "HTTP/1.1 2000\r\n\r\n", "HTTP/2 200\r\n\r\n"} {
		if _, _, _, err := parseHandshakeReply([]byte(raw)); err == nil {
			t.Errorf("%q: no error", raw)
		}
	}
	if _, _, _, err := parseHandshakeReply([]byte(strings.Repeat("x", maxHandshakeHead+1))); err == nil {
		t.Error("endless head: no error")
	}
}

func TestBackoffGrowsWithJitterAndResets(t *testing.T) {
	b := newBackoff(10, 80, 1)
	bases := []int64{10, 20, 40, 80, 80, 80}
	for round := 0; round < 2; round++ {
		for i, base := range bases {
			d := int64(b.Next())
			if d < base/2 || d > base {
				t.Fatalf("round %d step %d: %d not in [%d, %d]", round, i, d, base/2, base)
			}
		}
		b.Reset()
	}
}
