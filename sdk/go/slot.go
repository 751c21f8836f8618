package l7px

import (
	"net"
	"sync"
	"sync/atomic"
)

// slotConn is one registered slot as handed out by Accept. It reads the bytes the proxy sent
// right after the 101 before reading the socket, and feeds everything read and written to an
// exchangeTracker so the listener knows whether the slot is idle (see SetSlots and Close).
//
// Lock order: Listener.mu before slotConn.mu; the socket is never closed under slotConn.mu.
type slotConn struct {
	net.Conn
	l      *Listener
	worker *slotWorker

	mu       sync.Mutex
	pending  []byte // received after the 101, not yet returned by Read
	tracker  exchangeTracker
	retiring bool // close as soon as the slot is idle
	tunneled bool // a 101 went out: the slot is a tunnel, replaced at once (see Listener.slotTunneled)

	served    atomic.Uint64
	closeOnce sync.Once
	done      chan struct{} // closed once the socket is closed, by whoever closed it
	tunnel    chan struct{} // closed once the slot became a tunnel
}

func newSlotConn(l *Listener, w *slotWorker, c net.Conn, pending []byte) *slotConn {
	return &slotConn{Conn: c, l: l, worker: w, pending: pending, done: make(chan struct{}),
		tunnel: make(chan struct{})}
}

func (c *slotConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.tracker.onRead(p[:n])
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.tracker.onRead(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

func (c *slotConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.mu.Lock()
		completed := c.tracker.onWrite(p[:n])
		closeNow := completed > 0 && c.retiring && c.tracker.idle()
		tunneled := c.tracker.tunnel && !c.tunneled
		c.tunneled = c.tunneled || tunneled
		c.mu.Unlock()
		if tunneled {
			c.l.slotTunneled(c)
		}
		if completed > 0 {
			c.served.Add(uint64(completed))
			c.l.served.Add(uint64(completed))
		}
		if closeNow {
			c.closeSocket()
		}
	}
	return n, err
}

// Close closes the slot; the listener re-dials it unless it is being retired or closed.
func (c *slotConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.l.slotClosed(c)
		close(c.done)
	})
	return err
}

func (c *slotConn) closeSocket() { _ = c.Close() }

// idle reports whether the slot is between two exchanges.
func (c *slotConn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracker.idle()
}

// retire closes the slot now if it is idle, else right after the response in progress.
func (c *slotConn) retire() {
	c.mu.Lock()
	c.retiring = true
	idle := c.tracker.idle()
	c.mu.Unlock()
	if idle {
		c.closeSocket()
	}
}

// Addr of a Listener: the proxies it registers to.
type listenerAddr string

func (a listenerAddr) Network() string { return "l7px" }
func (a listenerAddr) String() string  { return string(a) }
