package l7px

import (
	"bytes"
	"strconv"
	"strings"
)

// exchangeTracker follows the HTTP/1.1 exchanges on one slot, from the bytes alone, so the SDK
// knows when the slot is idle (between two exchanges) without any hook into the server that
// reads and writes them. l7px sends one request at a time on a slot and waits for the whole
// response before sending the next, so:
//
//   - the slot becomes busy when request bytes arrive while it is idle;
//   - it becomes idle again when a complete final response has been written: the response head
//     is followed by exactly Content-Length bytes, or by a chunked body up to its last chunk
//     and trailers, or by nothing (HEAD, 204, 304). 1xx heads are not final; a 101 or a
//     response delimited by close keeps the slot busy until it closes.
//
// Sans-I/O: it sees copies of what was read and written. Not safe for concurrent use.
type exchangeTracker struct {
	requestOpen bool   // request bytes seen and its final response not complete yet
	method      []byte // first token of the open request, up to 8 bytes
	methodDone  bool

	state     writeState
	buf       []byte // partial response head, chunk-size line or trailer line
	remaining int64  // body bytes left (writeBody) or chunk bytes left (writeChunkData)
	served    uint64 // final responses completed
}

type writeState int

const (
	writeHead      writeState = iota // expecting (the rest of) a response head
	writeBody                        // Content-Length body
	writeChunkLine                   // chunk-size line
	writeChunkData                   // chunk data
	writeChunkEnd                    // the CRLF after chunk data
	writeTrailer                     // trailer lines up to the empty one
	writeForever                     // until close: tunnel, close-delimited body, or lost track
)

const (
	maxTrackedHead = 1 << 20
	maxTrackedLine = 64 * 1024
)

func (t *exchangeTracker) idle() bool {
	return !t.requestOpen && t.state == writeHead && len(t.buf) == 0
}

// onRead notes bytes received from the proxy.
func (t *exchangeTracker) onRead(p []byte) {
	if len(p) == 0 {
		return
	}
	if !t.requestOpen {
		t.requestOpen = true
		t.method = t.method[:0]
		t.methodDone = false
	}
	for i := 0; i < len(p) && !t.methodDone; i++ {
		if p[i] == ' ' || len(t.method) == 8 {
			t.methodDone = true
		} else {
			t.method = append(t.method, p[i])
		}
	}
}

// onWrite notes bytes written to the proxy and returns how many responses they completed.
func (t *exchangeTracker) onWrite(p []byte) int {
	completed := 0
	for len(p) > 0 {
		switch t.state {
		case writeHead:
			n, done := t.scanLine(p, true)
			p = p[n:]
			if done {
				completed += t.headComplete()
			}
		case writeBody:
			n := int64(len(p))
			if n > t.remaining {
				n = t.remaining
			}
			t.remaining -= n
			p = p[n:]
			if t.remaining == 0 {
				completed += t.finish()
			}
		case writeChunkLine:
			n, done := t.scanLine(p, false)
			p = p[n:]
			if done {
				t.chunkLineComplete()
			}
		case writeChunkData:
			n := int64(len(p))
			if n > t.remaining {
				n = t.remaining
			}
			t.remaining -= n
			p = p[n:]
			if t.remaining == 0 {
				t.state = writeChunkEnd
			}
		case writeChunkEnd:
			n, done := t.scanLine(p, false)
			p = p[n:]
			if done {
				t.buf = t.buf[:0]
				t.state = writeChunkLine
			}
		case writeTrailer:
			n, done := t.scanLine(p, false)
			p = p[n:]
			if done {
				if len(bytes.TrimRight(t.buf, "\r\n")) == 0 {
					completed += t.finish()
				}
				if t.state == writeTrailer {
					t.buf = t.buf[:0]
				}
			}
		case writeForever:
			return completed
		}
	}
	return completed
}

// scanLine appends bytes of p to t.buf up to the end of a line (head=false) or of a head (a
// line that is empty, head=true). It returns how many bytes it took and whether the end was
// reached. Lines longer than the bounds lose track: the slot then stays busy until it closes.
func (t *exchangeTracker) scanLine(p []byte, head bool) (int, bool) {
	for i, c := range p {
		t.buf = append(t.buf, c)
		if c != '\n' {
			continue
		}
		if !head || bytes.HasSuffix(t.buf, []byte("\r\n\r\n")) || bytes.HasSuffix(t.buf, []byte("\n\n")) {
			return i + 1, true
		}
	}
	limit := maxTrackedLine
	if head {
		limit = maxTrackedHead
	}
	if len(t.buf) > limit {
		t.state = writeForever
	}
	return len(p), false
}

func (t *exchangeTracker) finish() int {
	t.buf = t.buf[:0]
	t.state = writeHead
	t.requestOpen = false
	t.served++
	return 1
}

// headComplete decides how the response whose head is in t.buf ends.
func (t *exchangeTracker) headComplete() int {
	head := string(t.buf)
	t.buf = t.buf[:0]
	lines := strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	status := 0
	if f := strings.Fields(lines[0]); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
		status, _ = strconv.Atoi(f[1])
	}
	if status < 100 {
		t.state = writeForever
		return 0
	}
	if status == 101 {
		t.state = writeForever // the slot is a tunnel until it closes
		return 0
	}
	if status < 200 {
		return 0 // interim response; the final one follows
	}
	contentLength := int64(-1)
	chunked, otherCoding := false, false
	for _, line := range lines[1:] {
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name, value := line[:colon], strings.TrimSpace(line[colon+1:])
		switch {
		case strings.EqualFold(name, "Content-Length"):
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
				contentLength = n
			}
		case strings.EqualFold(name, "Transfer-Encoding"):
			codings := strings.Split(value, ",")
			chunked = strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
			otherCoding = !chunked
		}
	}
	switch {
	case string(t.method) == "HEAD" || status == 204 || status == 304:
		return t.finish()
	case chunked:
		t.state = writeChunkLine
	case otherCoding:
		t.state = writeForever
	case contentLength == 0:
		return t.finish()
	case contentLength > 0:
		t.state = writeBody
		t.remaining = contentLength
	default:
		t.state = writeForever // delimited by close
	}
	return 0
}

func (t *exchangeTracker) chunkLineComplete() {
	line := strings.TrimRight(string(t.buf), "\r\n")
	t.buf = t.buf[:0]
	if semi := strings.IndexByte(line, ';'); semi >= 0 {
		line = line[:semi]
	}
	size, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
	switch {
	case err != nil || size < 0:
		t.state = writeForever
	case size == 0:
		t.state = writeTrailer
	default:
		t.state = writeChunkData
		t.remaining = size
	}
}
