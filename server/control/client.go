package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Client calls methods on a control socket, one at a time.
type Client struct {
	path string
	mu   sync.Mutex
	conn net.Conn
	dec  *json.Decoder
	id   uint64
	// broken is set when an exchange failed halfway.
	broken bool
}

// Dial connects to the control socket at path. Its errors say what to do
// about the usual causes: no server, a stale socket, no permission.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return nil, fmt.Errorf("is usrpt serve running? socket %s: no such file", path)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("is usrpt serve running? socket %s: nothing listens on it (stale socket)", path)
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, fmt.Errorf("socket %s: permission denied (the control socket is mode 0600: run as the user that runs usrpt serve, or root)", path)
		}
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return &Client{path: path, conn: conn, dec: json.NewDecoder(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call calls method with params (nil for none; otherwise anything that
// encodes as a JSON object) and decodes the result into result (nil to
// drop it). An error response comes back as *Error; ctx's deadline bounds
// the exchange, and ctx's end interrupts it.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return fmt.Errorf("%s: socket %s: the connection failed in an earlier call", method, c.path)
	}
	c.id++
	req := struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
		ID      uint64 `json:"id"`
	}{"2.0", method, params, c.id}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	deadline, _ := ctx.Deadline()
	_ = c.conn.SetDeadline(deadline) // zero: none
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return c.ioError(ctx, method, err)
	}
	var resp struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := c.dec.Decode(&resp); err != nil {
		return c.ioError(ctx, method, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if !bytes.Equal(resp.ID, fmt.Appendf(nil, "%d", c.id)) {
		return fmt.Errorf("%s: response id %s, want %d", method, resp.ID, c.id)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("%s: result: %w", method, err)
	}
	return nil
}

// ioError says why an exchange failed. The connection is then out of
// step (a response may still come), so later calls fail too.
func (c *Client) ioError(ctx context.Context, method string, err error) error {
	defer func() { c.broken = true }()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		// The socket's deadline, which is ctx's, fired first.
		return fmt.Errorf("%s: %w", method, context.DeadlineExceeded)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: socket %s: the server closed the connection", method, c.path)
	}
	return fmt.Errorf("%s: socket %s: %w", method, c.path, err)
}
