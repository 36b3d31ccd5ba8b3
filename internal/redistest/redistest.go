// Package redistest runs a real redis-server for tests, on a loopback port of its own, with no
// persistence, in a temporary directory; a test skips (and fails in CI) when there is none.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server of the test's own on a loopback port, with
// no persistence, in a temporary directory. Stop and Start it to simulate
// an outage; the port stays the same.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a redis-server with the extra arguments, or skips the
// test when there is none to start (and fails it in CI, which must run it).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const how = "redis-server is not on PATH; install it (apt-get install -y redis-server) to run the Redis replay store tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(how + ": CI must run them")
		}
		t.Skip(how)
	}
	r := &Server{t: t, bin: bin, dir: t.TempDir(), args: extra}
	t.Cleanup(r.Stop)
	// A free port can be taken between our check and redis-server's bind.
	for attempt := 0; ; attempt++ {
		r.port = freeLoopbackPort(t)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 2 {
			t.Fatalf("starting redis-server: %v\n%s", err, r.serverLog())
		}
	}
}

func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *Server) URL() string { return "redis://" + r.Addr() + "/0" }

func (r *Server) serverLog() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return string(b)
}

// Start starts the server again on its port after a Stop.
func (r *Server) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restarting redis-server: %v\n%s", err, r.serverLog())
	}
}

func (r *Server) start() error {
	logFile, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := append([]string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--daemonize", "no", "--loglevel", "warning",
	}, r.args...)
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited at start", r.port)
		default:
		}
		if redisAnswers(r.Addr()) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("redis-server on port %d did not answer PING in 15s", r.port)
}

// redisAnswers reports whether a Redis answers PING at addr (+PONG, or
// -NOAUTH from one that wants a password).
func redisAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// Stop stops the server and waits for it to exit.
func (r *Server) Stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
