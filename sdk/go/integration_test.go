package l7px

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Integration tests against the real l7px binary: $L7PX_BINARY, else ../../build/l7px relative
// to this directory. They are skipped only when that file does not exist. Every l7px runs on
// kernel-chosen loopback ports with its own config in a temp dir and is killed on cleanup.

func l7pxBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("L7PX_BINARY")
	if path == "" {
		path = filepath.Join("..", "..", "build", "l7px")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); os.IsNotExist(err) {
		t.Skipf("l7px binary not found at %s: build it (cmake --build build --target l7px) or set L7PX_BINARY", abs)
	}
	return abs
}

// freePorts returns n distinct loopback ports the kernel just handed out.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// proxy is one l7px process, restartable on the same ports.
type proxy struct {
	t               *testing.T
	bin, dir        string
	front, register string // host:port
	cmd             *exec.Cmd
	exited          chan struct{}
}

func startProxy(t *testing.T, handshake string) *proxy {
	t.Helper()
	return startProxyWithPool(t, handshake, "")
}

// startProxyWithPool is startProxy with extra keys for the default pool (TOML lines).
func startProxyWithPool(t *testing.T, handshake, poolExtra string) *proxy {
	t.Helper()
	bin := l7pxBinary(t)
	dir := t.TempDir()
	ports := freePorts(t, 2)
	p := &proxy{
		t: t, bin: bin, dir: dir,
		front:    fmt.Sprintf("127.0.0.1:%d", ports[0]),
		register: fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	config := fmt.Sprintf(`[server]
workers = 2
listen = ["%s"]

[register]
listen = ["%s"]
handshake = "%s"

[admin]
listen = ""

[upgrade]
socket = "%s/upgrade.sock"

[log]
level = "info"
access = "off"

[[pool]]
name = "default"
queue_timeout = "10s"
%s
[[route]]
host = "*"
path = "/"
pool = "default"
`, p.front, p.register, handshake, dir, poolExtra)
	if err := os.WriteFile(filepath.Join(dir, "l7px.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *proxy) start() {
	p.t.Helper()
	logFile, err := os.OpenFile(filepath.Join(p.dir, "l7px.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logFile.Close()
	p.cmd = exec.Command(p.bin, "-c", filepath.Join(p.dir, "l7px.toml"))
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(exited)
	}(p.cmd)
	for _, addr := range []string{p.front, p.register} {
		deadline := time.Now().Add(waitLimit)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				p.t.Fatalf("l7px exited at startup:\n%s", p.log())
			default:
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("l7px not listening on %s:\n%s", addr, p.log())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (p *proxy) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

func (p *proxy) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "l7px.log"))
	return string(b)
}

var client = &http.Client{
	Timeout:   waitLimit,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// echoHandler answers with the method, path and proxy-added client address.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s body=%d xff=%s", r.Method, r.URL.Path, len(body), r.Header.Get("X-Forwarded-For"))
})

func TestIntegrationHandlerAnswersThroughL7px(t *testing.T) {
	p := startProxy(t, "upgrade")
	ln, _, _ := listen(t, Options{Proxies: []string{p.register}, Slots: 2}, echoHandler)
	waitSlots(t, ln, 2)
	if code, body := get(t, "http://"+p.front+"/hello"); code != 200 || body != "GET /hello body=0 xff=127.0.0.1" {
		t.Fatalf("got %d %q", code, body)
	}
	resp, err := client.Post("http://"+p.front+"/upload", "text/plain", strings.NewReader(strings.Repeat("b", 100000)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "POST /upload body=100000 xff=127.0.0.1" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	// A response is counted once its Write returns, a moment after the client may have it.
	eventually(t, "2 responses counted", func() bool { return ln.Stats().Served == 2 })
	if st := ln.Stats(); st.Registered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIntegrationSurvivesProxyRestart(t *testing.T) {
	p := startProxy(t, "upgrade")
	ln, _, sink := listen(t, Options{Proxies: []string{p.register}, Slots: 2, MaxBackoff: 100 * time.Millisecond}, echoHandler)
	waitSlots(t, ln, 2)
	if code, _ := get(t, "http://"+p.front+"/before"); code != 200 {
		t.Fatalf("status %d", code)
	}
	p.kill()
	eventually(t, "slots to drop", func() bool { return ln.Stats().Registered == 0 })
	eventually(t, "a failed re-dial", func() bool { return len(sink.matching("failed")) > 0 })
	p.start()
	waitSlots(t, ln, 2)
	if code, body := get(t, "http://"+p.front+"/after"); code != 200 || !strings.HasPrefix(body, "GET /after") {
		t.Fatalf("after restart: %d %q", code, body)
	}
	if got := sink.matching("registered to"); len(got) != 2 {
		t.Fatalf("registered lines %q, want one before and one after the restart", got)
	}
}

func TestIntegrationTwoProxiesBothServe(t *testing.T) {
	a := startProxy(t, "upgrade")
	b := startProxy(t, "upgrade")
	ln, _, _ := listen(t, Options{Proxies: []string{a.register, b.register}, Slots: 2, MaxBackoff: 100 * time.Millisecond}, echoHandler)
	waitSlots(t, ln, 4)
	for _, p := range []*proxy{a, b} {
		if code, _ := get(t, "http://"+p.front+"/x"); code != 200 {
			t.Fatalf("%s: status %d", p.front, code)
		}
	}
	b.kill()
	eventually(t, "b's slots to drop", func() bool { return ln.Stats().Registered == 2 })
	for i := 0; i < 5; i++ {
		if code, _ := get(t, "http://"+a.front+"/while-b-is-down"); code != 200 {
			t.Fatalf("a while b is down: status %d", code)
		}
	}
	b.start()
	waitSlots(t, ln, 4)
	if code, _ := get(t, "http://"+b.front+"/back"); code != 200 {
		t.Fatalf("b after restart: status %d", code)
	}
}

func TestIntegrationDeclaredConcurrencyIsNeverExceeded(t *testing.T) {
	p := startProxy(t, "upgrade")
	var inflight, peak atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // service time, so requests overlap
		inflight.Add(-1)
		io.WriteString(w, "ok")
	})
	ln, _, _ := listen(t, Options{Proxies: []string{p.register}, Slots: 3}, h)
	waitSlots(t, ln, 3)

	const clients, perClient = 50, 8
	var wg sync.WaitGroup
	var failures atomic.Int64
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				resp, err := client.Get("http://" + p.front + "/")
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed", f, clients*perClient)
	}
	if got := peak.Load(); got > 3 || got < 2 {
		t.Fatalf("peak concurrency %d with Slots: 3 under %d clients", got, clients)
	}
	eventually(t, "every response counted", func() bool { return ln.Stats().Served == clients*perClient })
}

func TestIntegrationBareSDKThroughHandshakeNone(t *testing.T) {
	p := startProxy(t, "none")
	ln, _, _ := listen(t, Options{Proxies: []string{p.register}, Slots: 2, Bare: true}, echoHandler)
	waitSlots(t, ln, 2)
	if code, body := get(t, "http://"+p.front+"/bare"); code != 200 || !strings.HasPrefix(body, "GET /bare") {
		t.Fatalf("got %d %q", code, body)
	}
}

// wsHandler answers /ws as a WebSocket-like upgrade: it hijacks the connection, writes the 101
// and echoes every line until the client closes. Other paths get "plain".
var wsHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		io.WriteString(w, "plain")
		return
	}
	conn, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	for {
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		rw.WriteString("echo " + line)
		rw.Flush()
	}
})

// openTunnel sends an upgrade request to the proxy and reads the 101: a tunnel to the service.
func openTunnel(t *testing.T, front string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", front, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade answered %d", resp.StatusCode)
	}
	return c, r
}

// Every declared slot becomes a WebSocket tunnel: the SDK dials a replacement for each at once,
// so plain requests are still served (before: they waited for a slot until queue_timeout, 503)
// and the tunnels keep working.
func TestIntegrationTunnelsAreReplacedSoPlainRequestsStillServe(t *testing.T) {
	p := startProxyWithPool(t, "upgrade", "max_slots = 2\n")
	ln, _, _ := listen(t, Options{Proxies: []string{p.register}, Slots: 2}, wsHandler)
	waitSlots(t, ln, 2)
	var tunnels []net.Conn
	var readers []*bufio.Reader
	for i := 0; i < 2; i++ {
		c, r := openTunnel(t, p.front)
		tunnels, readers = append(tunnels, c), append(readers, r)
	}
	eventually(t, "2 tunnels counted", func() bool { return ln.Stats().Tunnels == 2 })
	waitSlots(t, ln, 2) // the replacements
	for i := 0; i < 4; i++ {
		if code, body := get(t, "http://"+p.front+"/plain"); code != 200 || body != "plain" {
			t.Fatalf("plain request %d with every first slot a tunnel: %d %q\n%s", i, code, body, p.log())
		}
	}
	for i, c := range tunnels {
		msg := fmt.Sprintf("hello %d\n", i)
		io.WriteString(c, msg)
		if got, err := readers[i].ReadString('\n'); err != nil || got != "echo "+msg {
			t.Fatalf("tunnel %d: %q %v", i, got, err)
		}
	}
	if st := ln.Stats(); st.Registered != 2 || st.Tunnels != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// ---- example programs, built with the go command ----

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// buildProgram builds the main package in dir (relative to this directory) once per test
// binary run and returns the executable's path.
func buildProgram(t *testing.T, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if exe, ok := buildCache[dir]; ok {
		return exe
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "l7px-go-examples-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(buildDir, filepath.Base(abs))
	cmd := exec.Command(goCmd, "build", "-o", exe, ".")
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", dir, err, out)
	}
	buildCache[dir] = exe
	return exe
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// child is a running example program; it is killed on cleanup.
type child struct {
	cmd   *exec.Cmd
	ready chan struct{} // closed when the program prints "ready"
	out   strings.Builder
	mu    sync.Mutex
}

func startChild(t *testing.T, exe string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(exe, args...), ready: make(chan struct{})}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = &lockedWriter{c: c}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		s := bufio.NewScanner(stdout)
		once := sync.Once{}
		for s.Scan() {
			if s.Text() == "ready" {
				once.Do(func() { close(c.ready) })
			}
		}
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-scanned
		c.cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(exe), c.output())
		}
	})
	return c
}

type lockedWriter struct{ c *child }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.out.Write(p)
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *child) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-c.ready:
	case <-time.After(waitLimit):
		t.Fatalf("program not ready:\n%s", c.output())
	}
}

func TestIntegrationPapersBareServiceThroughHandshakeNone(t *testing.T) {
	p := startProxy(t, "none")
	exe := buildProgram(t, "../../examples/go-bare-service")
	startChild(t, exe, "--proxy", p.register, "--slots", "2")
	// The request waits in l7px's queue until the service has dialed in.
	code, body := get(t, "http://"+p.front+"/papers")
	if code != 200 || !strings.Contains(body, "go-bare-service") || !strings.Contains(body, "GET /papers") {
		t.Fatalf("got %d %q", code, body)
	}
	for i := 0; i < 10; i++ { // keep-alive slots serve again and again
		if code, _ := get(t, "http://"+p.front+"/again"); code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
}

func TestIntegrationGoHelloExample(t *testing.T) {
	p := startProxy(t, "upgrade")
	exe := buildProgram(t, "../../examples/go-hello")
	startChild(t, exe, "--proxy", p.register, "--slots", "2")
	code, body := get(t, "http://"+p.front+"/readme")
	if code != 200 || !strings.HasPrefix(body, "hello from go-hello") || !strings.Contains(body, "GET /readme") {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestIntegrationBenchServices(t *testing.T) {
	p := startProxy(t, "upgrade")
	services := map[string]string{"go": buildProgram(t, "./cmd/l7px-bench-service")}
	if cc := filepath.Join(filepath.Dir(l7pxBinary(t)), "l7px-bench-service"); fileExists(cc) {
		services["c++"] = cc
	} else {
		t.Logf("C++ l7px-bench-service not built next to l7px; testing the Go one only")
	}
	for name, exe := range services {
		t.Run(name, func(t *testing.T) {
			port := freePorts(t, 1)[0]
			direct := startChild(t, exe, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--size", "3000")
			direct.waitReady(t)
			if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 || body != strings.Repeat("x", 3000) {
				t.Fatalf("direct: %d, %d bytes", code, len(body))
			}
			registered := startChild(t, exe, "--proxy", p.register, "--slots", "2", "--size", "777", "--delay-ms", "1")
			registered.waitReady(t)
			for i := 0; i < 5; i++ {
				if code, body := get(t, "http://"+p.front+"/"); code != 200 || body != strings.Repeat("x", 777) {
					t.Fatalf("through l7px: %d, %d bytes", code, len(body))
				}
			}
			registered.cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- registered.cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after SIGINT: %v", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("no exit after SIGINT")
			}
		})
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
