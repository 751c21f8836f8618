package l7px

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// Sans-I/O pieces of slot protocol v1: the registration head and the parsing of its answer.

// maxHandshakeHead bounds the answer to a registration; a longer head is malformed.
const maxHandshakeHead = 16 * 1024

// registrationHead returns the v1 registration request head, ending with the blank line.
// The pool, token and service lines are omitted when empty.
func registrationHead(pool, token, service string) []byte {
	var b strings.Builder
	b.WriteString("GET /.l7px/register HTTP/1.1\r\n" +
		"Host: l7px\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: l7px-slot/1\r\n")
	if pool != "" {
		b.WriteString("L7px-Pool: " + pool + "\r\n")
	}
	if token != "" {
		b.WriteString("L7px-Token: " + token + "\r\n")
	}
	if service != "" {
		b.WriteString("L7px-Service: " + service + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// validHeaderValue reports whether s can be sent as a header value (no control characters,
// so an option can never inject a header line).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var errMalformedReply = errors.New("malformed answer to the registration (is it an l7px register listener?)")

// parseHandshakeReply looks for a complete response head in b. It returns complete=false while
// more bytes are needed; otherwise the status code and the length of the head including the
// blank line (bytes after it are already slot traffic).
func parseHandshakeReply(b []byte) (status, headLen int, complete bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxHandshakeHead {
			return 0, 0, false, errMalformedReply
		}
		return 0, 0, false, nil
	}
	line := bytes.TrimSuffix(b[:bytes.IndexByte(b, '\n')], []byte("\r"))
	// "HTTP/1.x SSS[ reason]"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, 0, false, errMalformedReply
	}
	code, convErr := strconv.Atoi(string(line[9:12]))
	if convErr != nil || code < 100 {
		return 0, 0, false, errMalformedReply
	}
	return code, end + 4, true, nil
}
