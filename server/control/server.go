package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Serve's options.
const (
	DefaultMaxRequestBytes = 1 << 20
	DefaultReadTimeout     = 30 * time.Second
)

// Option changes a default of Serve.
type Option func(*options)

type options struct {
	maxRequest  int
	readTimeout time.Duration
	log         *slog.Logger
}

// WithMaxRequestBytes caps the size of one request (an object or a
// batch); a larger one is refused and its connection closed.
func WithMaxRequestBytes(n int) Option { return func(o *options) { o.maxRequest = n } }

// WithReadTimeout bounds how long a connection may take to send its next
// request, idle time included.
func WithReadTimeout(d time.Duration) Option { return func(o *options) { o.readTimeout = d } }

// WithLogger sets the logger (default slog.Default with component=control).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// tmpSeq tells apart the temporary names of sockets one process binds.
var tmpSeq atomic.Uint64

// Listener is a serving control socket.
type Listener struct {
	path string
	ln   *net.UnixListener
	fi   os.FileInfo // the socket file as published, to remove only ours
	svc  *service
	opts options

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	done   chan struct{}
}

// Serve listens on the unix socket path and serves api until ctx ends or
// Close. It creates path's directory (mode 0750) if needed; it refuses a
// path where a server answers or that is not a socket, and replaces a
// socket that nothing answers on (a crashed server's). The socket is mode
// 0600 from the moment it has its name.
func Serve(ctx context.Context, path string, api API, opt ...Option) (*Listener, error) {
	o := options{maxRequest: DefaultMaxRequestBytes, readTimeout: DefaultReadTimeout}
	for _, f := range opt {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.Default().With("component", "control")
	}
	if path == "" {
		return nil, errors.New("control socket: empty path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// Bind a private name, make it 0600, then rename it into place: the
	// final name never refers to a socket others may connect to, whatever
	// the umask. The name is as long as path or shorter (sun_path is 108
	// bytes).
	tmp := filepath.Join(dir, fmt.Sprintf(".u%d.%d.tmp", os.Getpid(), tmpSeq.Add(1)))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // Close removes the published name itself
	fail := func(err error) (*Listener, error) {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	l := &Listener{
		path:  path,
		ln:    ln,
		fi:    fi,
		svc:   &service{api: api},
		opts:  o,
		conns: make(map[net.Conn]struct{}),
		done:  make(chan struct{}),
	}
	l.wg.Add(1)
	go l.accept()
	go func() {
		select {
		case <-ctx.Done():
			_ = l.Close()
		case <-l.done:
		}
	}()
	o.log.Info("control socket listening", "path", path)
	return l, nil
}

// removeStale removes path if it is a socket nothing answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket %s: exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("control socket %s: another server is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: in use? %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops accepting, ends the open connections (a request being run
// finishes first), waits for them and removes the socket file if it is
// still the one Serve published.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	err := l.ln.Close()
	for c := range l.conns {
		// Wake a connection blocked reading; one running a request
		// writes its response, then fails its next read.
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	l.mu.Unlock()
	l.wg.Wait()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
		if rerr := os.Remove(l.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	close(l.done)
	l.opts.log.Info("control socket closed", "path", l.path)
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.opts.log.Error("control socket accept", "err", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serveConn(c)
	}
}

// capReader lets a json.Decoder read at most limit bytes past the end of
// the last value it decoded (end, from Decoder.InputOffset), so that one
// request is capped whatever the decoder buffers ahead.
type capReader struct {
	r     io.Reader
	read  int64 // bytes handed to the decoder
	end   int64 // offset of the end of the last value
	limit int64
}

var errTooLarge = errors.New("request too large")

func (c *capReader) Read(p []byte) (int, error) {
	room := c.end + c.limit - c.read
	if room <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

func (l *Listener) serveConn(conn net.Conn) {
	defer func() {
		_ = conn.Close()
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
		l.wg.Done()
	}()
	cr := &capReader{r: conn, limit: int64(l.opts.maxRequest)}
	dec := json.NewDecoder(cr)
	for {
		l.mu.Lock()
		closed := l.closed
		if !closed {
			_ = conn.SetReadDeadline(time.Now().Add(l.opts.readTimeout))
		}
		l.mu.Unlock()
		if closed {
			return
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		cr.end = dec.InputOffset()
		if err != nil {
			l.readFailed(conn, err)
			return
		}
		out := l.handle(raw)
		if out == nil {
			continue // notifications only
		}
		_ = conn.SetWriteDeadline(time.Now().Add(l.opts.readTimeout))
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// readFailed answers what can be answered of a failed read: nothing at
// EOF or on a timeout, a parse error or the size refusal otherwise. The
// connection cannot be resynchronised after either, so it then closes.
func (l *Listener) readFailed(conn net.Conn, err error) {
	var ne net.Error
	var e *Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		return
	case errors.As(err, &ne) && ne.Timeout():
		return
	case errors.Is(err, errTooLarge):
		e = errorf(CodeInvalidRequest, "request larger than %d bytes", l.opts.maxRequest)
	case errors.Is(err, io.ErrUnexpectedEOF):
		e = errorf(CodeParseError, "parse error: unexpected end of input")
	default:
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			l.opts.log.Debug("control connection read", "err", err)
			return
		}
		e = errorf(CodeParseError, "parse error: %v", err)
	}
	out, _ := json.Marshal(response{JSONRPC: "2.0", ID: null, Error: e})
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(append(out, '\n')); err != nil {
		return
	}
	// Closing with unread input makes the peer's read fail with
	// ECONNRESET, before it reads the error. Shut our side, then drain
	// what is in flight, within a bound.
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, 4*int64(l.opts.maxRequest)))
}

// handle runs one request or batch and returns the response line, or nil
// when there is nothing to answer.
func (l *Listener) handle(raw []byte) []byte {
	calls, batch := parseMessage(raw)
	resps := make([]response, 0, len(calls))
	for i := range calls {
		c := &calls[i]
		r := response{JSONRPC: "2.0", ID: c.id, Error: c.err}
		if c.err == nil {
			var result any
			result, r.Error = l.svc.run(c)
			if r.Error == nil {
				r.Result = result
			}
			l.opts.log.Debug("control call", "method", c.method, "ok", r.Error == nil)
		}
		if c.id == nil {
			continue // a notification
		}
		if r.Error == nil && r.Result == nil {
			r.Result = null // result is required on success
		}
		resps = append(resps, r)
	}
	if len(resps) == 0 {
		return nil
	}
	var v any = resps[0]
	if batch {
		v = resps
	}
	out, err := json.Marshal(v)
	if err != nil {
		// A result the API made unencodable (NaN, a cycle): answer that,
		// not nothing.
		out, _ = json.Marshal(response{JSONRPC: "2.0", ID: null, Error: errorf(CodeInternalError, "internal error: %v", err)})
	}
	return append(bytes.TrimSpace(out), '\n')
}
