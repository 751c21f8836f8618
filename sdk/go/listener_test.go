package l7px

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Unit tests of the Listener against fakeProxy, an in-test proxy that speaks the registration
// side of slot protocol v1 and then plays l7px on each slot by hand.

const (
	accept101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: l7px-slot/1\r\nConnection: Upgrade\r\n\r\n"
	waitLimit = 10 * time.Second // bound for anything that should happen promptly
)

type fakeProxy struct {
	t  *testing.T
	ln net.Listener
	// answer returns what to write after the i-th registration head (0-based); an answer that
	// starts with accept101 registers the slot, anything else is written and the conn closed.
	answer func(i int) string
	bare   bool // take connections as slots without reading a head

	mu    sync.Mutex
	dials []time.Time
	heads []string
	conns []net.Conn
	slots chan *fakeSlot
}

type fakeSlot struct {
	conn net.Conn
	r    *bufio.Reader
}

func newFakeProxy(t *testing.T, answer func(i int) string) *fakeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startFake(t, ln, answer)
}

func startFake(t *testing.T, ln net.Listener, answer func(i int) string) *fakeProxy {
	f := &fakeProxy{t: t, ln: ln, answer: answer, slots: make(chan *fakeSlot, 64)}
	if answer == nil {
		f.answer = func(int) string { return accept101 }
	}
	go f.acceptLoop()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeProxy) addr() string { return f.ln.Addr().String() }

func (f *fakeProxy) acceptLoop() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		i := len(f.dials)
		f.dials = append(f.dials, time.Now())
		f.conns = append(f.conns, conn)
		f.mu.Unlock()
		go f.handle(i, conn)
	}
}

func (f *fakeProxy) handle(i int, conn net.Conn) {
	r := bufio.NewReader(conn)
	if !f.bare {
		var head strings.Builder
		for {
			line, err := r.ReadString('\n')
			head.WriteString(line)
			if err != nil {
				conn.Close()
				return
			}
			if line == "\r\n" {
				break
			}
		}
		f.mu.Lock()
		f.heads = append(f.heads, head.String())
		f.mu.Unlock()
		answer := f.answer(i)
		if _, err := io.WriteString(conn, answer); err != nil || !strings.HasPrefix(answer, accept101) {
			conn.Close()
			return
		}
	}
	f.slots <- &fakeSlot{conn: conn, r: r}
}

// stop closes the listener and every connection, like a proxy process going away.
func (f *fakeProxy) stop() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fakeProxy) dialCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dials)
}

// slot waits for the next registered slot.
func (f *fakeProxy) slot() *fakeSlot {
	f.t.Helper()
	select {
	case s := <-f.slots:
		return s
	case <-time.After(waitLimit):
		f.t.Fatal("no slot registered in time")
		return nil
	}
}

// roundTrip sends a request on the slot, as l7px would, and reads the response.
func (s *fakeSlot) roundTrip(t *testing.T, method, path string) (int, string) {
	t.Helper()
	s.conn.SetDeadline(time.Now().Add(waitLimit))
	defer s.conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(s.conn, "%s %s HTTP/1.1\r\nHost: test\r\n\r\n", method, path); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	return readResponse(t, s, method)
}

func readResponse(t *testing.T, s *fakeSlot, method string) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(s.r, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp.StatusCode, string(body)
}

// closedByService reports whether the service closed the slot within the wait limit (EOF, or
// a reset when it closed with bytes of ours unread).
func (s *fakeSlot) closedByService() bool {
	s.conn.SetReadDeadline(time.Now().Add(waitLimit))
	defer s.conn.SetReadDeadline(time.Time{})
	_, err := s.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func waitSlots(t *testing.T, ln *Listener, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ln.WaitForSlots(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// logSink collects Logf lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}

func (s *logSink) matching(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// eventually polls cond until it holds or the wait limit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// blockingHandler answers "ok <path>" except /block, which waits for release.
type blockingHandler struct {
	entered chan string
	release chan struct{}
}

func newBlockingHandler() *blockingHandler {
	return &blockingHandler{entered: make(chan string, 64), release: make(chan struct{})}
}

func (h *blockingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/block" {
		h.entered <- r.URL.Path
		<-h.release
	}
	fmt.Fprintf(w, "ok %s", r.URL.Path)
}

func (h *blockingHandler) waitEntered(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-h.entered:
		case <-time.After(waitLimit):
			t.Fatalf("only %d of %d requests reached the handler", i, n)
		}
	}
}

// listen starts a Listener with test defaults and serves it with an http.Server; both are
// stopped on cleanup.
func listen(t *testing.T, opts Options, h http.Handler) (*Listener, *http.Server, *logSink) {
	t.Helper()
	sink := &logSink{}
	if opts.Logf == nil {
		opts.Logf = sink.logf
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 5 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 50 * time.Millisecond
	}
	ln, err := Listen(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		ln.Close()
		<-served
	})
	return ln, srv, sink
}

func TestListenRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no proxies":    {},
		"bad address":   {Proxies: []string{"localhost"}},
		"empty unix":    {Proxies: []string{"unix:"}},
		"negative":      {Proxies: []string{"127.0.0.1:1"}, Slots: -1},
		"header inject": {Proxies: []string{"127.0.0.1:1"}, Pool: "a\r\nX: y"},
	} {
		if ln, err := Listen(context.Background(), o); err == nil {
			ln.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHandshakeBytesOnTheWire(t *testing.T) {
	f := newFakeProxy(t, nil)
	ln, _, sink := listen(t, Options{Proxies: []string{f.addr()}, Pool: "api", Token: "secret", Service: "svc-1", Slots: 2},
		http.NotFoundHandler())
	f.slot()
	f.slot()
	want := "GET /.l7px/register HTTP/1.1\r\nHost: l7px\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n" +
		"L7px-Pool: api\r\nL7px-Token: secret\r\nL7px-Service: svc-1\r\n\r\n"
	f.mu.Lock()
	heads := append([]string(nil), f.heads...)
	f.mu.Unlock()
	for _, h := range heads {
		if h != want {
			t.Fatalf("head %q, want %q", h, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ln.WaitForSlots(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := sink.matching("registered to " + f.addr() + " pool api"); len(got) != 1 {
		t.Fatalf("registered log lines %q, want exactly one", got)
	}
}

func TestBytesAfter101AreNotLost(t *testing.T) {
	// The proxy sends a request in the same segment as the 101.
	f := newFakeProxy(t, func(int) string {
		return accept101 + "GET /early HTTP/1.1\r\nHost: test\r\n\r\n"
	})
	listen(t, Options{Proxies: []string{f.addr()}, Slots: 1}, newBlockingHandler())
	s := f.slot()
	s.conn.SetDeadline(time.Now().Add(waitLimit))
	if code, body := readResponse(t, s, "GET"); code != 200 || body != "ok /early" {
		t.Fatalf("got %d %q", code, body)
	}
	// The slot is then an ordinary keep-alive slot.
	if code, body := s.roundTrip(t, "GET", "/next"); code != 200 || body != "ok /next" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestBareSendsNoHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProxy{t: t, ln: ln, bare: true, slots: make(chan *fakeSlot, 8)}
	go f.acceptLoop()
	t.Cleanup(f.stop)
	listen(t, Options{Proxies: []string{f.addr()}, Slots: 1, Bare: true}, newBlockingHandler())
	s := f.slot()
	if code, body := s.roundTrip(t, "GET", "/bare"); code != 200 || body != "ok /bare" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestRefusalsBackOffAndLogOnce(t *testing.T) {
	for _, code := range []int{403, 404, 503} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			const refusals = 6
			f := newFakeProxy(t, func(i int) string {
				if i < refusals {
					return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, http.StatusText(code))
				}
				return accept101
			})
			const min, max = 10 * time.Millisecond, 40 * time.Millisecond
			ln, _, sink := listen(t, Options{Proxies: []string{f.addr()}, Slots: 1, MinBackoff: min, MaxBackoff: max},
				newBlockingHandler())
			s := f.slot() // registered once the refusals stop
			if c, _ := s.roundTrip(t, "GET", "/"); c != 200 {
				t.Fatalf("status %d after registering", c)
			}
			f.mu.Lock()
			dials := append([]time.Time(nil), f.dials...)
			f.mu.Unlock()
			// Each wait after a refusal is at least half its base: 10, 20, 40, 40... ms.
			base := min
			for i := 1; i <= refusals; i++ {
				gap := dials[i].Sub(dials[i-1])
				if gap < base/2 {
					t.Errorf("retry %d came after %v, want >= %v", i, gap, base/2)
				}
				if base *= 2; base > max {
					base = max
				}
			}
			if st := ln.Stats(); st.Refusals != refusals || st.Registrations != 1 || st.Registered != 1 {
				t.Errorf("stats %+v", st)
			}
			refused := sink.matching(fmt.Sprintf("refused with %d", code))
			registered := sink.matching("registered to")
			if len(refused) != 1 || len(registered) != 1 {
				t.Fatalf("log: %d refusal lines, %d registered lines; want one each: %q", len(refused), len(registered), sink.lines)
			}
		})
	}
}

func TestDialFailuresBackOff(t *testing.T) {
	// A port nobody listens on.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	const min, max = 8 * time.Millisecond, 32 * time.Millisecond
	start := time.Now()
	ln, _, sink := listen(t, Options{Proxies: []string{addr}, Slots: 1, MinBackoff: min, MaxBackoff: max}, http.NotFoundHandler())
	eventually(t, "6 failed dials", func() bool { return ln.Stats().DialFailures >= 6 })
	elapsed := time.Since(start)
	// Five waits of at least 4, 8, 16, 16, 16 ms separate six dials.
	if want := 60 * time.Millisecond; elapsed < want {
		t.Fatalf("6 dials in %v: backoff not applied (want >= %v)", elapsed, want)
	}
	if got := sink.matching("failed"); len(got) != 1 {
		t.Fatalf("failure logged %d times, want once: %q", len(got), got)
	}
	if st := ln.Stats(); st.DialFailures < 6 || st.Registered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlotClosedByProxyIsRedialed(t *testing.T) {
	f := newFakeProxy(t, nil)
	ln, _, _ := listen(t, Options{Proxies: []string{f.addr()}, Slots: 1}, newBlockingHandler())
	s := f.slot()
	if c, _ := s.roundTrip(t, "GET", "/a"); c != 200 {
		t.Fatalf("status %d", c)
	}
	s.conn.Close()
	s2 := f.slot()
	if c, body := s2.roundTrip(t, "GET", "/b"); c != 200 || body != "ok /b" {
		t.Fatalf("got %d %q", c, body)
	}
	// A slot closed before serving anything is re-dialed too (after a backoff).
	s2.conn.Close()
	s3 := f.slot()
	s3.conn.Close()
	f.slot()
	eventually(t, "4 registrations", func() bool { return ln.Stats().Registrations == 4 })
	if st := ln.Stats(); st.Served != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlotClosedByServiceIsRedialed(t *testing.T) {
	f := newFakeProxy(t, nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	listen(t, Options{Proxies: []string{f.addr()}, Slots: 1}, h)
	s := f.slot()
	if c, body := s.roundTrip(t, "GET", "/"); c != 200 || body != "bye" {
		t.Fatalf("got %d %q", c, body)
	}
	if !s.closedByService() {
		t.Fatal("slot not closed after Connection: close")
	}
	f.slot()
}

func TestSetSlotsGrowsAndShrinksWithoutCuttingRequests(t *testing.T) {
	f := newFakeProxy(t, nil)
	h := newBlockingHandler()
	ln, _, _ := listen(t, Options{Proxies: []string{f.addr()}, Slots: 2}, h)
	var slots []*fakeSlot
	for i := 0; i < 2; i++ {
		slots = append(slots, f.slot())
	}
	ln.SetSlots(5)
	for i := 0; i < 3; i++ {
		slots = append(slots, f.slot())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ln.WaitForSlots(ctx, 5); err != nil {
		t.Fatal(err)
	}
	// Every slot serves once, so none is fresh; then two of them get a request that blocks.
	for _, s := range slots {
		if c, _ := s.roundTrip(t, "GET", "/warm"); c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	// The listener counts a response once its Write returns, a moment after the bytes arrive.
	eventually(t, "5 responses counted", func() bool { return ln.Stats().Served == 5 })
	busy, idle := slots[1:3], []*fakeSlot{slots[0], slots[3], slots[4]}
	for _, s := range busy {
		fmt.Fprintf(s.conn, "GET /block HTTP/1.1\r\nHost: test\r\n\r\n")
	}
	h.waitEntered(t, 2)

	ln.SetSlots(1)
	for i, s := range idle {
		if !s.closedByService() {
			t.Fatalf("idle slot %d not closed by SetSlots(1)", i)
		}
	}
	if ln.Slots() != 1 {
		t.Fatalf("Slots() = %d", ln.Slots())
	}
	eventually(t, "2 slots left", func() bool { return ln.Stats().Registered == 2 })
	close(h.release)
	// Both busy requests complete; then one of the two slots is closed, the other kept.
	closed := 0
	var kept *fakeSlot
	for _, s := range busy {
		s.conn.SetDeadline(time.Now().Add(waitLimit))
		if c, body := readResponse(t, s, "GET"); c != 200 || body != "ok /block" {
			t.Fatalf("busy slot answered %d %q", c, body)
		}
		s.conn.SetDeadline(time.Time{})
	}
	eventually(t, "1 slot left", func() bool { return ln.Stats().Registered == 1 })
	for _, s := range busy {
		s.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := s.r.ReadByte()
		s.conn.SetReadDeadline(time.Time{})
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			closed++
		} else {
			kept = s
		}
	}
	if closed != 1 || kept == nil {
		t.Fatalf("%d busy slots closed after their response, want 1", closed)
	}
	if c, body := kept.roundTrip(t, "GET", "/still"); c != 200 || body != "ok /still" {
		t.Fatalf("kept slot answered %d %q", c, body)
	}
	if d := ln.Stats().Dials; d != 5 {
		t.Fatalf("%d dials, want 5 (shrinking must not re-dial)", d)
	}
	// Growing again refills.
	ln.SetSlots(3)
	f.slot()
	f.slot()
}

func TestShutdownLetsInFlightRequestsFinishAndStopsRegistering(t *testing.T) {
	f := newFakeProxy(t, nil)
	h := newBlockingHandler()
	ln, srv, _ := listen(t, Options{Proxies: []string{f.addr()}, Slots: 3}, h)
	slots := []*fakeSlot{f.slot(), f.slot(), f.slot()}
	waitSlots(t, ln, 3)
	fmt.Fprintf(slots[0].conn, "GET /block HTTP/1.1\r\nHost: test\r\n\r\n")
	h.waitEntered(t, 1)

	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(context.Background()) }()
	for _, s := range slots[1:] {
		if !s.closedByService() {
			t.Fatal("idle slot not closed by Shutdown")
		}
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(h.release)
	slots[0].conn.SetDeadline(time.Now().Add(waitLimit))
	if c, body := readResponse(t, slots[0], "GET"); c != 200 || body != "ok /block" {
		t.Fatalf("in-flight request answered %d %q", c, body)
	}
	if !slots[0].closedByService() {
		t.Fatal("busy slot not closed after its response")
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Shutdown did not return")
	}
	if st := ln.Stats(); st.Dials != 3 || st.Registered != 0 {
		t.Fatalf("stats after Shutdown %+v", st)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestCloseWithoutServerAndContextCancel(t *testing.T) {
	f := newFakeProxy(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := Listen(ctx, Options{Proxies: []string{f.addr()}, Slots: 2, Logf: (&logSink{}).logf})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	slots := []*fakeSlot{f.slot(), f.slot()}
	waitSlots(t, ln, 2)
	accepted := make(chan error, 1)
	go func() {
		c2, err := ln.Accept()
		if err == nil {
			c2.Close()
		}
		accepted <- err
	}()
	cancel() // same as Close
	// Both slots, accepted or not, are withdrawn; a blocked Accept returns net.ErrClosed.
	for _, s := range slots {
		if !s.closedByService() {
			t.Fatal("slot not closed after cancel")
		}
	}
	if err := <-accepted; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept: %v", err)
	}
	ln.Close() // waits for every slot goroutine
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if d := ln.Stats().Dials; d != 2 {
		t.Fatalf("%d dials after Close, want 2", d)
	}
}

func TestSlotsSpreadOverProxiesAndRefillAfterOutage(t *testing.T) {
	a := newFakeProxy(t, nil)
	b := newFakeProxy(t, nil)
	ln, _, sink := listen(t, Options{Proxies: []string{a.addr(), b.addr()}, Slots: 2}, newBlockingHandler())
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ln.WaitForSlots(ctx, 4); err != nil {
		t.Fatal(err)
	}
	sa, sb := a.slot(), b.slot()
	a.slot()
	b.slot()

	// Proxy b goes away: its slots close and re-dials fail, while a keeps serving.
	bAddr := b.addr()
	b.stop()
	eventually(t, "b's dials to fail", func() bool { return len(sink.matching("registration to "+bAddr+" failed")) == 1 })
	if c, body := sa.roundTrip(t, "GET", "/a"); c != 200 || body != "ok /a" {
		t.Fatalf("a answered %d %q", c, body)
	}
	eventually(t, "2 slots left", func() bool { return ln.Stats().Registered == 2 })
	_ = sb

	// b comes back on the same address and is refilled.
	relisten, err := net.Listen("tcp", bAddr)
	if err != nil {
		t.Fatal(err)
	}
	b2 := startFake(t, relisten, nil)
	s := b2.slot()
	b2.slot()
	if c, body := s.roundTrip(t, "GET", "/b"); c != 200 || body != "ok /b" {
		t.Fatalf("b answered %d %q", c, body)
	}
	if err := ln.WaitForSlots(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got := sink.matching("registered to " + bAddr); len(got) != 2 {
		t.Fatalf("b registered lines %q, want 2 (before and after the outage)", got)
	}
}

func TestUnixProxy(t *testing.T) {
	path := t.TempDir() + "/reg.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(t, ln, nil)
	listen(t, Options{Proxies: []string{"unix:" + path}, Slots: 1}, newBlockingHandler())
	if c, body := f.slot().roundTrip(t, "GET", "/u"); c != 200 || body != "ok /u" {
		t.Fatalf("got %d %q", c, body)
	}
}
