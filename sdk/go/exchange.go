package l7px

import (
	"bytes"
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
	tunnel    bool   // a 101 head was written: the slot left the proxy's pool for good
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
			n, head := t.scanHead(p)
			p = p[n:]
			if head != nil {
				completed += t.headComplete(head)
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
			n, done := t.scanLine(p)
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
			n, done := t.scanLine(p)
			p = p[n:]
			if done {
				t.buf = t.buf[:0]
				t.state = writeChunkLine
			}
		case writeTrailer:
			n, done := t.scanLine(p)
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

// headEnd returns the length of the head at the start of b (through the empty line that ends
// it, CRLF or bare LF), or -1 if b does not hold a whole head. from: where to start looking
// for the line end before the empty line (bytes before it were searched already).
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); {
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return -1
		}
		i += nl + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

// scanHead takes bytes of p up to the end of a response head. It returns how many it took and,
// once the head is complete, the head (valid until the tracker is used again). A head that
// arrives in one write is read in place; one split across writes is gathered in t.buf. Heads
// longer than maxTrackedHead lose track: the slot then stays busy until it closes.
func (t *exchangeTracker) scanHead(p []byte) (int, []byte) {
	if len(t.buf) == 0 {
		if end := headEnd(p, 0); end >= 0 {
			return end, p[:end]
		}
	}
	// Look again from the last line end already seen: the empty line may straddle the writes.
	from := bytes.LastIndexByte(t.buf, '\n')
	if from < 0 {
		from = 0
	}
	had := len(t.buf)
	t.buf = append(t.buf, p...)
	if end := headEnd(t.buf, from); end >= 0 {
		t.buf = t.buf[:end]
		return end - had, t.buf
	}
	if len(t.buf) > maxTrackedHead {
		t.state = writeForever
	}
	return len(p), nil
}

// scanLine appends bytes of p to t.buf up to the end of a line. It returns how many bytes it
// took and whether the end was reached. Lines longer than maxTrackedLine lose track.
func (t *exchangeTracker) scanLine(p []byte) (int, bool) {
	if nl := bytes.IndexByte(p, '\n'); nl >= 0 {
		t.buf = append(t.buf, p[:nl+1]...)
		return nl + 1, true
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > maxTrackedLine {
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

var (
	headerContentLength    = []byte("Content-Length")
	headerTransferEncoding = []byte("Transfer-Encoding")
	codingChunked          = []byte("chunked")
)

// headComplete decides how the response whose head is `head` ends. It reads the head in place:
// no allocation per response.
func (t *exchangeTracker) headComplete(head []byte) int {
	line, rest := cutLine(head)
	status := statusCode(line)
	t.buf = t.buf[:0] // head may be t.buf: every read of it happens above and below, not after
	if status < 100 {
		t.state = writeForever
		return 0
	}
	if status == 101 {
		t.state = writeForever // the slot is a tunnel until it closes
		t.tunnel = true
		return 0
	}
	if status < 200 {
		return 0 // interim response; the final one follows
	}
	contentLength := int64(-1)
	chunked, otherCoding := false, false
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case len(name) == len(headerContentLength) && bytes.EqualFold(name, headerContentLength):
			if n, ok := parseUint(value, 10); ok {
				contentLength = n
			}
		case len(name) == len(headerTransferEncoding) && bytes.EqualFold(name, headerTransferEncoding):
			last := value
			if comma := bytes.LastIndexByte(value, ','); comma >= 0 {
				last = value[comma+1:]
			}
			chunked = bytes.EqualFold(bytes.TrimSpace(last), codingChunked)
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

// cutLine splits b after its first line, dropping the line's CRLF or LF.
func cutLine(b []byte) (line, rest []byte) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return b, nil
	}
	line, rest = b[:nl], b[nl+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// statusCode reads the status code of a status line ("HTTP/1.1 200 OK"), or 0.
func statusCode(line []byte) int {
	line = bytes.TrimLeft(line, " \t")
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return 0
	}
	sp := bytes.IndexByte(line, ' ')
	if tab := bytes.IndexByte(line, '\t'); tab >= 0 && (sp < 0 || tab < sp) {
		sp = tab
	}
	if sp < 0 {
		return 0
	}
	code := bytes.TrimLeft(line[sp:], " \t")
	end := 0
	for end < len(code) && code[end] != ' ' && code[end] != '\t' {
		end++
	}
	if n, ok := parseUint(code[:end], 10); ok && n < 1000 {
		return int(n)
	}
	return 0
}

// parseUint parses digits in base 10 or 16 (at least one, nothing else) without allocating.
// Values that might not fit in an int64 (more than 15 significant digits) are refused.
func parseUint(b []byte, base int64) (int64, bool) {
	for len(b) > 1 && b[0] == '0' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, false
		}
		n = n*base + d
	}
	return n, true
}

func (t *exchangeTracker) chunkLineComplete() {
	line := bytes.TrimRight(t.buf, "\r\n")
	if semi := bytes.IndexByte(line, ';'); semi >= 0 {
		line = line[:semi]
	}
	size, ok := parseUint(bytes.TrimSpace(line), 16)
	t.buf = t.buf[:0]
	switch {
	case !ok:
		t.state = writeForever
	case size == 0:
		t.state = writeTrailer
	default:
		t.state = writeChunkData
		t.remaining = size
	}
}
