package main

import (
	"context"

	"github.com/usrpt/usrpt/server"
	"github.com/usrpt/usrpt/server/control"
	"github.com/usrpt/usrpt/server/metrics"
)

// The control socket and the metrics endpoint plug into usrpt serve
// through these hooks (declared in serve.go), so that serve.go and the
// packages behind them are built separately.
func init() {
	startControl = func(ctx context.Context, path string, s *server.Server) (func(), error) {
		l, err := control.Serve(ctx, path, s)
		if err != nil {
			return nil, err
		}
		return func() { _ = l.Close() }, nil
	}
	startMetrics = func(ctx context.Context, addr string, s *server.Server) (func(), error) {
		return metrics.Serve(ctx, addr, s)
	}
}
