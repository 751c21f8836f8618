// Package l7px lets a Go service run behind the l7px reverse proxy by changing one line:
// instead of listening on a port, the service dials in to one or more proxies and registers
// keep-alive connections ("slots", slot protocol v1); l7px sends one HTTP/1.1 request at a time
// on each. Listen returns a net.Listener whose Accept yields those slots, so net/http (and
// anything built on it) serves them unchanged:
//
//	ln, err := l7px.Listen(ctx, l7px.Options{Proxies: []string{"127.0.0.1:9999"}, Slots: 8})
//	if err != nil { log.Fatal(err) }
//	log.Fatal(http.Serve(ln, mux))
//
// Slots is the service's declared concurrency: with Slots = 8 per proxy, the service never
// sees more than 8 requests at once from that proxy; further requests wait (or are shed) in
// the proxy.
//
// How the listener keeps its promise:
//   - One goroutine per slot dials, sends the registration head, waits for
//     "101 Switching Protocols", hands the connection to Accept and waits until it is closed
//     (by the server or because the proxy closed it), then dials again. A slot that served at
//     least one response is re-dialed at once; a refusal (400/403/404/503), a failed dial or a
//     connection that ends without serving anything waits an exponential backoff with jitter
//     first, so there is never a tight loop. Each proxy's state changes (registered, refused
//     with a status, dial failed with an error) are logged once, not once per retry.
//   - The listener knows whether a slot is idle by following the HTTP/1.1 framing of the bytes
//     that pass through it (see exchangeTracker): no server hook is needed. SetSlots shrinks by
//     closing idle slots first; a busy slot is closed only right after its response is complete.
//   - Close stops registering and withdraws the slots the same way, so http.Server.Shutdown
//     (which closes the listener first) lets every in-flight request finish.
//   - A slot on which the service writes a "101 Switching Protocols" head (a WebSocket handler
//     that hijacks the connection) becomes a tunnel: l7px takes it out of the pool, and the
//     listener dials a replacement at once, so the declared Slots stay idle for other requests.
//     The tunnel's connection belongs to the handler from then on (it is not counted in
//     Registered, and SetSlots and Close leave it alone); it ends when either side closes it.
package l7px

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures Listen. Only Proxies is required.
type Options struct {
	// Proxies are the registration addresses of every proxy to register to: "host:port",
	// "[v6]:port" or "unix:/path". Each gets Slots connections.
	Proxies []string
	// Pool is sent as L7px-Pool; "" lets the proxy use its default pool.
	Pool string
	// Slots is the number of connections kept registered per proxy: the most requests this
	// service will ever be sent at once by each proxy. Default 4. Resize with SetSlots.
	Slots int
	// Token is sent as L7px-Token when the pool requires one.
	Token string
	// Service is the instance id sent as L7px-Service; default "<hostname>-<pid>".
	Service string
	// Bare sends no registration head at all: the connection is the slot as soon as it is
	// connected (proxy side `register.handshake = "none"`).
	Bare bool
	// MinBackoff and MaxBackoff bound the re-dial backoff (defaults 50ms and 5s). The delay
	// doubles from MinBackoff up to MaxBackoff, with jitter in [d/2, d], and starts over once a
	// slot has served a response or stayed connected for MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds connecting and HandshakeTimeout waiting for the answer to the
	// registration (defaults 5s and 10s).
	DialTimeout, HandshakeTimeout time.Duration
	// Logf receives one line per state change per proxy; nil logs with the standard logger.
	Logf func(format string, args ...any)
}

// Stats is a snapshot of a Listener's counters.
type Stats struct {
	Registered    int    // slots registered now (101 seen, or connected when Bare) and open
	Served        uint64 // responses completed on slots
	Dials         uint64 // connection attempts started
	Registrations uint64 // successful registrations
	Refusals      uint64 // answers other than 101 to the registration head
	DialFailures  uint64 // connect failures, handshake I/O errors and malformed answers
	Tunnels       uint64 // slots that became tunnels (a 101 was written on them) and were replaced
}

// Listener registers slots to the proxies and yields them from Accept. All methods are safe
// for concurrent use.
type Listener struct {
	opts  Options
	head  []byte
	addr  listenerAddr
	conns chan *slotConn // unbuffered: a slot goroutine knows when its slot is accepted

	stopCtx  context.Context // cancelled by Close; parent of every slot goroutine's context
	stop     context.CancelFunc
	closedCh chan struct{}
	wg       sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	slots      int
	proxies    []*proxyState
	live       map[*slotConn]struct{} // registered and not closed
	changed    chan struct{}          // closed and replaced whenever len(live) changes
	nextWorker int64

	logMu sync.Mutex

	served, dials, registrations, refusals, dialFailures, tunnels atomic.Uint64
}

type proxyState struct {
	text, network, address string
	workers                []*slotWorker // under Listener.mu
	lastLogged             string        // under Listener.logMu
}

// slotWorker is the goroutine keeping one slot of one proxy registered.
type slotWorker struct {
	proxy  *proxyState
	ctx    context.Context // cancelled when retired or when the listener closes
	cancel context.CancelFunc
	conn   *slotConn // registered connection, nil while dialing or backing off; under Listener.mu
}

// Listen validates opts and starts registering slots to every proxy. It does not wait for any
// registration (see WaitForSlots): a proxy that is down is retried with backoff. Cancelling
// ctx is the same as calling Close.
func Listen(ctx context.Context, opts Options) (*Listener, error) {
	if len(opts.Proxies) == 0 {
		return nil, errors.New("l7px: no proxy address given")
	}
	if opts.Slots == 0 {
		opts.Slots = 4
	}
	if opts.Slots < 0 {
		return nil, fmt.Errorf("l7px: Slots must be positive, got %d", opts.Slots)
	}
	if opts.Service == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "service"
		}
		opts.Service = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	for name, v := range map[string]string{"Pool": opts.Pool, "Token": opts.Token, "Service": opts.Service} {
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("l7px: %s contains control characters", name)
		}
	}
	defaultDuration(&opts.MinBackoff, 50*time.Millisecond)
	defaultDuration(&opts.MaxBackoff, 5*time.Second)
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	defaultDuration(&opts.DialTimeout, 5*time.Second)
	defaultDuration(&opts.HandshakeTimeout, 10*time.Second)
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { log.Printf("l7px: "+format, args...) }
	}

	l := &Listener{
		opts:     opts,
		head:     registrationHead(opts.Pool, opts.Token, opts.Service),
		addr:     listenerAddr(strings.Join(opts.Proxies, ",")),
		conns:    make(chan *slotConn),
		closedCh: make(chan struct{}),
		slots:    opts.Slots,
		live:     make(map[*slotConn]struct{}),
		changed:  make(chan struct{}),
	}
	for _, text := range opts.Proxies {
		p, err := parseProxy(text)
		if err != nil {
			return nil, err
		}
		l.proxies = append(l.proxies, p)
	}
	l.stopCtx, l.stop = context.WithCancel(context.Background())
	l.mu.Lock()
	for _, p := range l.proxies {
		for i := 0; i < opts.Slots; i++ {
			l.startWorkerLocked(p)
		}
	}
	l.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			l.Close()
		case <-l.closedCh:
		}
	}()
	return l, nil
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func parseProxy(text string) (*proxyState, error) {
	if strings.HasPrefix(text, "unix:") {
		path := strings.TrimPrefix(text, "unix:")
		if path == "" {
			return nil, fmt.Errorf("l7px: empty unix socket path in %q", text)
		}
		return &proxyState{text: text, network: "unix", address: path}, nil
	}
	host, port, err := net.SplitHostPort(text)
	if err != nil || port == "" {
		return nil, fmt.Errorf("l7px: proxy address %q is not host:port or unix:/path", text)
	}
	return &proxyState{text: text, network: "tcp", address: net.JoinHostPort(host, port)}, nil
}

// Accept waits for the next registered slot. After Close it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closedCh:
		return nil, net.ErrClosed
	}
}

// Close stops registering: no slot is dialed any more, idle slots are closed at once and busy
// ones right after their response is complete. Slots already handed out by Accept remain the
// server's to close. Idempotent; it waits for the slot goroutines (not for in-flight
// requests: http.Server.Shutdown does that).
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return nil
	}
	l.closed = true
	close(l.closedCh)
	l.stop()
	live := make([]*slotConn, 0, len(l.live))
	for c := range l.live {
		live = append(live, c)
	}
	l.mu.Unlock()
	for _, c := range live {
		c.retire()
	}
	l.wg.Wait()
	return nil
}

// Addr returns the comma-separated proxy addresses (network "l7px").
func (l *Listener) Addr() net.Addr { return l.addr }

// SetSlots changes the number of slots per proxy. Growing dials new slots at once. Shrinking
// withdraws slots that are not registered yet first, then idle ones (closed at once), and busy
// ones last (closed right after their response is complete): a request in progress is never
// cut. n = 0 withdraws every slot until the next SetSlots. Ignored after Close or for n < 0.
func (l *Listener) SetSlots(n int) {
	l.mu.Lock()
	if l.closed || n < 0 {
		l.mu.Unlock()
		return
	}
	l.slots = n
	var retire []*slotWorker
	for _, p := range l.proxies {
		for len(p.workers) < n {
			l.startWorkerLocked(p)
		}
		if len(p.workers) > n {
			// Rank: not registered (0), idle (1), busy (2); keep the highest ranks.
			rank := func(w *slotWorker) int {
				switch {
				case w.conn == nil:
					return 0
				case w.conn.idle():
					return 1
				default:
					return 2
				}
			}
			ranks := make(map[*slotWorker]int, len(p.workers))
			for _, w := range p.workers {
				ranks[w] = rank(w)
			}
			sort.SliceStable(p.workers, func(i, j int) bool { return ranks[p.workers[i]] < ranks[p.workers[j]] })
			cut := len(p.workers) - n
			retire = append(retire, p.workers[:cut]...)
			p.workers = append([]*slotWorker(nil), p.workers[cut:]...)
		}
	}
	l.mu.Unlock()
	for _, w := range retire {
		w.cancel() // the worker retires its connection (see run)
	}
}

// Slots returns the current number of slots per proxy.
func (l *Listener) Slots() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slots
}

// WaitForSlots blocks until at least n slots are registered in total (over all proxies), ctx
// is done, or the listener is closed.
func (l *Listener) WaitForSlots(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		have, changed, closed := len(l.live), l.changed, l.closed
		l.mu.Unlock()
		if have >= n {
			return nil
		}
		if closed {
			return net.ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("l7px: %d of %d slots registered: %w", have, n, ctx.Err())
		case <-l.closedCh:
		}
	}
}

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	registered := len(l.live)
	l.mu.Unlock()
	return Stats{
		Registered:    registered,
		Served:        l.served.Load(),
		Dials:         l.dials.Load(),
		Registrations: l.registrations.Load(),
		Refusals:      l.refusals.Load(),
		DialFailures:  l.dialFailures.Load(),
		Tunnels:       l.tunnels.Load(),
	}
}

func (l *Listener) startWorkerLocked(p *proxyState) {
	ctx, cancel := context.WithCancel(l.stopCtx)
	w := &slotWorker{proxy: p, ctx: ctx, cancel: cancel}
	p.workers = append(p.workers, w)
	l.nextWorker++
	seed := time.Now().UnixNano() ^ l.nextWorker*7919
	l.wg.Add(1)
	go l.run(w, newBackoff(l.opts.MinBackoff, l.opts.MaxBackoff, seed))
}

// run keeps one slot registered until the worker is retired or the listener closes.
func (l *Listener) run(w *slotWorker, bo *backoff) {
	defer l.wg.Done()
	defer w.cancel()
	for w.ctx.Err() == nil {
		started := time.Now()
		c, err := l.register(w)
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			l.logFailure(w.proxy, err)
			if !sleep(w.ctx, bo.Next()) {
				return
			}
			continue
		}
		select {
		case l.conns <- c:
		case <-w.ctx.Done():
			c.closeSocket()
			return
		}
		select {
		case <-c.done:
		case <-c.tunnel:
			// The slot left the proxy's pool as a tunnel: its replacement is dialed now.
			bo.Reset()
			continue
		case <-w.ctx.Done():
			c.retire()
			return
		}
		if c.served.Load() > 0 {
			bo.Reset()
			continue
		}
		// Ended without serving anything (e.g. the proxy went away): back off, quietly.
		if time.Since(started) >= l.opts.MaxBackoff {
			bo.Reset()
		}
		if !sleep(w.ctx, bo.Next()) {
			return
		}
	}
}

func (l *Listener) describe() string {
	var b strings.Builder
	if l.opts.Pool != "" {
		b.WriteString(" pool " + l.opts.Pool)
	}
	if l.opts.Bare {
		b.WriteString(" (bare)")
	}
	return b.String()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// refusal is a non-101 answer to the registration head.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return fmt.Sprintf("refused with %d %s", r.status, r.reason) }

// register dials w's proxy and completes the handshake. On success the slot is live.
func (l *Listener) register(w *slotWorker) (*slotConn, error) {
	l.dials.Add(1)
	d := net.Dialer{Timeout: l.opts.DialTimeout, KeepAlive: 60 * time.Second}
	conn, err := d.DialContext(w.ctx, w.proxy.network, w.proxy.address)
	if err != nil {
		if w.ctx.Err() == nil {
			l.dialFailures.Add(1)
		}
		return nil, err
	}
	var pending []byte
	if !l.opts.Bare {
		pending, err = l.handshake(w.ctx, conn)
		if err != nil {
			conn.Close()
			var r *refusal
			if errors.As(err, &r) {
				l.refusals.Add(1)
			} else if w.ctx.Err() == nil {
				l.dialFailures.Add(1)
			}
			return nil, err
		}
	}
	l.logState(w.proxy, "registered", "registered to %s%s", w.proxy.text, l.describe())
	c := newSlotConn(l, w, conn, pending)
	l.mu.Lock()
	if w.ctx.Err() != nil {
		l.mu.Unlock()
		conn.Close()
		return nil, w.ctx.Err()
	}
	l.live[c] = struct{}{}
	w.conn = c
	l.notifyLocked()
	l.mu.Unlock()
	l.registrations.Add(1)
	return c, nil
}

// handshake sends the v1 head and reads the answer; it returns the bytes received after the
// 101 head, which are already slot traffic.
func (l *Listener) handshake(ctx context.Context, conn net.Conn) ([]byte, error) {
	conn.SetDeadline(time.Now().Add(l.opts.HandshakeTimeout))
	// Retiring or closing interrupts the handshake through the deadline.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			conn.SetDeadline(time.Unix(1, 0))
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-stopped
		conn.SetDeadline(time.Time{})
	}()

	if _, err := conn.Write(l.head); err != nil {
		return nil, fmt.Errorf("sending the registration: %w", err)
	}
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		status, headLen, complete, perr := parseHandshakeReply(buf)
		if perr != nil {
			return nil, perr
		}
		if complete {
			if status != 101 {
				return nil, &refusal{status: status, reason: reasonFromHead(buf[:headLen])}
			}
			return append([]byte(nil), buf[headLen:]...), nil
		}
		if err != nil {
			return nil, fmt.Errorf("registration got no answer: %w", err)
		}
	}
}

func reasonFromHead(head []byte) string {
	line := string(head)
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = strings.TrimRight(line[:i], "\r")
	}
	if len(line) > 13 {
		return line[13:]
	}
	return ""
}

// slotTunneled is called once per slot connection, when a 101 head was written on it: the proxy
// no longer counts it as a slot, so it leaves the live set and its worker dials a replacement.
func (l *Listener) slotTunneled(c *slotConn) {
	l.tunnels.Add(1)
	l.mu.Lock()
	if _, ok := l.live[c]; ok {
		delete(l.live, c)
		l.notifyLocked()
	}
	if c.worker.conn == c {
		c.worker.conn = nil
	}
	l.mu.Unlock()
	close(c.tunnel)
}

// slotClosed is called once per slot connection, when its socket is closed.
func (l *Listener) slotClosed(c *slotConn) {
	l.mu.Lock()
	if _, ok := l.live[c]; ok {
		delete(l.live, c)
		l.notifyLocked()
	}
	if c.worker.conn == c {
		c.worker.conn = nil
	}
	l.mu.Unlock()
}

func (l *Listener) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Listener) logFailure(p *proxyState, err error) {
	var r *refusal
	if errors.As(err, &r) {
		l.logState(p, fmt.Sprintf("refused:%d", r.status),
			"registration to %s %v (retrying with backoff)", p.text, err)
		return
	}
	l.logState(p, "failed:"+err.Error(), "registration to %s failed: %v (retrying with backoff)", p.text, err)
}

// logState logs only when proxy p enters a state different from the last one logged.
func (l *Listener) logState(p *proxyState, state, format string, args ...any) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if p.lastLogged == state {
		return
	}
	p.lastLogged = state
	l.opts.Logf(format, args...)
}
